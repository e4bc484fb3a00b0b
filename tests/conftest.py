"""Shared fixtures: tiny real data in temp dirs, a fixed thread count so tests behave the same everywhere."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

# Tests must never try the network for datasets: the shipped sample is the fallback.
os.environ.setdefault("DLRL_NO_DOWNLOAD", "1")
# Ray runs its worker processes at nice 15: beside the other pytest-xdist worker they would get almost no CPU,
# and Ray's tests, one after another, are the suite's longest line. Same priority as the rest of the suite.
os.environ.setdefault("RAY_worker_niceness", "0")
torch.set_num_threads(1)


RAY_GROUP = "ray"


def xdist_group_of(item: pytest.Item) -> str | None:
    """The pytest-xdist group of a test, if any (``make test``: two workers, ``--dist loadgroup``).

    Tests that start Ray (marked ``ray``; the cluster tests; the notebook whose kernel runs a search) share
    one group, so they run one after another on one worker: two Rays starting at once on this machine
    crashed a raylet. A notebook's tests share a group so that it is executed once (its fixture is per
    worker).
    """
    notebook = getattr(item, "callspec", None) and item.callspec.params.get("name")
    if item.get_closest_marker("ray") or item.nodeid.startswith("tests/cluster/"):
        return RAY_GROUP
    if item.nodeid.startswith("tests/notebooks/") and "executed" in getattr(item, "fixturenames", ()):
        return RAY_GROUP if notebook in (None, "part1_regression_ffn") else f"notebook-{notebook}"
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Ray's tests first (one long group: started first, it ends first), tests/cluster last among them: once
    this process has attached to a token-authenticated cluster, Ray keeps that token setting for the
    process, and a local Ray started afterwards fails to start its GCS."""
    for item in items:
        group = xdist_group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))

    def order(item: pytest.Item) -> int:
        if item.nodeid.startswith("tests/cluster/"):
            return 1
        return 0 if xdist_group_of(item) == RAY_GROUP else 2

    items.sort(key=order)


@pytest.fixture
def sample_data_dir(tmp_path: Path) -> Path:
    """A data directory holding the shipped 10,000-image MNIST sample as 'mnist' test files only."""
    from dlrl.data.sources import copy_sample_to

    target = tmp_path / "data" / "mnist"
    copy_sample_to(target)
    return target


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tests away from the user's ~/.cache/dlrl and DLRL_DATA_DIR."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("DLRL_DATA_DIR", raising=False)


@pytest.fixture(autouse=True)
def _no_flushed_subnormals() -> None:
    """Every dlrl run flushes subnormal floats (dlrl.utils.configure_torch), a setting of the whole process:
    undo it between tests, so a later test (Hypothesis drawing subnormal floats) sees IEEE floats."""
    torch.set_flush_denormal(False)


@pytest.fixture
def interrupt_at_epoch(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], contextlib.AbstractContextManager]:
    """``with interrupt_at_epoch(n): ...`` runs with a KeyboardInterrupt (as Ctrl-C would raise) right after
    the run directory's metrics hook has written epoch ``n``'s row, before that epoch's checkpoint."""
    from dlrl.rundir import RunDir

    original = RunDir.metrics_hook

    @contextlib.contextmanager
    def interrupting(at_epoch: int) -> Iterator[None]:
        def dying_hook(self, *args, **kwargs):
            hook = original(self, *args, **kwargs)

            def wrapped(epoch, row):
                hook(epoch, row)
                if epoch == at_epoch:
                    raise KeyboardInterrupt
                return True

            return wrapped

        with monkeypatch.context() as patch:
            patch.setattr(RunDir, "metrics_hook", dying_hook)
            yield

    return interrupting
