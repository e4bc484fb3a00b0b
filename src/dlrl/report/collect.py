"""Read a run directory into plain view objects for the report template.

Only the run-directory contract is used, so sections written by any experiment (present or future) render:

    <section>/config.yaml  env.json  metrics.csv  summary.json  figures/**.{png,gif,jpg,svg}
    optional: targets.json (each target with its measured value and verdict, written by the run),
    figures/captions.json ({"<figure stem or relative path>": "caption"}), tables/*.csv,
    notes.md (or notes.txt), nested run directories (e.g. seed-0/ with their own summary.json, figures/),
    and for ``dlrl tune`` directories trials.csv and best_config.yaml.

What a directory is comes from its ``kind`` field: run.json says "run" (``dlrl run``: sections.json holds
the status per section, run.json the profile, order and times, env.json the environment); summary.json
says "experiment" or "search".
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

from dlrl.errors import DlrlError
from dlrl.report.figures import figure_groups
from dlrl.report.files import read_json, read_json_dict, read_notes, read_text
from dlrl.report.tables import best_trial_row, env_rows, read_csv_table, summary_tables
from dlrl.report.view import ReportView, SectionView, Table, Target, anchor_for, fmt, humanize

KINDS = ("run", "experiment", "search")
RUN_FILES = ("sections.json", "config.yaml", "summary.json", "trials.csv")  # any one: a run directory


# -------------------------------------------------------------------------------------- one directory


def directory_kind(path: Path) -> str:
    """ "run", "experiment" or "search": the ``kind`` of run.json or summary.json."""
    for name in ("run.json", "summary.json"):
        kind = read_json_dict(path / name).get("kind")
        if kind in KINDS:
            return str(kind)
    # Directories written before the kind field existed say what they are by their files.
    if (path / "sections.json").is_file():
        return "run"
    return "search" if (path / "trials.csv").is_file() else "experiment"


def read_targets(section_dir: Path) -> list[Target]:
    """targets.json as views (values formatted); no file, no targets."""
    path = section_dir / "targets.json"
    targets = read_json(path) if path.is_file() else None
    if not isinstance(targets, list):
        return []
    return [_target_view(t) for t in targets if isinstance(t, dict) and "metric" in t]


def _target_view(target: dict[str, Any]) -> Target:
    metric, measured, met = str(target["metric"]), target.get("measured"), target.get("met")
    return Target(
        label=str(target.get("label", metric)),
        metric=metric,
        op=str(target.get("op", ">=")),
        value=fmt(target.get("value")),
        measured=fmt(measured) if measured is not None else "not measured",
        met=met if isinstance(met, bool) else None,
        reference=str(target.get("reference", "")),
    )


def _headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without the keys that only say what wrote it (the section's header names them).

    A search's summary has always shown the experiment it searched; that row stays.
    """
    hidden = {"kind", "experiment"} if summary.get("kind") == "experiment" else {"kind"}
    return {k: v for k, v in summary.items() if k not in hidden}


def _section_status(section_dir: Path, status: dict[str, Any]) -> str:
    if "status" in status:
        return str(status["status"])
    if read_json_dict(section_dir / "failed.json").get("status") == "failed":  # even with a summary.json
        return "failed"
    if (section_dir / "summary.json").is_file():
        return "done"
    if (section_dir / "trials.csv").is_file() or (section_dir / "best_config.yaml").is_file():
        return "done"
    return "incomplete"


def _nested_runs(section_dir: Path) -> list[Path]:
    """Nested run directories with a summary.json (seed-0/, fold-1/, trial dirs), shallowest first."""
    found = [p.parent for p in section_dir.rglob("summary.json") if p.parent != section_dir]
    return sorted(found, key=lambda p: (len(p.relative_to(section_dir).parts), p.as_posix()))


def _extra_tables(section_dir: Path) -> list[Table]:
    """The summaries of nested run directories, then tables/*.csv."""
    tables: list[Table] = []
    for nested in _nested_runs(section_dir):
        nested_summary = read_json(nested / "summary.json")
        if isinstance(nested_summary, dict):
            scalars, nested_tables = summary_tables(_headline(nested_summary))
            label = nested.relative_to(section_dir).as_posix()
            tables.append(Table(f"{label}: summary", ["key", "value"], [list(r) for r in scalars]))
            tables.extend(Table(f"{label}: {t.title}", t.columns, t.rows, t.note) for t in nested_tables)
    tables_dir = section_dir / "tables"
    if tables_dir.is_dir():
        for path in sorted(tables_dir.glob("*.csv")):
            table = read_csv_table(path, humanize(path.stem))
            if table:
                tables.append(table)
    return tables


