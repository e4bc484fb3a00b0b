"""run.json and sections.json: what a run records about itself, and what --resume takes from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlrl.errors import DlrlError
from dlrl.pipeline.sections import select_sections
from dlrl.pipeline.state import RunSettings, RunState, resume_settings, resume_target


def test_state_records_settings_and_marks_unselected_sections_skipped(tmp_path: Path) -> None:
    sets = {"regression": ["epochs=1"]}
    settings = RunSettings(select_sections("regression", None), quick=True, seed=3, sets=sets)
    state = RunState.begin(tmp_path / "run", settings, resume=False)
    state.save()
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert next(iter(info.items())) == ("kind", "run")
    assert info["profile"] == "quick" and info["seed"] == 3 and info["selected"] == ["regression"]
    status = json.loads((tmp_path / "run" / "sections.json").read_text())
    assert "regression" not in status
    assert status["dqn"] == {"status": "skipped", "experiment": "dqn", "part": "part3"}

    # Resumed with another selection: the stored settings come back, the earlier start time stays.
    resumed = resume_settings(tmp_path / "run", only="classifier")
    assert (resumed.quick, resumed.seed, resumed.sets) == (True, 3, sets)
    assert [s.name for s in resumed.sections] == ["classifier"]
    assert [s.name for s in resume_settings(tmp_path / "run").sections] == ["regression"]
    again = RunState.begin(tmp_path / "run", resumed, resume=True)
    assert again.info["started"] == info["started"] and len(again.info["resumed"]) == 1


def test_resume_refuses_other_settings_and_other_directories(tmp_path: Path) -> None:
    run = tmp_path / "run"
    RunState.begin(run, RunSettings(select_sections(None, None)), resume=False).save()
    assert resume_target(run) == run
    with pytest.raises(DlrlError, match="full profile"):
        resume_settings(run, quick=True)
    with pytest.raises(DlrlError, match="--set differs"):
        resume_settings(run, set_items=["classifier.epochs=1"])
    with pytest.raises(DlrlError, match="not a 'dlrl run' directory"):
        resume_target(tmp_path)
