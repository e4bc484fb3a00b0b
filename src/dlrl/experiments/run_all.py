"""``dlrl run``: every experiment in sequence into one run directory, then one self-contained report.

Each section runs in RUN/<section>/ as an ordinary run directory; a failing section is recorded
(RUN/sections.json) and the rest go on. ``--resume`` skips finished sections and continues the
interrupted one. RUN/report.html is rewritten after every section, so a partial report always exists.

RUN/run.json     profile, seed, --set overrides, section order and selection, total wall time
RUN/env.json     versions, cores, load, seed (the environment of the whole run)
RUN/sections.json  name -> {status: done/failed/interrupted/skipped, seconds, cpu_seconds, error, traceback}
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlrl.errors import DlrlError
from dlrl.progress import StageProgress, format_seconds
from dlrl.utils import cpu_seconds, usable_cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Section:
    name: str  # directory name under the run
    part: str  # part1 / part2 / part3, for --only / --skip
    experiment: str  # registry name, or "tune:<experiment>" for a hyperparameter search of it
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted keys applied on top of the profile


SECTIONS: list[Section] = [
    Section("regression", "part1", "regression"),
    # A small Ray Tune search of the regression net (K-fold CV per trial), its best config trained and tested.
    Section("search", "part1", "tune:regression"),
    Section("classifier", "part1", "classifier"),
    Section("autoencoder", "part2", "autoencoder", {"variant": "ae"}),
    Section("dae", "part2", "autoencoder", {"variant": "dae"}),
    Section("vae", "part2", "autoencoder", {"variant": "vae"}),
    # encoder_run is relative: finetune looks for it beside its own run directory (the section above).
    Section("finetune", "part2", "finetune", {"encoder_run": "autoencoder"}),
    Section("dqn", "part3", "dqn", {"seeds": [0, 1, 2], "explorations": ["epsilon", "softmax"]}),
]

# Typical wall seconds per section on 2 cores: (quick, full), as measured on 2026-11-25. Only the first guess
# of the ETA: it is scaled by how fast the finished sections really were. Sections not listed use
# DEFAULT_EXPECTED.
EXPECTED_SECONDS: dict[str, tuple[float, float]] = {
    "regression": (4, 8),
    "search": (18, 131),
    "classifier": (2, 21),
    "autoencoder": (8, 16),
    "dae": (10, 18),
    "vae": (10, 18),
    "finetune": (1, 12),
    "dqn": (8, 34),
}
DEFAULT_EXPECTED = (30.0, 120.0)

PACKAGES = (
    "torch",
    "numpy",
    "matplotlib",
    "pydantic",
    "ray",
    "optuna",
    "gymnasium",
    "scikit-learn",
    "openTSNE",
    "jinja2",
    "imageio",
    "tqdm",
    "tensorboard",
)


def select_sections(only: str | None, skip: str | None) -> list[Section]:
    known = {s.part for s in SECTIONS} | {s.name for s in SECTIONS}
    chosen = SECTIONS
    for option, value in (("--only", only), ("--skip", skip)):
        if not value:
            continue
        names = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DlrlError(
                f"{option}: unknown section '{unknown[0]}' (choose from {', '.join(sorted(known))})"
            )
        keep = option == "--only"
        chosen = [s for s in chosen if ((s.part in names) or (s.name in names)) == keep]
    if not chosen:
        raise DlrlError("--only/--skip leave no section to run")
    return chosen


def parse_sets(items: list[str] | None) -> dict[str, list[str]]:
    """``['classifier.epochs=1', ...]`` -> ``{'classifier': ['epochs=1', ...]}``; sections are checked."""
    names = [s.name for s in SECTIONS]
    sets: dict[str, list[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        section, dot, rest = key.strip().partition(".")
        if not sep or not dot or not rest:
            raise DlrlError(f"--set '{item}': expected SECTION.KEY=VALUE, e.g. classifier.epochs=1")
        if section not in names:
            raise DlrlError(f"--set '{item}': unknown section '{section}' (choose from {', '.join(names)})")
        sets.setdefault(section, []).append(f"{rest}={value}")
    return sets


def expected_seconds(sections: list[Section], quick: bool) -> dict[str, float]:
    return {s.name: EXPECTED_SECONDS.get(s.name, DEFAULT_EXPECTED)[0 if quick else 1] for s in sections}


SEARCH_PREFIX = "tune:"


def _run_search_section(setup: Any, path: Path) -> None:
    """A search section: search into ``path`` (continuing an interrupted one), then train the best config."""
    from dlrl.tune.search import run_search

    run_search(setup, path, resume=(path / "config.yaml").is_file(), train_best=True)


def _resolve_configs(
    sections: list[Section], quick: bool, seed: int, sets: dict[str, list[str]], data_dir: str | None
) -> dict[str, Any]:
    """Section name -> validated config, or the error text for a section whose experiment is unavailable.

    Done before anything runs, so a typo in --set stops the run at once, not after an hour.
    """
    from dlrl.experiments import EXPERIMENTS
    from dlrl.experiments.runner import resolve_config

    configs: dict[str, Any] = {}
    for section in sections:
        if section.experiment.startswith(SEARCH_PREFIX):
            from dlrl.tune.search import resolve_search

            try:
                configs[section.name] = resolve_search(
                    section.experiment[len(SEARCH_PREFIX) :],
                    quick=quick,
                    options={"seed": seed},
                    overrides=sets.get(section.name),
                )
            except DlrlError as err:
                raise DlrlError(f"section '{section.name}': {err}") from None
            continue
        entry = EXPERIMENTS.get(section.experiment)
        if entry is None:
            configs[section.name] = (
                f"experiment '{section.experiment}' is not available in this version of dlrl"
            )
            continue
        options: dict[str, Any] = {"seed": seed, **section.overrides}
        if data_dir and "data" in entry.config_cls().model_fields and section.experiment != "regression":
            options["data.data_dir"] = data_dir
        try:
            configs[section.name] = resolve_config(
                entry, quick=quick, options=options, overrides=sets.get(section.name)
            )
        except DlrlError as err:
            raise DlrlError(f"section '{section.name}': {err}") from None
    return configs


def _packages() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _write_env(run: Any, seed: int, profile: str) -> None:
    from dlrl.utils import resolve_device

    extra: dict[str, Any] = {"experiment": "run", "profile": profile, "packages": _packages()}
    extra["cpus_usable"] = usable_cores()
    if hasattr(os, "getloadavg"):
        extra["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    run.write_env(seed, str(resolve_device("auto")), extra)


GROUP_COLUMNS = ("trial", "run")  # metrics.csv columns naming one of several runs in one file


def check_tensorboard() -> None:
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise DlrlError(
            "--tensorboard: the 'tensorboard' package is not installed (pip install tensorboard, "
            "or pip install 'dlrl[tensorboard]')"
        )


def log_tensorboard(section_dir: Path, log_dir: Path) -> int:
    """Write every numeric column of the section's metrics.csv files as TensorBoard scalars; returns points.

    Nested run directories (seed-0/metrics.csv, ...) go to their own sub-runs. ``log_dir`` is replaced.
    """
    from torch.utils.tensorboard import SummaryWriter

    from dlrl.rundir import RunDir

    shutil.rmtree(log_dir, ignore_errors=True)
    points = 0
    for path in sorted(section_dir.rglob("metrics.csv")):
        rows = RunDir(path.parent).read_metrics()
        relative = path.parent.relative_to(section_dir)
        # One metrics.csv may hold every trial of a search or every agent of a DQN section: one TensorBoard
        # run per trial / agent, so their curves do not mix.
        key = next((k for k in GROUP_COLUMNS if rows and k in rows[0]), None)
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(f"{key}-{row[key]}" if key else "", []).append(row)
        for group, group_rows in groups.items():
            writer = SummaryWriter(log_dir=str(log_dir / relative / group))
            try:
                points += _write_scalars(writer, group_rows)
            finally:
                writer.close()
    return points


def _write_scalars(writer: Any, rows: list[dict[str, Any]]) -> int:
    step_key = next((k for k in ("step", "epoch", "episode", "iteration") if k in rows[0]), None)
    points = 0
    for index, row in enumerate(rows, 1):
        step = row.get(step_key) if step_key else index
        step = int(step) if isinstance(step, int | float) else index
        for key, value in row.items():
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if numeric and key != step_key and key not in GROUP_COLUMNS:
                writer.add_scalar(key, value, step)
                points += 1
    return points


def _write_report(out: Path) -> None:
    """Rewrite RUN/report.html; a report problem is logged, never fatal to the training run."""
    from dlrl.report import build_report

    try:
        build_report(out)
    except Exception as err:
        log.error("report.html could not be written: %s: %s", type(err).__name__, err)


def _section_dir(
    section: Section, config: Any, out: Path, resume: bool, status: dict[str, Any]
) -> tuple[Any, bool, bool]:
    """(run_dir, created, resume) of a section: continue an interrupted or failed one where possible.

    A section that failed last time and whose config has changed since (the fix of its failure may well
    change it) starts afresh; an interrupted one must match, as with any ``--resume``.
    """
    from dlrl.rundir import choose_run_dir

    path = out / section.name
    section_resume = resume and (path / "config.yaml").exists()
    try:
        run_dir, created = choose_run_dir(section.name, config, path, section_resume)
    except DlrlError as err:
        if not (section_resume and status.get(section.name, {}).get("status") == "failed"):
            raise
        log.warning("%s: failed last time and cannot be continued (%s); starting afresh", section.name, err)
        shutil.rmtree(path)
        run_dir, created = choose_run_dir(section.name, config, path, False)
        section_resume = False
    return run_dir, created, section_resume


def run_all(
    out: Path,
    sections: list[Section],
    *,
    quick: bool = False,
    seed: int = 0,
    resume: bool = False,
    data_dir: str | None = None,
    sets: dict[str, list[str]] | None = None,
    tensorboard: bool = False,
    report: bool = True,
) -> dict[str, Any]:
    """Run ``sections`` into ``out``; returns the status record (also written to out/sections.json).

    sets: section -> ['key=value', ...] overrides on top of the profile (``--set SECTION.KEY=VALUE``).
    """
    from dlrl.experiments import get_experiment
    from dlrl.experiments.runner import run_experiment
    from dlrl.rundir import RunDir

    sets = sets or {}
    profile = "quick" if quick else "full"
    if tensorboard:
        check_tensorboard()
    configs = _resolve_configs(sections, quick, seed, sets, data_dir)

    run = RunDir(out)
    status_path = out / "sections.json"
    status: dict[str, Any] = json.loads(status_path.read_text()) if resume and status_path.exists() else {}
    info: dict[str, Any] = (
        json.loads((out / "run.json").read_text()) if resume and (out / "run.json").exists() else {}
    )
    run.path.mkdir(parents=True, exist_ok=True)
    previous_seconds = float(info.get("seconds", 0.0))
    selected = [s.name for s in sections]
    info.update(
        {
            "profile": profile,
            "seed": seed,
            "sets": sets,
            "data_dir": data_dir,
            "sections": [s.name for s in SECTIONS]
            + [n for n in info.get("sections", []) if n not in {s.name for s in SECTIONS}],
            "parts": {s.name: s.part for s in SECTIONS},
            "selected": selected,
            "seconds": previous_seconds,
        }
    )
    info.setdefault("started", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    if resume:
        info["resumed"] = [*info.get("resumed", []), time.strftime("%Y-%m-%dT%H:%M:%S%z")]
    for section in SECTIONS:
        if section.name not in selected and status.get(section.name, {}).get("status") in (None, "skipped"):
            status[section.name] = {
                "status": "skipped",
                "experiment": section.experiment,
                "part": section.part,
            }
    if not (out / "env.json").exists():
        _write_env(run, seed, profile)
    run.write_json("run.json", info)
    run.write_json("sections.json", status)

    if report:
        _write_report(out)  # from the first second on, report.html shows what is planned and what is done
    progress = StageProgress(expected_seconds(sections, quick))
    finished_earlier = [s.name for s in sections if status.get(s.name, {}).get("status") == "done"]
    progress.skipped.update(finished_earlier)  # out of the ETA from the start
    session_started = time.perf_counter()

    def save_state() -> None:
        info["seconds"] = round(previous_seconds + time.perf_counter() - session_started, 1)
        run.write_json("run.json", info)
        run.write_json("sections.json", status)

    log.info(
        "dlrl run (%s profile): %d section%s into %s",
        profile,
        len(sections),
        "s" if len(sections) != 1 else "",
        out,
    )
    for section in sections:
        if status.get(section.name, {}).get("status") == "done":
            log.info(progress.skip(section.name, "done earlier, skipped"))
            continue
        log.info(progress.start(section.name))
        wall_started, cpu_started = time.perf_counter(), cpu_seconds()
        # "interrupted" until it finishes or fails: also what a SystemExit or Ctrl-C leaves behind
        record: dict[str, Any] = {"experiment": section.experiment, "part": section.part}
        record["status"] = "interrupted"
        try:
            config = configs[section.name]
            if isinstance(config, str):
                raise DlrlError(config)
            if section.experiment.startswith(SEARCH_PREFIX):
                _run_search_section(config, out / section.name)
            else:
                entry = get_experiment(section.experiment)
                run_dir, created, section_resume = _section_dir(section, config, out, resume, status)
                run_experiment(entry, config, run_dir, section_resume, created)
            record["status"] = "done"
        except Exception as err:  # a failing section is recorded; the others still run
            record.update(
                status="failed", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc()
            )
        finally:
            # An interrupted section's earlier session counts towards its time.
            earlier = (
                status.get(section.name, {})
                if status.get(section.name, {}).get("status") == "interrupted"
                else {}
            )
            record["seconds"] = round(time.perf_counter() - wall_started + earlier.get("seconds", 0.0), 1)
            record["cpu_seconds"] = round(cpu_seconds() - cpu_started + earlier.get("cpu_seconds", 0.0), 1)
            status[section.name] = record
            save_state()
            line = progress.finish(
                section.name, record["status"].upper() if record["status"] != "done" else "done"
            )
            if record["status"] == "failed":
                log.error("%s: %s", line, record["error"])
            else:
                log.info(line)
            if tensorboard and (out / section.name).is_dir():
                try:
                    log_tensorboard(out / section.name, out / "tensorboard" / section.name)
                except Exception as err:
                    log.error("%s: TensorBoard logging failed: %s", section.name, err)
            if report:
                _write_report(out)
    save_state()
    return status


def add_parser(subparsers: Any, formatter: type) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run every experiment and write one HTML report",
        formatter_class=formatter,
        description="Run the whole project end to end into one run directory and write RUN_DIR/report.html\n"
        "(rewritten after every section, so a partial report always exists). A failing section is recorded\n"
        "in the report and the others still run; the exit code is 1 if any section failed.\n\n"
        "Sections: " + ", ".join(f"{s.name} ({s.part})" for s in SECTIONS),
        epilog="Examples:\n"
        "  dlrl run --quick                       every section with small budgets (minutes)\n"
        "  dlrl run --only part1 --out runs/p1    Part 1 only, full budgets\n"
        "  dlrl run --quick --set classifier.epochs=1 --set classifier.data.limit=500\n"
        "  dlrl run --resume --out runs/p1        after Ctrl-C: skip finished sections, continue the rest\n"
        "  dlrl report runs/p1                    rebuild runs/p1/report.html without retraining",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=None,
        help="small budgets for every section (the README's main command)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for every section (default: 0)")
    parser.add_argument("--out", metavar="DIR", help="run directory (default: runs/run-<timestamp>)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue --out DIR (or the latest run): skip finished sections, continue the "
        "interrupted one from its checkpoint; the profile and --set of the run are reused",
    )
    parser.add_argument(
        "--only", metavar="LIST", help="comma-separated parts or sections to run, e.g. part1,dqn"
    )
    parser.add_argument("--skip", metavar="LIST", help="comma-separated parts or sections to leave out")
    parser.add_argument(
        "--set",
        metavar="SECTION.KEY=VALUE",
        action="append",
        dest="sets",
        help="config override for one section, e.g. classifier.epochs=1 (repeatable)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="directory with IDX files (also: DLRL_DATA_DIR)")
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log every section's metrics.csv as TensorBoard scalars into RUN_DIR/tensorboard/ "
        "(needs the optional 'tensorboard' package)",
    )
    parser.set_defaults(handler=_cmd_run)


def _resume_settings(
    args: argparse.Namespace, out: Path
) -> tuple[bool, int, dict[str, list[str]], str | None]:
    """Profile, seed, --set and data dir for a resumed run: the stored ones, unless given and the same."""
    info = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    stored_quick = info.get("profile", "full") == "quick"
    stored_seed = int(info.get("seed", 0))
    stored_sets = info.get("sets", {}) or {}
    if args.quick is not None and bool(args.quick) != stored_quick:
        raise DlrlError(
            f"--resume: {out} was started with the {info.get('profile')} profile; resume it with the "
            "same options (or leave them out: they are reused)"
        )
    if args.seed is not None and args.seed != stored_seed:
        raise DlrlError(f"--resume: {out} was started with --seed {stored_seed}, not {args.seed}")
    sets = parse_sets(args.sets) if args.sets else stored_sets
    if args.sets and sets != stored_sets:
        raise DlrlError(f"--resume: --set differs from the run in {out} ({stored_sets or 'none'} there)")
    return stored_quick, stored_seed, sets, args.data_dir or info.get("data_dir")


def _cmd_run(args: argparse.Namespace) -> int:
    from dlrl.rundir import DEFAULT_RUNS_ROOT, fresh_run_path, latest_run_path

    if args.tensorboard:
        check_tensorboard()
    if args.resume:
        out = (
            Path(args.out) if args.out else latest_run_path("run", DEFAULT_RUNS_ROOT, marker="sections.json")
        )
        if out is None or not (out / "sections.json").is_file():
            where = f"{out} is not" if out is not None else "no earlier"
            raise DlrlError(
                f"--resume: {where} a 'dlrl run' directory (no sections.json); pass --out RUN_DIR"
            )
        quick, seed, sets, data_dir = _resume_settings(args, out)
        if args.only or args.skip:
            sections = select_sections(args.only, args.skip)
        else:
            stored = (
                json.loads((out / "run.json").read_text()).get("selected")
                if (out / "run.json").exists()
                else None
            )
            sections = [s for s in SECTIONS if s.name in stored] if stored else select_sections(None, None)
    else:
        sections = select_sections(args.only, args.skip)
        quick, seed, sets, data_dir = bool(args.quick), args.seed or 0, parse_sets(args.sets), args.data_dir
        out = fresh_run_path("run", args.out)
    status = run_all(
        out,
        sections,
        quick=quick,
        seed=seed,
        resume=args.resume,
        data_dir=data_dir,
        sets=sets,
        tensorboard=args.tensorboard,
    )
    print(f"{'section':<14} {'status':<12} {'wall':>8} {'cpu':>8}")
    for section in sections:
        entry = status.get(section.name, {})
        print(
            f"{section.name:<14} {entry.get('status', '?'):<12} {format_seconds(entry.get('seconds')):>8} "
            f"{format_seconds(entry.get('cpu_seconds')):>8}"
        )
    info = json.loads((out / "run.json").read_text())
    print(f"total wall time {format_seconds(info.get('seconds'))}")
    print(f"report: {out / 'report.html'}")
    failed = [s.name for s in sections if status.get(s.name, {}).get("status") != "done"]
    if failed:
        print(f"failed sections: {', '.join(failed)} (details in the report and {out / 'sections.json'})")
        return 1
    return 0
