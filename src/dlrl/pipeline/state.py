"""The state of a ``dlrl run`` directory, kept on disk so that ``--resume`` can continue it.

RUN/run.json       "kind": "run", profile, seed, --set overrides, data dir, section order and selection,
                   total wall time, when it started and was resumed
RUN/sections.json  name -> {status: done/failed/interrupted/skipped, seconds, cpu_seconds, error, traceback}
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlrl.errors import DlrlError
from dlrl.pipeline.sections import SECTIONS, Section, parse_sets, select_sections
from dlrl.rundir import DEFAULT_RUNS_ROOT, RunDir, latest_run_path

RUN_FILE = "run.json"
STATUS_FILE = "sections.json"


@dataclass
class RunSettings:
    """What a run computes: its sections, profile, seed, --set overrides and data directory."""

    sections: list[Section]
    quick: bool = False
    seed: int = 0
    sets: dict[str, list[str]] = field(default_factory=dict)
    data_dir: str | None = None

    @property
    def profile(self) -> str:
        return "quick" if self.quick else "full"


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def read_info(out: Path) -> dict[str, Any]:
    """RUN/run.json; {} before it is written."""
    return _read(out / RUN_FILE)


def resume_target(out: str | Path | None) -> Path:
    """The run to continue: ``out``, or the newest runs/run-<timestamp>; a ``dlrl run`` directory."""
    path = Path(out) if out else latest_run_path("run", DEFAULT_RUNS_ROOT, marker=STATUS_FILE)
    if path is None or not (path / STATUS_FILE).is_file():
        where = f"{path} is not" if path is not None else "no earlier"
        raise DlrlError(f"--resume: {where} a 'dlrl run' directory (no sections.json); pass --out RUN_DIR")
    return path


def resume_settings(
    out: Path,
    *,
    quick: bool | None = None,
    seed: int | None = None,
    set_items: list[str] | None = None,
    data_dir: str | None = None,
    only: str | None = None,
    skip: str | None = None,
) -> RunSettings:
    """The settings of the run in ``out``; options given again must be the same (None: not given).

    The sections are the stored selection unless ``only`` / ``skip`` choose others.
    """
    info = read_info(out)
    stored_quick = info.get("profile", "full") == "quick"
    stored_seed = int(info.get("seed", 0))
    stored_sets = info.get("sets", {}) or {}
    if quick is not None and bool(quick) != stored_quick:
        raise DlrlError(
            f"--resume: {out} was started with the {info.get('profile')} profile; resume it with the "
            "same options (or leave them out: they are reused)"
        )
    if seed is not None and seed != stored_seed:
        raise DlrlError(f"--resume: {out} was started with --seed {stored_seed}, not {seed}")
    sets = parse_sets(set_items) if set_items else stored_sets
    if set_items and sets != stored_sets:
        raise DlrlError(f"--resume: --set differs from the run in {out} ({stored_sets or 'none'} there)")
    if only or skip:
        sections = select_sections(only, skip, quick=stored_quick)
    else:
        stored = info.get("selected")
        sections = (
            [s for s in SECTIONS if s.name in stored] if stored else select_sections(None, None, stored_quick)
        )
    return RunSettings(sections, stored_quick, stored_seed, sets, data_dir or info.get("data_dir"))


@dataclass
class RunState:
    """run.json (``info``) and sections.json (``status``) of a run directory, and this session's clock."""

    run: RunDir
    info: dict[str, Any]
    status: dict[str, Any]
    previous_seconds: float = 0.0  # wall time of the earlier sessions of a resumed run
    started: float | None = None  # perf_counter() when this session's sections began

    @property
    def out(self) -> Path:
        return self.run.path

    @classmethod
    def begin(cls, out: Path, settings: RunSettings, resume: bool) -> RunState:
        """The stored state (with ``resume``) updated with this session's settings; not yet written."""
        info = _read(out / RUN_FILE) if resume else {}
        state = cls(
            RunDir(out),
            {"kind": "run", **info},
            _read(out / STATUS_FILE) if resume else {},
            float(info.get("seconds", 0.0)),
        )
        state._record_settings(settings, resume)
        state._mark_skipped(settings.sections)
        out.mkdir(parents=True, exist_ok=True)
        return state

    def _record_settings(self, settings: RunSettings, resume: bool) -> None:
        known = {s.name for s in SECTIONS}
        self.info.update(
            {
                "profile": settings.profile,
                "seed": settings.seed,
                "sets": settings.sets,
                "data_dir": settings.data_dir,
                "sections": [s.name for s in SECTIONS]
                + [n for n in self.info.get("sections", []) if n not in known],
                "parts": {s.name: s.part for s in SECTIONS},
                "selected": [s.name for s in settings.sections],
                "seconds": self.previous_seconds,
            }
        )
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.info.setdefault("started", now)
        if resume:
            self.info["resumed"] = [*self.info.get("resumed", []), now]

    def _mark_skipped(self, selected: list[Section]) -> None:
        names = {s.name for s in selected}
        for section in SECTIONS:
            if section.name not in names and self.status_of(section.name) in (None, "skipped"):
                self.status[section.name] = {
                    "status": "skipped",
                    "experiment": section.experiment,
                    "part": section.part,
                }

    def status_of(self, name: str) -> str | None:
        return self.status.get(name, {}).get("status")

    def interrupted_record(self, name: str) -> dict[str, Any]:
        """The record an interrupted earlier session left for ``name`` (its time counts), else {}."""
        return self.status.get(name, {}) if self.status_of(name) == "interrupted" else {}

    def start_clock(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Wall time of the whole run: earlier sessions plus this one's so far."""
        elapsed = time.perf_counter() - self.started if self.started is not None else 0.0
        return round(self.previous_seconds + elapsed, 1)

    def save(self) -> None:
        self.info["seconds"] = self.seconds
        self.run.write_json(RUN_FILE, self.info)
        self.run.write_json(STATUS_FILE, self.status)

    def record(self, name: str, record: dict[str, Any]) -> None:
        self.status[name] = record
        self.save()
