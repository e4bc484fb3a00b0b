"""--storage: the search's directory there is copied whole into RUN/search (a local path or a URI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlrl.tuning.storage import check_storage, copy_home, holds, storage_root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("uri", [False, True])
def test_copy_home_replaces_the_run_directory_copy(tmp_path: Path, uri: bool) -> None:
    store = tmp_path / "store"
    search = store / "tune-regression-1"
    (search / "trial_a" / "checkpoint_000001").mkdir(parents=True)
    (search / "trial_a" / "checkpoint_000001" / "trial.pt").write_bytes(b"state")
    (search / "trial_a" / "result.json").write_text('{"epoch": 1}\n')
    (search / "experiment_state.json").write_text("{}")
    storage = f"file://{store}" if uri else str(store)
    check_storage(storage)
    assert holds(storage, "tune-regression-1") and not holds(storage, "other")
    home = tmp_path / "run" / "search"
    home.mkdir(parents=True)
    (home / "stale.json").write_text("from an earlier copy")
    copy_home(storage_root(storage), "tune-regression-1", home)
    assert _files(home) == _files(search)  # the stale file went with the old copy
    assert not (tmp_path / "run" / "search.copying").exists()
    assert sorted(p.name for p in store.iterdir()) == ["tune-regression-1"]  # the check left nothing


def test_copy_home_of_a_search_that_never_started_leaves_the_run_directory(tmp_path: Path) -> None:
    home = tmp_path / "search"
    home.mkdir()
    (home / "kept").write_text("x")
    copy_home(str(tmp_path / "store"), "nothing", home)
    assert (home / "kept").read_text() == "x"
