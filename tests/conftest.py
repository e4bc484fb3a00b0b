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
# Each run uses every core by default, so the workers' processes together ask for more threads than there are
# cores: OpenMP threads that wait should sleep, not spin on a core another test needs (no effect on results).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch.set_num_threads(1)


RAY_GROUP = "ray"
# Tests that start a local Ray or a cluster (or a notebook whose kernel runs a search). A new one goes here.
RAY_TESTS = (
    "tests/cluster/",
    "tests/tuning/test_search_ray.py::",
    "tests/walkthrough/test_add_experiment.py::test_tune_search_with_the_callers_ray",
    "tests/notebooks/test_notebooks.py::test_progress_bars_are_widgets_and_ray_stays_in_its_log",
)
NOTEBOOK_WITH_RAY = "part1_regression_ffn"


def xdist_group_of(nodeid: str) -> str | None:
    """The group of tests that one pytest-xdist worker runs one after another (``make test``: two workers).

    Ray's tests share one group: two Rays starting at once on this machine crashed a raylet. A notebook's
    tests share a group so that it is executed once (its fixture is per worker).
    """
    if nodeid.startswith(RAY_TESTS):
        return RAY_GROUP
    notebook = nodeid.rpartition("[")[2].rstrip("]") if nodeid.startswith("tests/notebooks/") else ""
    if notebook.startswith("part"):
        return RAY_GROUP if notebook == NOTEBOOK_WITH_RAY else f"notebook-{notebook}"
    return None


# Tests sharing a session fixture with another module's tests (built once per worker that runs any of them).
SHARED_FIXTURE_GROUPS = {
    "tests/fuzz/test_fuzz_rundirs.py": "fuzz-finished-runs",
    "tests/fuzz/test_fuzz_checkpoints.py": "fuzz-finished-runs",
}
# Modules whose slow tests share no fixture: their tests may go to different workers.
SPLIT_MODULES = ("tests/rl/test_resume.py",)


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def scheduling_scope(nodeid: str) -> str:
    """What one pytest-xdist worker gets whole: a group above, or else the test's module (so that a module
    fixture is built once, not once per worker), or the test alone in SPLIT_MODULES."""
    module = module_of(nodeid)
    group = xdist_group_of(nodeid) or SHARED_FIXTURE_GROUPS.get(module)
    if group is not None:
        return group
    return nodeid if module in SPLIT_MODULES else module


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: only called when the tests run on workers
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Like ``--dist load`` (work to whichever worker is free), but by scheduling_scope: a group or a module
    goes to one worker whole. (xdist's own ``--dist loadgroup`` renames items to find their group, which
    pytest 9.2 no longer allows; ``--dist loadscope`` would split no module and group nothing.)
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # keep the order below, not the scopes sorted by their test counts

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scheduling_scope(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Ray's group first (the longest line of the suite: started first, it ends first), tests/cluster last in
    it: once this process has attached to a token-authenticated cluster, Ray keeps that token setting for
    the process, and a local Ray started afterwards fails to start its GCS. Then the modules with slow tests,
    then the rest: the long work starts early, the short fills the end."""
    slow_modules = {module_of(item.nodeid) for item in items if item.get_closest_marker("slow")}

    def order(item: pytest.Item) -> int:
        if item.nodeid.startswith("tests/cluster/"):
            return 1
        if xdist_group_of(item.nodeid) == RAY_GROUP:
            return 0
        return 2 if module_of(item.nodeid) in slow_modules else 3

    items.sort(key=order)


@pytest.fixture(autouse=True)
def _ray_group_first(request: pytest.FixtureRequest) -> None:
    """On xdist workers, every test outside Ray's group runs at nice 10 (its subprocesses too): Ray's tests
    run one after another and are the suite's longest line, so they get the CPU first and the others fill
    the rest. (Raising priority again needs root; without it a worker simply stays where it is.)"""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    wanted = 0 if xdist_group_of(request.node.nodeid) == RAY_GROUP else 10
    with contextlib.suppress(PermissionError):
        os.nice(wanted - os.nice(0))


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
