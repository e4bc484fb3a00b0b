"""What every command shell shares: the parser classes, the run options, turning flags into config keys,
running one experiment from parsed arguments, logging set-up."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from dlrl.config import describe_fields
from dlrl.experiments import ExperimentEntry

log = logging.getLogger("dlrl")

COMMON_EPILOG = """\
Config keys (set with key=value, or in a YAML/TOML file given to --config):
{fields}

Layering, later wins: defaults < --quick < --config FILE < options such as --seed < key=value.
The resolved config is written to RUN_DIR/config.yaml; `--config RUN_DIR/config.yaml` re-runs it.
"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    pass


def add_run_options(parser: argparse.ArgumentParser) -> None:
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


def config_epilog(cls: Any) -> str:
    """The help epilog of a command that runs an experiment: its config keys and how settings layer."""
    fields = "\n".join(line for line in describe_fields(cls) if not line.lstrip().startswith("experiment="))
    return COMMON_EPILOG.format(fields=fields)


def add_experiment_arguments(parser: argparse.ArgumentParser, entry: ExperimentEntry) -> None:
    """The run options and the experiment's own flags; the parsed arguments run it with ``cmd_experiment``."""
    add_run_options(parser)
    for flag, key, kwargs in entry.options:
        parser.add_argument(flag, dest=f"opt:{key}", **kwargs)
    parser.set_defaults(handler=cmd_experiment, entry=entry)


def options_from_args(args: argparse.Namespace, cls: Any) -> dict[str, Any]:
    """Dotted config keys set by flags (--seed, --device, --data-dir, experiment-specific flags)."""
    options: dict[str, Any] = {"seed": args.seed, "device": args.device}
    if getattr(args, "data_dir", None) and "data" in cls.model_fields:
        options["data.data_dir"] = args.data_dir
    for dest, value in vars(args).items():
        if dest.startswith("opt:") and value is not None:
            options[dest[4:]] = value
    return options


def cmd_experiment(args: argparse.Namespace) -> int:
    """Run the experiment of ``args.entry`` with the parsed options; print its headline numbers."""
    from dlrl.api.experiments import run_config  # keeps dlrl --help fast: the API imports matplotlib, ray
    from dlrl.experiments.runner import resolve_config  # as the API (numpy, the run directory)

    entry = args.entry
    options = options_from_args(args, entry.config_cls())
    config = resolve_config(entry, args.config, args.overrides, args.quick, options)
    result = run_config(config, out=args.out, resume=args.resume, keep_figures=False)
    print(json.dumps(headline(result.summary), indent=2))
    print(f"run directory: {result.run_dir}")
    return 0


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """Scalars only: nested tables stay in summary.json."""
    return {k: v for k, v in summary.items() if not isinstance(v, dict | list)}


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


def internal_error(err: BaseException, inline: bool = False) -> int:
    """Report an exception no layer turned into a DlrlError: one line naming a file with the full traceback
    (the failed run's traceback.txt when it has a run directory, else one in the cache), exit code 1;
    ``inline`` (-v) also prints the traceback."""
    from dlrl.rundir import first_line  # only on this path: dlrl --help must not import numpy

    text = "".join(traceback.format_exception(err))
    if inline:
        print(text, file=sys.stderr, end="")
    path = write_traceback(text, getattr(err, "dlrl_traceback", None))
    where = f"full traceback in {path}" if path else "the traceback could not be written (run with -v)"
    print(f"dlrl: internal error: {type(err).__name__}: {first_line(err)}; {where}", file=sys.stderr)
    return 1


def traceback_dir() -> Path:
    """Where tracebacks of errors outside any run directory go: $XDG_CACHE_HOME/dlrl/errors."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dlrl" / "errors"


def write_traceback(text: str, preferred: str | None = None) -> Path | None:
    """Write ``text`` to ``preferred`` (the run directory's traceback.txt), else to a new file in the cache,
    else in the temporary directory; None if nothing could be written."""
    from dlrl.utils import atomic_write_text  # as in internal_error

    name = f"traceback-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    candidates = [Path(preferred)] if preferred else []
    candidates += [traceback_dir() / name, Path(tempfile.gettempdir()) / f"dlrl-{name}"]
    for path in candidates:
        try:
            atomic_write_text(path, text)
        except Exception:  # a full disk must not hide the error being reported
            continue
        return path
    return None
