"""The ``dlrl`` command line: parses arguments, calls experiments, maps user errors to one line and exit 2.

Every subcommand is a thin wrapper over a function a test can call directly.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, NoReturn

from dlrl.errors import DlrlError

log = logging.getLogger("dlrl")

COMMON_EPILOG = """\
Config keys (set with key=value, or in a YAML/TOML file given to --config):
{fields}

Layering, later wins: defaults < --quick < --config FILE < options such as --seed < key=value.
The resolved config is written to RUN_DIR/config.yaml; `--config RUN_DIR/config.yaml` re-runs it.
"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    pass


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML or TOML config file")
    parser.add_argument("--seed", type=int, help="seed for every random draw (default: the config's, 0)")
    parser.add_argument("--out", metavar="DIR", help="run directory (default: runs/<experiment>-<timestamp>)")
    parser.add_argument("--quick", action="store_true", help="small budget: a smoke run, seconds to a minute")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run (--out DIR, or the latest one) from its last checkpoint",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="directory with IDX files (also: DLRL_DATA_DIR)")
    parser.add_argument("--device", help="torch device: auto, cpu, cuda")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=3e-4"
    )


def _experiment_parser(subparsers: Any, entry: Any) -> None:
    from dlrl.config import describe_fields

    cls = entry.config_cls()
    fields = "\n".join(line for line in describe_fields(cls) if not line.lstrip().startswith("experiment="))
    parser = subparsers.add_parser(
        entry.cli_name,
        help=entry.help,
        description=entry.help,
        formatter_class=HelpFormatter,
        epilog=COMMON_EPILOG.format(fields=fields),
    )
    _add_run_options(parser)
    for flag, key, kwargs in entry.options:
        parser.add_argument(flag, dest=f"opt:{key}", **kwargs)
    parser.set_defaults(handler=_cmd_experiment, entry=entry)


def options_from_args(args: argparse.Namespace, cls: Any) -> dict[str, Any]:
    """Dotted config keys set by flags (--seed, --device, --data-dir, experiment-specific flags)."""
    options: dict[str, Any] = {"seed": args.seed, "device": args.device}
    if getattr(args, "data_dir", None) and "data" in cls.model_fields:
        options["data.data_dir"] = args.data_dir
    for dest, value in vars(args).items():
        if dest.startswith("opt:") and value is not None:
            options[dest[4:]] = value
    return options


def _cmd_experiment(args: argparse.Namespace) -> int:
    from dlrl.experiments.runner import choose_run_dir, resolve_config, run_experiment

    entry = args.entry
    options = options_from_args(args, entry.config_cls())
    config = resolve_config(entry, args.config, args.overrides, args.quick, options)
    run_dir, created = choose_run_dir(entry.name, config, args.out, args.resume)
    log.info("%s: run directory %s", entry.name, run_dir.path)
    summary = run_experiment(entry, config, run_dir, args.resume, created)
    print(json.dumps(_headline(summary), indent=2))
    print(f"run directory: {run_dir.path}")
    return 0


