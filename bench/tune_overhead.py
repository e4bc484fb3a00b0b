"""What Ray Tune costs: the same small regression search through Ray Tune and as a plain sequential loop.

Ray runs a seeded random search with the FIFO scheduler (every trial to the end, no early stopping); the
loop then trains exactly those trials (same parameters, folds and seeds) one after another in this process
with the same code (``dlrl.tuning.trial.run_trial``) and no Ray at all. Prints JSON: both wall times, Ray's
start-up/shutdown, the ratio, and the best mean validation MSE of each (equal: the trials are the same).

    .venv/bin/python bench/tune_overhead.py [--trials 8] [--epochs 30] [--folds 3] [--max-concurrent N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from dlrl.experiments.search import resolve_search, run_search
from dlrl.tuning.results import load_trials
from dlrl.tuning.trial import run_trial
from dlrl.utils import cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument(
        "--max-concurrent", type=int, default=None, help="Ray trials at a time (default: cores)"
    )
    parser.add_argument("--out", help="run directory of the Ray search (default: a temporary one)")
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
    out = Path(args.out or tempfile.mkdtemp(prefix="dlrl-tune-bench-")) / "search"
    started = time.perf_counter()
    run_dir, summary = run_search(setup, out)
    ray_wall = time.perf_counter() - started

    records = load_trials(run_dir, setup)
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

    print(
        json.dumps(
            {
                "benchmark": "tune_overhead",
                "experiment": "regression",
                "trials": len(records),
                "folds": setup.tune.folds,
                "epochs": args.epochs,
                "cores": os.cpu_count(),
                "load_average_1min": round(os.getloadavg()[0], 2),
                "ray": {
                    "wall_seconds": round(ray_wall, 2),
                    "start_seconds": summary["ray_start_seconds"],
                    "shutdown_seconds": summary["ray_shutdown_seconds"],
                    "search_seconds": summary["search_seconds"],
                    "max_concurrent": args.max_concurrent or os.cpu_count(),
                    "best_val_mse": summary["best_metric"],
                },
                "sequential": {
                    "wall_seconds": round(loop_wall, 2),
                    "cpu_seconds": round(loop_cpu, 2),
                    "best_val_mse": min(loop_best),
                },
                "ratio_ray_over_sequential": round(ray_wall / loop_wall, 2),
                "trial_seconds_ray": round(ray_wall / len(records), 2),
                "trial_seconds_sequential": round(loop_wall / len(records), 2),
                "run_dir": str(run_dir.path),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
