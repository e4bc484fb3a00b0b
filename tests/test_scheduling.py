"""How `make test` hands tests to its pytest-xdist workers (tests/conftest.py): Ray's tests in one group, a
notebook's tests together, a module's tests together (its fixtures built once), SPLIT_MODULES test by test."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("suite_conftest", Path(__file__).parent / "conftest.py")
assert spec is not None and spec.loader is not None
suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)


@pytest.mark.parametrize(
    ("nodeid", "scope"),
    [
        ("tests/tuning/test_search_ray.py::test_ctrl_c_stops_cleanly_and_leaves_no_process", "ray"),
        ("tests/cluster/test_cluster.py::test_readme_steps_run_a_search_over_both_workers", "ray"),
        (
            "tests/notebooks/test_browser.py::test_executed_page_shows_every_figure[part1_regression_ffn]",
            "ray",
        ),
        (
            "tests/notebooks/test_browser.py::test_executed_page_shows_every_figure[part2_autoencoders]",
            "notebook-part2_autoencoders",
        ),
        (
            "tests/notebooks/test_notebooks.py::test_headline_numbers_equal_the_cli[part2_autoencoders]",
            "notebook-part2_autoencoders",
        ),
        (
            "tests/fuzz/test_fuzz_rundirs.py::test_evaluate_and_report_of_any_changed_run_directory",
            "fuzz-finished-runs",
        ),
        (
            "tests/fuzz/test_fuzz_checkpoints.py::test_resume_from_any_changed_checkpoint_finishes_or_is_one_error",
            "fuzz-finished-runs",
        ),
        ("tests/experiments/test_dqn.py::test_evaluate_and_play", "tests/experiments/test_dqn.py"),
        ("tests/experiments/test_dqn.py::test_bad[x-y]", "tests/experiments/test_dqn.py"),
        (
            "tests/rl/test_resume.py::test_sigkill_at_random_points_then_resume_is_bit_identical[state]",
            "tests/rl/test_resume.py::test_sigkill_at_random_points_then_resume_is_bit_identical[state]",
        ),
    ],
)
def test_scheduling_scope(nodeid: str, scope: str) -> None:
    assert suite.scheduling_scope(nodeid) == scope


def test_every_named_module_exists() -> None:
    root = Path(__file__).parents[1]
    for module in (*suite.SHARED_FIXTURE_GROUPS, *suite.SPLIT_MODULES):
        assert (root / module).is_file(), module
    for prefix in suite.RAY_TESTS:
        assert (root / suite.module_of(prefix)).exists(), prefix
