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
torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """tests/cluster last (a stable sort): once this process has attached to a token-authenticated
    cluster, Ray keeps that token setting for the process, and a local Ray started afterwards fails to
    start its GCS."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/cluster/"))


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
