"""Read a run directory into plain view objects for the report template.

Only the run-directory contract is used, so sections written by any experiment (present or future) render:

    <section>/config.yaml  env.json  metrics.csv  summary.json  figures/**.{png,gif,jpg,svg}
    optional: figures/captions.json ({"<figure stem or relative path>": "caption"}), tables/*.csv,
    notes.md (or notes.txt), nested run directories (e.g. seed-0/ with their own summary.json, figures/),
    and for ``dlrl tune`` directories trials.csv and best_config.yaml.

A ``dlrl run`` directory adds sections.json (status per section), run.json (profile, order, times) and a
top-level env.json.
"""

from __future__ import annotations

import base64
import csv
import json
import logging
import math
import operator
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlrl.errors import DlrlError

log = logging.getLogger(__name__)

IMAGE_TYPES = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
}
MAX_WIDE_COLUMNS = 12  # flat dicts up to this many keys are shown as one row
MAX_TABLE_ROWS = 500  # metrics.csv / trials.csv rows shown (the file has them all)
ID_COLUMNS = {"trial", "trial_id", "id", "run", "run_id", "name"}
OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


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
    kind: str  # "run" (dlrl run), "experiment", "tune"
    generated: str
    profile: str = ""
    total_seconds: float | None = None
    env: list[tuple[str, str]] = field(default_factory=list)
    packages: list[tuple[str, str]] = field(default_factory=list)
    sections: list[SectionView] = field(default_factory=list)

    @property
    def failed(self) -> list[SectionView]:
        return [s for s in self.sections if s.status in ("failed", "interrupted")]


# ---------------------------------------------------------------------------------------------- values


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


def lookup(data: dict[str, Any], key: str) -> Any:
    """``data[key]``, or a dotted path into nested dicts; None if absent."""
    if key in data:
        return data[key]
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("%s: cannot read (%s); left out of the report", path, err)
        return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def read_csv_table(path: Path, title: str, max_rows: int = MAX_TABLE_ROWS) -> Table | None:
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            rows = list(csv.reader(handle))
    except OSError:
        return None
    if not rows:
        return None
    header, body = rows[0], rows[1:]
    note = ""
    if len(body) > max_rows:
        note = f"{max_rows} of {len(body)} rows shown; all are in {path.name}"
        body = body[:max_rows]
    raw = [name.lower() in ID_COLUMNS for name in header]  # ids stay as written: no "50,375,472"
    rows = [[c if i < len(raw) and raw[i] else _fmt_cell(c) for i, c in enumerate(row)] for row in body]
    return Table(title, header, rows, note)


def _fmt_cell(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return text
    if re.fullmatch(r"[+-]?\d+", text.strip()):
        return fmt(int(text))
    return fmt(number)


# ------------------------------------------------------------------------------------------- summaries


def summary_tables(summary: dict[str, Any]) -> tuple[list[tuple[str, str]], list[Table]]:
    """(scalar rows, tables) from a summary: flat scalars first, nested dicts and lists as tables."""
    scalars: list[tuple[str, str]] = []
    tables: list[Table] = []
    for key, value in summary.items():
        if key.startswith("_"):
            continue
        if _is_scalar(value) or (isinstance(value, list) and all(_is_scalar(v) for v in value)):
            scalars.append((key, fmt(value)))
        else:
            tables.extend(_value_tables(humanize(key), value))
    return scalars, tables


def _value_tables(title: str, value: Any) -> list[Table]:
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for row in value for k in row))
            rows = [[_cell(row.get(c)) for c in columns] for row in value]
            return [Table(title, columns, rows)]
        return [Table(title, ["#", "value"], [[str(i), _cell(v)] for i, v in enumerate(value)])]
    if not isinstance(value, dict):
        return [Table(title, ["value"], [[_cell(value)]])]
    children = list(value.values())
    if children and all(isinstance(v, dict) and all(_is_scalar(x) for x in v.values()) for v in children):
        # dict of flat dicts: a matrix with one row per outer key
        columns = list(dict.fromkeys(k for v in children for k in v))
        rows = [[str(k), *[_cell(v.get(c)) for c in columns]] for k, v in value.items()]
        return [Table(title, ["", *columns], rows)]
    flat = [(k, v) for k, v in value.items() if _is_scalar(v) or _scalar_list(v)]
    if flat and len(flat) == len(value) and len(flat) <= MAX_WIDE_COLUMNS:
        # a short flat dict (per-class accuracy, PSNR by noise level) reads best as one row
        return [Table(title, [str(k) for k, _ in flat], [[fmt(v) for _, v in flat]])]
    tables = [Table(title, ["key", "value"], [[str(k), fmt(v)] for k, v in flat])] if flat else []
    for key, child in value.items():
        if not (_is_scalar(child) or _scalar_list(child)):
            tables.extend(_value_tables(f"{title} · {humanize(str(key))}", child))
    return tables