def _experiment_name(summary: dict[str, Any], config_yaml: str) -> str:
    if isinstance(summary.get("experiment"), str):
        return summary["experiment"]
    # Summaries written before they named their experiment: the config says it.
    match = re.search(r"^experiment:\s*['\"]?([\w-]+)", config_yaml, re.MULTILINE)
    return match.group(1) if match else ""


def read_section(
    section_dir: Path, root: Path, name: str, status: dict[str, Any] | None = None
) -> SectionView:
    """One section (or one whole experiment / search run directory) as a view."""
    status = status or {}
    view = SectionView(name=name, anchor=anchor_for(name), status=_section_status(section_dir, status))
    view.part, view.experiment = str(status.get("part", "")), str(status.get("experiment", ""))
    view.seconds, view.cpu_seconds = _seconds(status.get("seconds")), _seconds(status.get("cpu_seconds"))
    view.ran_on = str(status.get("ran_on", ""))
    view.error, view.traceback = str(status.get("error", "")), str(status.get("traceback", ""))
    if not section_dir.is_dir():
        return view
    if view.status == "failed" and not view.error:  # a run marked failed by the run itself (failed.json)
        view.error = str(read_json_dict(section_dir / "failed.json").get("error", ""))
        view.traceback = read_text(section_dir / "traceback.txt")

    summary = read_json_dict(section_dir / "summary.json")
    if (section_dir / "config.yaml").is_file():
        view.config_yaml = read_text(section_dir / "config.yaml")
    view.experiment = view.experiment or _experiment_name(summary, view.config_yaml)
    view.scalars, view.tables = summary_tables(_headline(summary))
    if view.seconds is None:
        view.seconds = _seconds(summary.get("seconds"))
    view.tables.extend(_extra_tables(section_dir))
    view.targets = read_targets(section_dir)
    view.figure_groups = figure_groups(section_dir, root)
    if (section_dir / "metrics.csv").is_file():
        view.metrics = read_csv_table(section_dir / "metrics.csv", "metrics.csv")
    view.notes = read_notes(section_dir)
    view.env = env_rows(read_json_dict(section_dir / "env.json"))

    if (section_dir / "best_config.yaml").is_file():
        view.best_config_yaml = read_text(section_dir / "best_config.yaml")
    if (section_dir / "trials.csv").is_file():
        view.trials = read_csv_table(section_dir / "trials.csv", "trials.csv")
        if view.trials:
            view.trials.highlight = best_trial_row(view.trials, summary)
    return view


# ------------------------------------------------------------------------------------------------ runs


def is_run_directory(path: Path) -> bool:
    return any((path / name).is_file() for name in RUN_FILES)


def read_run(run_dir: str | Path) -> ReportView:
    """A ``dlrl run`` directory (kind "run") or a single experiment / search run directory as a view."""
    root = Path(run_dir)
    if not root.is_dir():
        raise DlrlError(f"{root}: no such run directory")
    if not is_run_directory(root):
        raise DlrlError(
            f"{root}: not a dlrl run directory (no sections.json, config.yaml, summary.json or trials.csv)"
        )
    env = read_json_dict(root / "env.json")
    packages = env.get("packages") or {}
    packages = packages if isinstance(packages, dict) else {}
    view = ReportView(
        title=f"dlrl report: {root.resolve().name}",
        run_dir=str(root),
        kind=directory_kind(root),
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        env=env_rows(env),
        packages=[(k, str(v)) for k, v in packages.items()],
    )
    if view.kind == "run":
        _read_sections(view, root)
    else:
        section = read_section(root, root, root.resolve().name)
        section.env = []  # the same env.json is the report's environment section
        view.sections.append(section)
        view.total_seconds = section.seconds
    return view


def _read_sections(view: ReportView, root: Path) -> None:
    """Every section of a ``dlrl run`` directory, in the run's order, with profile and total time."""
    statuses = read_json_dict(root / "sections.json")
    info = read_json_dict(root / "run.json")
    listed = info.get("sections")
    order = [str(n) for n in listed] if isinstance(listed, list) else []
    order = order or list(statuses)
    order += [n for n in statuses if n not in order]
    parts = info.get("parts", {}) if isinstance(info.get("parts"), dict) else {}
    for name in order:
        entry = statuses.get(name)
        status = {"status": "pending", **(entry if isinstance(entry, dict) else {})}
        status.setdefault("part", parts.get(name, ""))
        view.sections.append(read_section(root / name, root, name, status))
    view.profile = str(info.get("profile", ""))
    total = _seconds(info.get("seconds"))
    view.total_seconds = total if total is not None else _sum_seconds(view.sections)


def _sum_seconds(sections: list[SectionView]) -> float | None:
    values = [s.seconds for s in sections if s.seconds is not None]
    return sum(values) if values else None


def _seconds(value: Any) -> float | None:
    """A time from a run's files: a finite number of seconds, else None (shown as '?')."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return max(float(value), 0.0)
