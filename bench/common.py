"""What the benchmark scripts share: one-line argument errors, the machine record around a result, JSON out.

A benchmark prints one JSON object on stdout and nothing else there (progress goes to stderr), so that
`bench/run_all.py` and a shell pipe can read it. Bad input (an unknown network, environment or option) is
one line on stderr and exit code 2, as with the `dlrl` commands.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

from dlrl.config import apply_overrides, build_config
from dlrl.config.dqn import DQNConfig
from dlrl.errors import DlrlError
from machine import load_average, machine_record


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line (``prog: error: ...``) and exit code 2, without the usage block."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(**kwargs)

    def error(self, message: str) -> NoReturn:
        fail(self.prog, message)


def fail(prog: str, message: str) -> NoReturn:
    """Stop a benchmark on bad input: one line on stderr, exit code 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


def check_choice(prog: str, option: str, value: str, choices: list[str] | tuple[str, ...]) -> None:
    if value not in choices:
        fail(prog, f"{option} {value!r}: unknown (choose from {', '.join(choices)})")


def dqn_config(prog: str, seeds: str, base: dict[str, Any], overrides: list[str]) -> DQNConfig:
    """The DQN config of a benchmark: ``base`` (None values left to the config), ``--seeds`` and the
    key=value overrides; bad seeds or a bad override is one line, exit 2."""
    try:
        seed_list = [int(s) for s in seeds.split(",")]
    except ValueError:
        fail(prog, f"--seeds {seeds!r}: give comma-separated integers, e.g. 0,1,2")
    try:
        data = apply_overrides({"experiment": "dqn", **base, "seeds": seed_list}, overrides)
        return build_config(DQNConfig, {k: v for k, v in data.items() if v is not None}, "bench options")
    except DlrlError as err:
        fail(prog, str(err))


def check_env(prog: str, env_id: str) -> None:
    """An unknown Gymnasium environment id: one line, exit 2, before anything is trained."""
    import gymnasium  # here: only the RL benchmarks need it

    try:
        gymnasium.spec(env_id)
    except gymnasium.error.Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        fail(prog, f"--env {env_id!r}: not a Gymnasium environment ({first})")


def measured(run: Callable[[], dict[str, Any]], name: str) -> dict[str, Any]:
    """``run()``'s result with the benchmark's name, the machine before it and the load after it."""
    machine = machine_record()
    started = time.perf_counter()
    result = run()
    return {
        "benchmark": name,
        "machine": machine,
        **result,
        "wall_seconds_total": round(time.perf_counter() - started, 2),
        "load_average_end": load_average(),
    }


def print_json(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=2))