def _scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(_is_scalar(v) for v in value)


def _cell(value: Any) -> str:
    if _is_scalar(value) or _scalar_list(value):
        return fmt(value)
    return json.dumps(value, default=str)


# --------------------------------------------------------------------------------------------- targets


def experiment_targets(experiment: str) -> list[dict[str, Any]]:
    """The experiment module's TARGETS (empty if it has none or cannot be imported)."""
    if not experiment:
        return []
    try:
        from dlrl.experiments import EXPERIMENTS

        entry = EXPERIMENTS.get(experiment)
        if entry is None:
            return []
        targets = getattr(entry.load(), "TARGETS", [])
    except Exception as err:  # a broken module must not take the whole report down
        log.warning("targets of '%s' unavailable: %s", experiment, err)
        return []
    return [t for t in targets if isinstance(t, dict) and "metric" in t]


def evaluate_targets(targets: list[dict[str, Any]], summary: dict[str, Any]) -> list[Target]:
    views = []
    for target in targets:
        metric, op, goal = str(target["metric"]), str(target.get("op", ">=")), target.get("value")
        measured = lookup(summary, metric)
        met: bool | None = None
        if isinstance(measured, int | float) and not isinstance(measured, bool) and op in OPS:
            if isinstance(goal, int | float) and not (isinstance(measured, float) and math.isnan(measured)):
                met = bool(OPS[op](measured, goal))
        views.append(
            Target(
                label=str(target.get("label", metric)),
                metric=metric,
                op=op,
                value=fmt(goal),
                measured=fmt(measured) if measured is not None else "not measured",
                met=met,
                reference=str(target.get("reference", "")),
            )
        )
    return views


# --------------------------------------------------------------------------------------------- figures


def data_uri(data: bytes, suffix: str) -> str:
    return f"data:{IMAGE_TYPES[suffix.lower()]};base64,{base64.b64encode(data).decode('ascii')}"


