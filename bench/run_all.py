"""`make bench`: every benchmark beside its reference, one after the other on this machine, in one command.

Each benchmark runs as its own process (`python bench/NAME.py ...`); its JSON goes to RESULTS/NAME.json
wrapped with the machine record (CPU model, ISA flags, cores, torch threads and build, load average) taken
before it and the load average after it; its stderr to RESULTS/NAME.log. A benchmark whose reference is not
installed is skipped with the reason; one that fails is recorded with its last error line, and the others
still run. At the end bench/report.py writes RESULTS/dlrl-vs-references.md, the table the README links.
Before each benchmark this prints what it compares and where the reference comes from; after it, where
its figures are.

    .venv/bin/python bench/run_all.py [--only a,b] [--skip a,b] [--out DIR] [--profile full|tiny]
                                      [--emulate-avx2] [--list]

--profile tiny runs every benchmark for seconds (a smoke test of the whole chain; its numbers mean nothing).
--emulate-avx2 limits torch, oneDNN and MKL to AVX2 (on a newer CPU: the figures of an AVX2-only one).
Exit code: 0 when every benchmark ran or was skipped for a missing reference, 1 if one failed, 2 on bad
options.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import OneLineParser, fail
from machine import describe, load_average, machine_record
from report import TABLE_NAME, write_table

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


@dataclass
class Benchmark:
    name: str
    compares: str  # what against what, one line
    reference: str  # where the reference comes from
    args: list[str]  # full profile
    tiny: list[str]  # --profile tiny: seconds
    # Full profile: minutes measured on a 2-core AVX2 AMD EPYC (make bench, 2026-12-01: 20.8 min in all)
    expected_minutes: float
    requires: dict[str, str] = field(default_factory=dict)  # module -> how to install it
    prepare: list[str] | None = None  # a dlrl command whose run directory is the first argument (tsne)
    prepare_tiny: list[str] | None = None


TINY_CNN = ["--dataset", "mnist", "--limit", "256", "--epochs", "1"]
TINY_CNN += ["--set", "epochs=1", "--set", "model.hidden_sizes=[16]"]
TINY_DQN = ["total_steps=400", "learning_starts=100", "eval_every=200", "eval_episodes=2", "final_episodes=2"]

BENCHMARKS = [
    Benchmark(
        "ffn_pipeline",
        "one epoch of the Quickstart MLP: the PyTorch tutorial's data pipeline vs dlrl's, same weights",
        "re-implementation of torchvision's FashionMNIST + ToTensor + DataLoader "
        "(torchvision not installable)",
        ["--network", "tutorial", "--epochs", "3"],
        ["--dataset", "mnist", "--limit", "256", "--epochs", "1", "--network", "tutorial"],
        2.2,
    ),
    Benchmark(
        "cnn_reference",
        "time to the PyTorch examples CNN's 3-epoch accuracy: dlrl's FFN (fp32; bf16 where native) "
        "vs the CNN",
        "re-implementation of pytorch/examples mnist/main.py (torchvision not installable)",
        [],
        TINY_CNN,
        6.3,
    ),
    Benchmark(
        "vae",
        "3 epochs of dlrl's conv VAE vs the PyTorch examples MLP VAE, test loss per image",
        "re-implementation of pytorch/examples vae/main.py",
        ["--epochs", "3"],
        ["--dataset", "mnist", "--limit", "256", "--epochs", "1", "--hidden-dim", "32"],
        1.8,
    ),
    Benchmark(
        "tsne",
        "t-SNE of 10,000 autoencoder codes: openTSNE (FFT) vs scikit-learn Barnes-Hut",
        "scikit-learn (installed dependency)",
        ["--points", "10000", "--n-jobs", "2"],
        ["--points", "200", "--n-jobs", "2"],
        2.9,
        requires={"openTSNE": "pip install openTSNE", "sklearn": "pip install scikit-learn"},
        prepare=["autoencoder", "--quick", "--dataset", "fashion-mnist", "latent.tsne=false"],
        prepare_tiny=["autoencoder", "--quick", "epochs=1", "data.limit=200", "latent.tsne=false"],
    ),
    Benchmark(
        "dqn",
        "DQN training steps per CPU second: dlrl's loop vs a naive loop (plus one solve run)",
        "a cleanrl-style loop in bench/dqn.py (no library)",
        ["--seeds", "1"],
        ["--seeds", "0", "--throughput-steps", "300", *TINY_DQN],
        0.3,
    ),
    Benchmark(
        "dqn_sb3",
        "DQN CartPole-v1 on seeds 0-9: dlrl vs Stable-Baselines3 with the RL Zoo settings, same evaluation",
        "stable-baselines3 (the `bench` extra), RL Zoo hyperparameters copied from rl-baselines3-zoo",
        [],
        ["--seeds", "0", "--workers", "1", "--total-steps", "512"]
        + [x for kv in TINY_DQN for x in ("--set", kv)],
        5.9,
        requires={"stable_baselines3": "pip install -e '.[bench]'"},
    ),
    Benchmark(
        "tune_overhead",
        "the same 8-trial regression search through Ray Tune vs a plain sequential loop",
        "a loop over dlrl.tuning.trial.run_trial in one process (no library)",
        [],
        ["--trials", "2", "--epochs", "2", "--folds", "2"],
        1.4,
        requires={"ray": "pip install 'ray[tune]'"},
    ),
]
NAMES = [b.name for b in BENCHMARKS]


def missing_requirement(benchmark: Benchmark) -> str | None:
    for module, install in benchmark.requires.items():
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed ({install})"
    return None


def last_error_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else "no output"


def dlrl_command(args: list[str], out: Path) -> list[str]:
    return [sys.executable, "-m", "dlrl.cli", "-q", *args, "--out", str(out)]


def run_one(benchmark: Benchmark, out: Path, tiny: bool, env: dict[str, str], work: Path) -> dict[str, Any]:
    """Run one benchmark; returns the record written to out/NAME.json."""
    record: dict[str, Any] = {
        "benchmark": benchmark.name,
        "compares": benchmark.compares,
        "reference": benchmark.reference,
        "profile": "tiny" if tiny else "full",
        "machine_start": machine_record(),
    }
    missing = missing_requirement(benchmark)
    if missing:
        return {**record, "status": "skipped", "reason": missing, "finished": time.strftime("%Y-%m-%d %H:%M")}
    log = out / f"{benchmark.name}.log"
    args = list(benchmark.tiny if tiny else benchmark.args)
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as stderr:
        prepare = benchmark.prepare_tiny if tiny else benchmark.prepare
        if prepare is not None:
            run_dir = work / f"{benchmark.name}-input"
            command = dlrl_command(prepare, run_dir)
            record["prepared_with"] = command[1:]
            done = subprocess.run(command, stdout=stderr, stderr=stderr, env=env, check=False)
            if done.returncode != 0:
                return {
                    **record,
                    "status": "failed",
                    "reason": f"preparing its input failed: {last_error_line(log)}",
                    "finished": time.strftime("%Y-%m-%d %H:%M"),
                }
            args = [str(run_dir), *args]
        command = [sys.executable, str(BENCH / f"{benchmark.name}.py"), *args]
        record["command"] = command[1:]
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True, check=False)
    record["wall_seconds"] = round(time.perf_counter() - started, 1)
    record["load_average_end"] = load_average()
    record["finished"] = time.strftime("%Y-%m-%d %H:%M")
    if done.returncode != 0:
        return {**record, "status": "failed", "reason": f"exit {done.returncode}: {last_error_line(log)}"}
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError as err:
        return {**record, "status": "failed", "reason": f"printed no JSON ({err})"}
    if isinstance(result, dict) and "skipped" in result:
        return {**record, "status": "skipped", "reason": result["skipped"], "result": result}
    return {**record, "status": "done", "result": result}


def provenance(record: dict[str, Any], out: Path) -> str:
    """Where this benchmark's figures came from, one line."""
    name = record["benchmark"]
    if record["status"] == "skipped":
        return f"skipped: {record['reason']} (the table says so)"
    if record["status"] == "failed":
        return f"FAILED: {record['reason']} (log: {out / (name + '.log')})"
    return (
        f"measured here in {record['wall_seconds']:.0f} s, load {record['machine_start']['load_average']} -> "
        f"{record['load_average_end']}; reference: {record['reference']}; figures: {out / (name + '.json')}"
    )


