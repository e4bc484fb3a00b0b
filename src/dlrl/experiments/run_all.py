"""``dlrl run``: every experiment in sequence into one run directory, then one self-contained report.

Each section runs in RUN/<section>/ as an ordinary run directory; a failing section is recorded
(RUN/sections.json) and the rest go on. ``--resume`` skips finished sections and continues the
interrupted one.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlrl.errors import DlrlError
from dlrl.rundir import RunDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Section:
    name: str  # directory name under the run
    part: str  # part1 / part2 / part3, for --only / --skip
    experiment: str  # registry name
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted keys applied on top of the profile


SECTIONS: list[Section] = [
    Section("regression", "part1", "regression"),
    Section("classifier", "part1", "classifier"),
    Section("autoencoder", "part2", "autoencoder", {"variant": "ae"}),
    Section("dae", "part2", "autoencoder", {"variant": "dae"}),
    Section("vae", "part2", "autoencoder", {"variant": "vae"}),
    # encoder_run is relative: finetune looks for it beside its own run directory (the section above).
    Section("finetune", "part2", "finetune", {"encoder_run": "autoencoder"}),
]


def select_sections(only: str | None, skip: str | None) -> list[Section]:
    known = {s.part for s in SECTIONS} | {s.name for s in SECTIONS}
    chosen = SECTIONS
    for option, value in (("--only", only), ("--skip", skip)):
        if not value:
            continue
        names = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DlrlError(f"{option}: unknown section '{unknown[0]}' (choose from {', '.join(sorted(known))})")
        keep = option == "--only"
        chosen = [s for s in chosen if ((s.part in names) or (s.name in names)) == keep]
    if not chosen:
        raise DlrlError("--only/--skip leave no section to run")
    return chosen


def run_all(out: Path, quick: bool, seed: int, sections: list[Section], resume: bool = False,
            data_dir: str | None = None) -> dict[str, Any]:
    """Run ``sections`` into ``out``; returns the status record (also written to out/sections.json)."""
    from dlrl.experiments import get_experiment
    from dlrl.experiments.runner import choose_run_dir, resolve_config, run_experiment

    run = RunDir(out)
    status_path = out / "sections.json"
    status: dict[str, Any] = json.loads(status_path.read_text()) if resume and status_path.exists() else {}
    run.path.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for index, section in enumerate(sections, 1):
        previous = status.get(section.name, {})
        if previous.get("status") == "done":
            log.info("[%d/%d] %s: done earlier, skipped", index, len(sections), section.name)
            continue
        entry = get_experiment(section.experiment)
        log.info("[%d/%d] %s: starting (elapsed %.0fs)", index, len(sections), section.name,
                 time.perf_counter() - started)
        section_started = time.perf_counter()
        try:
            options = {"seed": seed, **section.overrides}
            if data_dir and "data" in entry.config_cls().model_fields and section.experiment != "regression":
                options["data.data_dir"] = data_dir
            config = resolve_config(entry, quick=quick, options=options)
            section_resume = resume and (out / section.name / "config.yaml").exists()
            run_dir, created = choose_run_dir(section.name, config, out / section.name, section_resume)
            summary = run_experiment(entry, config, run_dir, section_resume, created)
            status[section.name] = {"status": "done", "seconds": round(time.perf_counter() - section_started, 1),
                                    "experiment": section.experiment}
            log.info("[%d/%d] %s: done in %.0fs", index, len(sections), section.name,
                     time.perf_counter() - section_started)
        except KeyboardInterrupt:
            status[section.name] = {"status": "interrupted", "experiment": section.experiment}
            run.write_json("sections.json", status)
            raise
        except Exception as err:  # a failing section is recorded; the others still run
            log.error("[%d/%d] %s: FAILED: %s", index, len(sections), section.name, err)
            status[section.name] = {
                "status": "failed",
                "experiment": section.experiment,
                "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc(),
                "seconds": round(time.perf_counter() - section_started, 1),
            }
        run.write_json("sections.json", status)
    return status


def add_parser(subparsers: Any, formatter: type) -> None:
    parser = subparsers.add_parser(
        "run", help="run every experiment and write one HTML report", formatter_class=formatter,
        description="Run the whole project end to end into one run directory and write RUN_DIR/report.html.\n"
        "Sections: " + ", ".join(f"{s.name} ({s.part})" for s in SECTIONS),
    )
    parser.add_argument("--quick", action="store_true", help="small budgets for every section")
    parser.add_argument("--seed", type=int, default=0, help="seed for every section")
    parser.add_argument("--out", metavar="DIR", help="run directory (default: runs/run-<timestamp>)")
    parser.add_argument("--resume", action="store_true", help="skip finished sections, continue the interrupted one")
    parser.add_argument("--only", metavar="LIST", help="comma-separated parts or sections to run, e.g. part1,dqn")
    parser.add_argument("--skip", metavar="LIST", help="comma-separated parts or sections to leave out")
    parser.add_argument("--data-dir", metavar="DIR", help="directory with IDX files (also: DLRL_DATA_DIR)")
    parser.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from dlrl.experiments.runner import DEFAULT_RUNS_ROOT, latest_run_path, new_run_path

    sections = select_sections(args.only, args.skip)
    if args.resume:
        out = Path(args.out) if args.out else latest_run_path("run", DEFAULT_RUNS_ROOT, marker="sections.json")
        if out is None or not out.exists():
            raise DlrlError("--resume: no earlier 'dlrl run' directory found; pass --out RUN_DIR")
    else:
        out = Path(args.out) if args.out else new_run_path("run")
        if out.exists() and any(out.iterdir()):
            raise DlrlError(f"--out {out}: directory exists and is not empty (use --resume to continue it)")
    status = run_all(out, args.quick, args.seed, sections, args.resume, args.data_dir)
    failed = [name for name, s in status.items() if s.get("status") != "done"]
    print(f"run directory: {out}")
    if failed:
        print(f"failed sections: {', '.join(failed)} (see {out / 'sections.json'})")
        return 1
    return 0
