"""Headline numbers of `dlrl run --quick` and a few single experiments, to check that a restructure changed
structure and not results.

    python bench/headline_numbers.py record OUT.json [--work DIR] [--run-dir RUN]   run, write the numbers
    python bench/headline_numbers.py compare BEFORE.json AFTER.json  print every difference (JSON)

Numbers are compared on the same machine only: CPUs differ in arithmetic (bf16 or fp32), so a file recorded
on one machine is no reference for another. Timings and paths are left out; everything else a summary.json
holds as a number, string or bool is kept.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Keys that measure the machine or name a place, not the result.
VOLATILE = (
    "seconds",
    "per_second",
    "ray_",
    "encoder_run",
    "data_origin",
    "run_dir",
    "path",
    "best_trial",
)  # best_trial: a random Ray id

# (name, dlrl arguments): single experiments whose numbers `dlrl run --quick` does not cover.
SINGLE_RUNS = [
    ("autoencoder-cv", ["autoencoder", "--quick", "--folds", "3"]),
    ("tune-regression-serial", ["tune", "regression", "--quick", "--max-concurrent", "1"]),
    ("dqn-seed1", ["dqn", "--quick", "--seeds", "1"]),
]


def _keep(key: str) -> bool:
    return not any(part in key for part in VOLATILE)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if _keep(str(key)):
                out.update(flatten(item, f"{prefix}{key}."))
        return out
    if isinstance(value, list):
        return {f"{prefix}{i}": v for i, v in enumerate(value) if isinstance(v, int | float | str | bool)}
    return {prefix.rstrip("."): value}


def summaries(directory: Path) -> dict[str, Any]:
    """Every summary.json under ``directory``, flattened, keyed by its relative directory."""
    numbers: dict[str, Any] = {}
    for path in sorted(directory.rglob("summary.json")):
        name = path.parent.relative_to(directory).as_posix() or "."
        numbers.update({f"{name}:{k}": v for k, v in flatten(json.loads(path.read_text())).items()})
    return numbers


def dlrl(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "dlrl.cli", "-q", *args], check=True, stdout=subprocess.DEVNULL)


def record(out: Path, work: Path, run_dir: Path | None = None) -> None:
    numbers: dict[str, Any] = {}
    if run_dir is None:
        run_dir = work / "run-quick"
        dlrl(["run", "--quick", "--out", str(run_dir)])
    numbers.update({f"run-quick/{k}": v for k, v in summaries(run_dir).items()})
    for name, args in SINGLE_RUNS:
        dlrl([*args, "--out", str(work / name)])
        numbers.update({f"{name}/{k}": v for k, v in summaries(work / name).items()})
    out.write_text(json.dumps(numbers, indent=1, sort_keys=True))
    print(json.dumps({"recorded": len(numbers), "file": str(out)}))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def compare(before: Path, after: Path) -> None:
    old, new = json.loads(before.read_text()), json.loads(after.read_text())
    changed = {k: [old[k], new[k]] for k in sorted(old.keys() & new.keys()) if not same(old[k], new[k])}
    report = {
        "compared": len(old.keys() & new.keys()),
        "identical": len(old.keys() & new.keys()) - len(changed),
        "changed": changed,
        "only_before": sorted(old.keys() - new.keys()),
        "only_after": sorted(new.keys() - old.keys()),
    }
    print(json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out", type=Path)
    rec.add_argument("--work", type=Path, help="where the runs go (default: a temporary directory)")
    rec.add_argument("--run-dir", type=Path, help="a finished `dlrl run --quick` directory to read instead")
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "compare":
        compare(args.before, args.after)
    elif args.work:
        record(args.out, args.work, args.run_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="dlrl-headline-") as work:
            record(args.out, Path(work), args.run_dir)


if __name__ == "__main__":
    main()
