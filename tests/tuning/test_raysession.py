"""Starting a local Ray: a start that timed out because the machine was busy is tried again, nothing else is.

Provoking Ray's own start-up timeout takes a loaded machine and 30 s, so ``ray.init`` is replaced here by one
that raises Ray's real message; the real start is covered by every search test.
"""

from __future__ import annotations

import pytest

from dlrl.tuning.cluster import ClusterError, ClusterInfo

SLOW = "The current node timed out during startup. This could happen because some of the raylet failed ..."


def _failing_init(monkeypatch: pytest.MonkeyPatch, errors: list[BaseException]) -> list[dict]:
    from dlrl.tuning import raysession  # imports ray (seconds): not while the suite is collected

    calls: list[dict] = []

    def init(**kwargs):
        calls.append(kwargs)
        if errors:
            raise errors.pop(0)

    monkeypatch.setattr(raysession.ray, "init", init)
    monkeypatch.setattr(raysession.ray, "shutdown", lambda: None)
    return calls


def start(cluster: ClusterInfo | None) -> None:
    from dlrl.tuning.raysession import _init

    _init(cluster)


def test_a_local_start_that_timed_out_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _failing_init(monkeypatch, [Exception(SLOW), Exception(SLOW)])
    start(None)
    assert len(calls) == 3 and all(call["address"] == "local" for call in calls)


def test_a_local_start_gives_up_after_its_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _failing_init(monkeypatch, [Exception(SLOW)] * 5)
    with pytest.raises(Exception, match="timed out during startup"):
        start(None)
    assert len(calls) == 3  # LOCAL_START_ATTEMPTS


@pytest.mark.parametrize("error", [RuntimeError("no space left"), KeyboardInterrupt()], ids=repr)
def test_other_failures_are_not_retried(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    calls = _failing_init(monkeypatch, [error])
    with pytest.raises(type(error)):
        start(None)
    assert len(calls) == 1


def test_a_cluster_that_timed_out_is_one_error_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _failing_init(monkeypatch, [RuntimeError(SLOW)] * 3)
    cluster = ClusterInfo(address="10.0.0.1:6379", given="--address 10.0.0.1:6379")
    with pytest.raises(ClusterError, match=r"^--address 10.0.0.1:6379: cannot connect to the Ray cluster"):
        start(cluster)
    assert len(calls) == 1
