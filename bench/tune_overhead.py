"""What Ray Tune costs: the same small regression search through Ray Tune and as a plain sequential loop.

Ray runs a seeded random search with the FIFO scheduler (every trial to the end, no early stopping): on a new
local Ray, and with ``--address`` also attached to a running cluster (e.g. the README's one-machine cluster:
a head without CPUs and two one-CPU workers). The loop then trains exactly those trials (same parameters,
folds and seeds) one after another in this process with the same code (``dlrl.tuning.trial.run_trial``) and
no Ray at all. Prints JSON: the wall times, Ray's start-up/shutdown, and per trial the seconds Ray adds over
the loop, ``(ray wall - loop wall) / trials`` (so a parallel search can make it negative), and the best mean
validation MSE of each (equal: the trials are the same).

    .venv/bin/python bench/tune_overhead.py [--trials 8] [--epochs 30] [--folds 3] [--max-concurrent N]
                                            [--address HOST:PORT]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from dlrl.experiments.search import resolve_search, run_search
from dlrl.tuning.results import load_trials
from dlrl.tuning.trial import run_trial
from dlrl.utils import cpu_seconds
from machine import cpuinfo


def _search(setup: Any, out: Path, address: str | None) -> dict[str, Any]:
    started = time.perf_counter()
    run_dir, summary = run_search(setup, out, address=address)
    wall = time.perf_counter() - started
    return {
        "run_dir": run_dir,
        "wall_seconds": round(wall, 2),
        "start_seconds": summary["ray_start_seconds"],
        "shutdown_seconds": summary["ray_shutdown_seconds"],
        "search_seconds": summary["search_seconds"],
        "cpus": summary["ray_cpus"],
        "nodes": summary["ray_nodes"],
        "trials_per_node": summary["trials_per_node"],
        "best_val_mse": summary["best_metric"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument(
        "--max-concurrent", type=int, default=None, help="Ray trials at a time (default: the CPUs)"
    )
    parser.add_argument("--address", help="also run the search attached to this Ray cluster")
    parser.add_argument(
        "--out", help="directory for the searches' run directories (default: a temporary one)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    setup = resolve_search(
        "regression",
        quick=True,
        overrides=[f"epochs={args.epochs}", "ensemble=0", "device=cpu"],
        tune_options={
            "num_samples": args.trials,
            "folds": args.folds,
            "search": "random",
            "scheduler": "fifo",
            "max_concurrent": args.max_concurrent,
        },
    )
    root = Path(args.out or tempfile.mkdtemp(prefix="dlrl-tune-bench-"))
    searches = {"ray": _search(setup, root / "search", None)}
    if args.address:
        searches["ray_attached"] = _search(setup, root / "search-attached", args.address)

    records = load_trials(searches["ray"]["run_dir"], setup)
    base = setup.base.model_dump(mode="json")
    loop_started, loop_cpu = time.perf_counter(), cpu_seconds(children=False)
    loop_best = []
    for record in records:
        rows = run_trial(
            setup.adapter,
            base,
            record.params,
            setup.tune.folds,
            setup.base.seed,
            report=lambda row, state: None,
            metric=setup.metric,
        )
        loop_best.append(min(row[setup.metric] for row in rows))
    loop_wall = time.perf_counter() - loop_started
    loop_cpu = cpu_seconds(children=False) - loop_cpu

    trials = len(records)
    result: dict[str, Any] = {
        "benchmark": "tune_overhead",
        "experiment": "regression",
        "trials": trials,
        "folds": setup.tune.folds,
        "epochs": args.epochs,
        "cores": os.cpu_count(),
        "cpu": cpuinfo()[0] or platform.processor() or "unknown",
        "load_average_1min": round(os.getloadavg()[0], 2),
        "sequential": {
            "wall_seconds": round(loop_wall, 2),
            "cpu_seconds": round(loop_cpu, 2),
            "best_val_mse": min(loop_best),
        },
        "trial_seconds_sequential": round(loop_wall / trials, 2),
    }
    for name, search in searches.items():
        run_dir = search.pop("run_dir")
        result[name] = {
            **search,
            "max_concurrent": args.max_concurrent or search["cpus"],
            "run_dir": str(run_dir.path),
        }
        result[f"ratio_{name}_over_sequential"] = round(search["wall_seconds"] / loop_wall, 2)
        result[f"overhead_seconds_per_trial_{name}"] = round((search["wall_seconds"] - loop_wall) / trials, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