def image_size(data: bytes) -> tuple[int, int] | tuple[None, None]:
    """(width, height) in pixels from a PNG or GIF header; (None, None) for other formats."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    return None, None


def _figure_files(directory: Path) -> list[Path]:
    files = [p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_TYPES]
    files = [p for p in files if not p.name.startswith(".")]  # half-written temp files
    stems_with_png = {p.with_suffix("") for p in files if p.suffix.lower() == ".png"}
    # An SVG copy of a PNG figure adds nothing but size.
    files = [p for p in files if not (p.suffix.lower() == ".svg" and p.with_suffix("") in stems_with_png)]
    return sorted(files, key=lambda p: (p.relative_to(directory).parent.as_posix(), _mtime(p), p.name))


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns  # figures in the order the experiment wrote them
    except OSError:
        return 0


def figure_groups(section_dir: Path, root: Path) -> list[FigureGroup]:
    """Every image under ``figures/`` of the section and of its nested run directories, grouped by folder."""
    groups: list[FigureGroup] = []
    figure_dirs = sorted(
        (p for p in section_dir.rglob("figures") if p.is_dir()),
        key=lambda p: (len(p.relative_to(section_dir).parts), p.as_posix()),
    )
    for figures_dir in figure_dirs:
        captions = (
            _read_json(figures_dir / "captions.json") if (figures_dir / "captions.json").is_file() else {}
        )
        captions = captions if isinstance(captions, dict) else {}
        by_folder: dict[str, list[Figure]] = {}
        for path in _figure_files(figures_dir):
            relative = path.relative_to(figures_dir)
            key = relative.with_suffix("").as_posix()
            caption = str(captions.get(key) or captions.get(path.stem) or humanize(path.stem))
            try:
                data = path.read_bytes()
            except OSError as err:
                log.warning("%s: cannot read (%s); left out of the report", path, err)
                continue
            folder = (figures_dir.relative_to(section_dir).parent / relative.parent).as_posix()
            width, height = image_size(data)
            uri = data_uri(data, path.suffix)
            figure = Figure(caption, path.relative_to(root).as_posix(), uri, width, height)
            by_folder.setdefault(folder, []).append(figure)
        for folder, figures in by_folder.items():
            title = "" if folder == "." else folder
            groups.append(FigureGroup(title, figures))
    return groups


# ---------------------------------------------------------------------------------------------- notes


def read_notes(section_dir: Path) -> list[tuple[str, Any]]:
    """notes.md / notes.txt as headings, paragraphs, bullet lists and code blocks (a tiny Markdown subset)."""
    for name in ("notes.md", "notes.txt"):
        path = section_dir / name
        if path.is_file():
            return _blocks(_read_text(path))
    return []


def _blocks(text: str) -> list[tuple[str, Any]]:
    blocks: list[tuple[str, Any]] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = chunk.splitlines()
        if not lines:
            continue
        if lines[0].startswith("```"):
            blocks.append(("pre", "\n".join(line for line in lines if not line.startswith("```"))))
        elif all(re.match(r"\s*[-*] ", line) for line in lines):
            blocks.append(("ul", [re.sub(r"^\s*[-*] ", "", line) for line in lines]))
        elif lines[0].startswith("#"):
            blocks.append(("h", lines[0].lstrip("#").strip()))
            if lines[1:]:
                blocks.append(("p", " ".join(lines[1:])))
        else:
            blocks.append(("p", " ".join(line.strip() for line in lines)))
    return blocks


# -------------------------------------------------------------------------------------------- sections


def _env_rows(env: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in env.items():
        if key == "packages" and isinstance(value, dict):
            continue
        if key == "command" and isinstance(value, list):
            value = " ".join(str(v) for v in value)
        rows.append((key, fmt(value) if _is_scalar(value) or _scalar_list(value) else json.dumps(value)))
    return rows


def _nested_runs(section_dir: Path) -> list[Path]:
    """Nested run directories with a summary.json (seed-0/, fold-1/, trial dirs), shallowest first."""
    found = [p.parent for p in section_dir.rglob("summary.json") if p.parent != section_dir]
    return sorted(found, key=lambda p: (len(p.relative_to(section_dir).parts), p.as_posix()))


def read_section(
    section_dir: Path, root: Path, name: str, status: dict[str, Any] | None = None
) -> SectionView:
    """One section (or one whole experiment / tune run directory) as a view."""
    status = status or {}
    view = SectionView(name=name, anchor=anchor_for(name))
    view.part = str(status.get("part", ""))
    view.experiment = str(status.get("experiment", ""))
    view.seconds = status.get("seconds")
    view.cpu_seconds = status.get("cpu_seconds")
    view.error = str(status.get("error", ""))
    view.traceback = str(status.get("traceback", ""))
    summary_path = section_dir / "summary.json"
    if "status" in status:
        view.status = str(status["status"])
    elif summary_path.is_file():
        view.status = "done"
    elif (section_dir / "trials.csv").is_file() or (section_dir / "best_config.yaml").is_file():
        view.status = "done"
    else:
        view.status = "incomplete"
    if not section_dir.is_dir():
        return view

    config_path = section_dir / "config.yaml"
    if config_path.is_file():
        view.config_yaml = _read_text(config_path)
        if not view.experiment:
            match = re.search(r"^experiment:\s*['\"]?([\w-]+)", view.config_yaml, re.MULTILINE)
            view.experiment = match.group(1) if match else ""

    summary = _read_json(summary_path) if summary_path.is_file() else None
    summary = summary if isinstance(summary, dict) else {}
    view.scalars, view.tables = summary_tables(summary)
    if view.seconds is None and isinstance(summary.get("seconds"), int | float):
        view.seconds = summary["seconds"]

    for nested in _nested_runs(section_dir):
        nested_summary = _read_json(nested / "summary.json")
        if isinstance(nested_summary, dict):
            scalars, tables = summary_tables(nested_summary)
            label = nested.relative_to(section_dir).as_posix()
            view.tables.append(Table(f"{label}: summary", ["key", "value"], [list(r) for r in scalars]))
            view.tables.extend(Table(f"{label}: {t.title}", t.columns, t.rows, t.note) for t in tables)

    tables_dir = section_dir / "tables"
    if tables_dir.is_dir():
        for path in sorted(tables_dir.glob("*.csv")):
            table = read_csv_table(path, humanize(path.stem))
            if table:
                view.tables.append(table)

    is_search = (section_dir / "trials.csv").is_file()
    # A search directory names the experiment it searched; that experiment's targets are not its own.
    if not is_search:
        view.targets = evaluate_targets(experiment_targets(view.experiment), summary)
    view.figure_groups = figure_groups(section_dir, root)
    if (section_dir / "metrics.csv").is_file():
        view.metrics = read_csv_table(section_dir / "metrics.csv", "metrics.csv")
    view.notes = read_notes(section_dir)
    env = _read_json(section_dir / "env.json") if (section_dir / "env.json").is_file() else None
    view.env = _env_rows(env) if isinstance(env, dict) else []

    if (section_dir / "best_config.yaml").is_file():
        view.best_config_yaml = _read_text(section_dir / "best_config.yaml")
    if (section_dir / "trials.csv").is_file():
        view.trials = read_csv_table(section_dir / "trials.csv", "trials.csv")
        if view.trials:
            view.trials.highlight = _best_trial_row(view.trials, summary)
    return view


def _best_trial_row(trials: Table, summary: dict[str, Any]) -> int | None:
    """The row of the best trial, if summary.json names it (best_trial / best_trial_id)."""
    best = summary.get("best_trial", summary.get("best_trial_id"))
    if best is None:
        return None
    for column in ("trial_id", "trial", "id"):
        if column in trials.columns:
            index = trials.columns.index(column)
            for i, row in enumerate(trials.rows):
                if row[index] == fmt(best) or row[index] == str(best):
                    return i
    return None


# ------------------------------------------------------------------------------------------------ runs


def is_run_directory(path: Path) -> bool:
    return any(
        (path / name).is_file() for name in ("sections.json", "config.yaml", "summary.json", "trials.csv")
    )


def read_run(run_dir: str | Path) -> ReportView:
    """A ``dlrl run`` directory (sections.json) or a single experiment / tune run directory as a view."""
    import time

    root = Path(run_dir)
    if not root.is_dir():
        raise DlrlError(f"{root}: no such run directory")
    if not is_run_directory(root):
        raise DlrlError(
            f"{root}: not a dlrl run directory (no sections.json, config.yaml, summary.json or trials.csv)"
        )
    generated = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    env = _read_json(root / "env.json") if (root / "env.json").is_file() else None
    env = env if isinstance(env, dict) else {}
    packages = env.get("packages") or {}
    packages = packages if isinstance(packages, dict) else {}
    view = ReportView(
        title=f"dlrl report: {root.resolve().name}",
        run_dir=str(root),
        kind="run",
        generated=generated,
        env=_env_rows(env),
        packages=[(k, str(v)) for k, v in packages.items()],
    )
    if (root / "sections.json").is_file():
        statuses = _read_json(root / "sections.json")
        statuses = statuses if isinstance(statuses, dict) else {}
        info = _read_json(root / "run.json") if (root / "run.json").is_file() else None
        info = info if isinstance(info, dict) else {}
        order = [str(n) for n in info.get("sections", [])] or list(statuses)
        order += [n for n in statuses if n not in order]
        parts = info.get("parts", {}) if isinstance(info.get("parts"), dict) else {}
        for name in order:
            status = statuses.get(name, {"status": "pending"}) if isinstance(statuses.get(name), dict) else {}
            status = {"status": "pending", **status}
            status.setdefault("part", parts.get(name, ""))
            view.sections.append(read_section(root / name, root, name, status))
        view.profile = str(info.get("profile", ""))
        total = info.get("seconds")
        view.total_seconds = total if isinstance(total, int | float) else _sum_seconds(view.sections)
    else:
        name = root.resolve().name
        view.kind = "tune" if (root / "trials.csv").is_file() else "experiment"
        section = read_section(root, root, name)
        section.env = []  # the same env.json is the report's environment section
        view.sections.append(section)
        view.total_seconds = section.seconds
    return view


def _sum_seconds(sections: list[SectionView]) -> float | None:
    values = [s.seconds for s in sections if isinstance(s.seconds, int | float)]
    return sum(values) if values else None