def _headline(summary: dict[str, Any]) -> dict[str, Any]:
    """Scalars only: nested tables stay in summary.json."""
    return {k: v for k, v in summary.items() if not isinstance(v, dict | list)}


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from dlrl.config import read_config_file
    from dlrl.experiments import get_experiment
    from dlrl.rundir import RunDir

    run_dir = RunDir(args.run_dir)
    if not run_dir.config_path.is_file():
        is_run_all = (run_dir.path / "sections.json").is_file()
        hint = " (a 'dlrl run' directory: evaluate one of its sections)" if is_run_all else ""
        raise DlrlError(f"{run_dir.path}: not a dlrl run directory (no config.yaml){hint}")
    experiment = read_config_file(run_dir.config_path).get("experiment")
    if not isinstance(experiment, str):
        raise DlrlError(f"{run_dir.config_path}: has no 'experiment' key")
    module = get_experiment(experiment).load()
    if not hasattr(module, "evaluate"):
        raise DlrlError(f"{run_dir.path}: '{experiment}' runs cannot be re-evaluated")
    print(json.dumps(_headline(module.evaluate(run_dir)), indent=2))
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from dlrl.data import sources

    names = [args.dataset] if args.dataset else list(sources.DATASETS)
    for name in names:
        spec = sources.get_spec(name)
        found = sources.locate(spec, args.data_dir)
        if args.action == "info":
            where = f"{found.directory} ({found.origin})" if found else "no local copy"
            if name == "mnist" and not found:
                where += "; falls back to the shipped 10,000-image sample"
            print(f"{name}: {where}")
            print(f"  searched: {', '.join(str(d) for _, d in sources.candidate_dirs(spec, args.data_dir))}")
            print(f"  mirrors: {' '.join(sources.mirrors_for(spec))}")
        elif args.action == "fetch":
            target = sources.download_root(args.data_dir) / name
            sources.fetch(spec, target)
            print(f"{name}: downloaded and verified in {target}")
        else:
            if found is None and name == "mnist":
                found = sources.sample_files()
            if found is None:
                if args.dataset:
                    raise DlrlError(f"{name}: no local copy to verify (see 'dlrl data info {name}')")
                print(f"{name}: no local copy, skipped")
                continue
            print(f"{name} ({found.origin}, {found.directory}):")
            for line in sources.verify(found):
                print(f"  {line}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from dlrl.experiments import EXPERIMENTS

    parser = ArgumentParser(
        prog="dlrl",
        description="Deep learning and reinforcement learning, end to end: data, training, search, report.\n"
        "`dlrl run --quick` runs every experiment with small budgets and writes RUN_DIR/report.html.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for entry in EXPERIMENTS.values():
        _experiment_parser(subparsers, entry)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="recompute test metrics of a run from the checkpoint it tested",
        description="Recompute the test metrics of RUN_DIR from the checkpoint the run tested "
        "(checkpoints/best.pt, or last.pt where the experiment tests the final weights).",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.set_defaults(handler=_cmd_evaluate)

    data = subparsers.add_parser(
        "data",
        help="find, download and verify datasets",
        formatter_class=HelpFormatter,
        description="info: where each dataset would be read from; fetch: download from the official mirrors "
        "(md5-checked, retried); verify: read every file and compare checksums.",
    )
    data.add_argument("action", choices=["info", "fetch", "verify"])
    data.add_argument("dataset", nargs="?", choices=["mnist", "fashion-mnist"], help="default: all")
    data.add_argument("--data-dir", metavar="DIR", help="directory to search first / download into")
    data.set_defaults(handler=_cmd_data)

    for register in _EXTRA_COMMANDS:
        register(subparsers)
    return parser


def _register_run(subparsers: Any) -> None:
    from dlrl.experiments import run_all

    run_all.add_parser(subparsers, HelpFormatter)


def _register_report(subparsers: Any) -> None:
    from dlrl.report import command

    command.add_parser(subparsers, HelpFormatter)


def _register_rl(subparsers: Any) -> None:
    from dlrl.experiments import dqn

    dqn.add_parser(subparsers, HelpFormatter)


def _register_tune(subparsers: Any) -> None:
    from dlrl.tune import cli as tune_cli

    tune_cli.add_parser(subparsers, HelpFormatter)


# Commands defined beside their implementation: each adds its own subparser (with handler=...).
_EXTRA_COMMANDS = [_register_run, _register_report, _register_rl, _register_tune]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (tests and tools swap it), not the one at creation."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(verbose: int, quiet: bool) -> None:
    """Messages of the ``dlrl`` loggers go to stderr; other libraries' loggers are left alone."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    handler = _StderrHandler()
    fmt = "%(asctime)s %(message)s" if verbose else "%(message)s"
    handler.setFormatter(logging.Formatter(fmt, "%H:%M:%S"))
    handler.set_name("dlrl-cli")
    log.handlers[:] = [h for h in log.handlers if h.get_name() != "dlrl-cli"] + [handler]
    log.setLevel(level)


class ArgumentParser(argparse.ArgumentParser):
    """Usage errors in one line, like every other dlrl error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    configure_logging(args.verbose, args.quiet)
    try:
        return int(args.handler(args) or 0)
    except DlrlError as err:
        print(f"dlrl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "; continue with the same command plus --resume" if hasattr(args, "resume") else ""
        print(f"dlrl: interrupted{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