def choose(only: str | None, skip: str | None) -> list[Benchmark]:
    chosen = list(BENCHMARKS)
    for option, value in (("--only", only), ("--skip", skip)):
        if not value:
            continue
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in NAMES]
        if unknown:
            fail("run_all.py", f"{option} {unknown[0]!r}: unknown benchmark (choose from {', '.join(NAMES)})")
        chosen = [b for b in chosen if (b.name in names) == (option == "--only")]
    if not chosen:
        fail("run_all.py", "--only/--skip leave no benchmark to run")
    return chosen


def run_all(
    benchmarks: list[Benchmark], out: Path, tiny: bool = False, emulate_avx2: bool = False
) -> tuple[list[dict[str, Any]], Path]:
    """Run ``benchmarks`` one after the other into ``out``; returns their records and the table's path."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if emulate_avx2:
        env.update(AVX2_ONLY)
    os.environ.update(env)  # the machine records taken here name the limits too
    machine = machine_record()
    run = {
        "profile": "tiny" if tiny else "full",
        "started": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine,
    }
    print(f"bench: {describe(machine)}; load average {machine['load_average']}", flush=True)
    total = sum(b.expected_minutes for b in benchmarks)
    if not tiny:
        print(f"bench: {len(benchmarks)} benchmarks, about {total:.0f} min on 2 AVX2 cores (measured)")
    started = time.perf_counter()
    records = []
    with tempfile.TemporaryDirectory(prefix="dlrl-bench-") as work:
        for i, benchmark in enumerate(benchmarks, start=1):
            expected = "" if tiny else f" (about {benchmark.expected_minutes:g} min)"
            print(f"[{i}/{len(benchmarks)}] {benchmark.name}: {benchmark.compares}{expected}", flush=True)
            record = run_one(benchmark, out, tiny, env, Path(work))
            (out / f"{benchmark.name}.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
            records.append(record)
            print(f"    {provenance(record, out)}", flush=True)
    run.update(
        {
            "finished": time.strftime("%Y-%m-%d %H:%M"),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "benchmarks": {r["benchmark"]: r["status"] for r in records},
            "load_average_end": load_average(),
        }
    )
    (out / "run.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
    table = write_table(out)
    print(f"bench: {run['wall_seconds'] / 60:.1f} min in all; table: {table}", flush=True)
    return records, table


def main() -> None:
    parser = OneLineParser(prog="run_all.py", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated benchmarks ({', '.join(NAMES)})")
    parser.add_argument("--skip", help="comma-separated benchmarks to leave out")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    parser.add_argument("--profile", choices=["full", "tiny"], default="full")
    parser.add_argument("--emulate-avx2", action="store_true", help="limit torch/oneDNN/MKL to AVX2")
    parser.add_argument("--list", action="store_true", help="print what would run and exit")
    args = parser.parse_args()
    benchmarks = choose(args.only, args.skip)
    if args.list:
        for b in benchmarks:
            missing = missing_requirement(b)
            status = f"skipped: {missing}" if missing else f"about {b.expected_minutes:g} min"
            print(f"{b.name}: {b.compares}\n    reference: {b.reference}\n    {status}")
        print(f"table: {args.out / TABLE_NAME}")
        return
    records, _ = run_all(benchmarks, args.out, tiny=args.profile == "tiny", emulate_avx2=args.emulate_avx2)
    sys.exit(1 if any(r["status"] == "failed" for r in records) else 0)


if __name__ == "__main__":
    main()
