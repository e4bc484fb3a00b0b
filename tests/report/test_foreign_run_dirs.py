"""`dlrl report` on run directories dlrl did not write as they are: a run.json or sections.json with values
of other types (found by tests/fuzz/test_fuzz_rundirs.py: a section's seconds as text or infinite, a
run.json whose sections are null, ended in TypeError or OverflowError while rendering). The report is
still written, showing what can be shown."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dlrl.report import build_report

ODD = ["x", math.inf, -math.inf, math.nan, None, [1], {"a": 1}, True, -5, 1e300]


def _run(tmp_path: Path, sections: dict, info: dict) -> Path:
    run = tmp_path / "run"
    (run / "regression").mkdir(parents=True)
    (run / "regression" / "summary.json").write_text(json.dumps({"kind": "experiment", "test_mse": 0.5}))
    (run / "sections.json").write_text(json.dumps(sections))
    (run / "run.json").write_text(json.dumps({"kind": "run", **info}))
    return run


@pytest.mark.parametrize("value", ODD, ids=[repr(v) for v in ODD])
def test_odd_times_and_lists_still_render(tmp_path: Path, value) -> None:
    sections = {"regression": {"status": "done", "seconds": value, "cpu_seconds": value, "part": value}}
    info = {"sections": value, "seconds": value, "parts": value, "profile": value}
    html = build_report(_run(tmp_path, sections, info)).read_text()
    assert html.startswith("<!doctype html>") and "regression" in html


@pytest.mark.parametrize("value", ODD, ids=[repr(v) for v in ODD])
def test_odd_section_entries_still_render(tmp_path: Path, value) -> None:
    html = build_report(_run(tmp_path, {"regression": value, "other": {"status": value}}, {})).read_text()
    assert html.startswith("<!doctype html>")
