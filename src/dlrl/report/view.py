"""What the report template shows: plain view objects, and how a value reads as text."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    highlight: int | None = None  # index of a row to emphasise (e.g. the best trial)


@dataclass
class Figure:
    caption: str
    path: str  # relative to the report's run directory
    data_uri: str
    width: int | None = None  # pixels, when the file says (PNG, GIF)
    height: int | None = None

    @property
    def wide(self) -> bool:
        """Wide figures (rows of panels) get the full width of the page."""
        return bool(self.width and self.height and (self.width / self.height > 2.4 or self.width > 1600))


@dataclass
class FigureGroup:
    title: str
    figures: list[Figure]


@dataclass
class Target:
    label: str
    metric: str
    op: str
    value: str
    measured: str
    met: bool | None  # None: not measured
    reference: str


@dataclass
class SectionView:
    name: str
    anchor: str
    part: str = ""
    experiment: str = ""
    status: str = "done"  # done / failed / interrupted / skipped / incomplete / pending
    error: str = ""
    traceback: str = ""
    seconds: float | None = None
    cpu_seconds: float | None = None
    ran_on: str = ""  # dlrl run --address: "cluster HOST:PORT (...)" or "this machine"
    config_yaml: str = ""
    scalars: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    figure_groups: list[FigureGroup] = field(default_factory=list)
    metrics: Table | None = None
    notes: list[tuple[str, Any]] = field(default_factory=list)  # (kind, text): "p", "ul" (list), "pre"
    env: list[tuple[str, str]] = field(default_factory=list)
    best_config_yaml: str = ""
    trials: Table | None = None

    @property
    def figure_count(self) -> int:
        return sum(len(g.figures) for g in self.figure_groups)

    @property
    def targets_met(self) -> int:
        return sum(1 for t in self.targets if t.met)


@dataclass
class ReportView:
    title: str
    run_dir: str
    kind: str  # what the directory is: "run" (dlrl run), "experiment", "search" (dlrl tune)
    generated: str
    profile: str = ""
    total_seconds: float | None = None
    env: list[tuple[str, str]] = field(default_factory=list)
    packages: list[tuple[str, str]] = field(default_factory=list)
    sections: list[SectionView] = field(default_factory=list)

    @property
    def failed(self) -> list[SectionView]:
        return [s for s in self.sections if s.status in ("failed", "interrupted")]


def fmt(value: Any) -> str:
    """A number or value as a person reads it: 4 significant digits, thousands separators, yes/no."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3e}"
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def humanize(name: str) -> str:
    """``'confusion_matrix'`` -> ``'Confusion matrix'``."""
    text = re.sub(r"[_\-]+", " ", name).strip()
    return text[:1].upper() + text[1:] if text else name


def anchor_for(name: str) -> str:
    return "sec-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "section")


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def is_scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(is_scalar(v) for v in value)
