"""Kill-anywhere resume: every experiment SIGKILLed at random moments (one of them inside a checkpoint write),
resumed with --resume until it finishes, and its final results compared with an uninterrupted run.

    python bench/resume_sweep.py                     # every experiment, 3 kill points each; JSON table
    python bench/resume_sweep.py --only regression,tune --kills 4 --seed 1

A kill point is either a moment (seconds after the run directory appeared, drawn uniformly over the
uninterrupted run's duration) or a checkpoint write: the process is started through this script, which
wraps torch.save so that the K-th save writes part of the file and then SIGKILLs its own process before
the rename (K drawn from the saves the uninterrupted run made). Identical means: every number and string of
summary.json apart from timings (and for `dlrl run`, of every section's summary.json); for a search (Ray
Tune, whose trials run in parallel and are resumed by Tune) it means no trial that had finished before a
kill is lost or run again, and the search ends with every trial it was asked for.

Prints one JSON object: per experiment the kill points (and whether each landed while the process still
ran), identical or not, the keys that differ, and the wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Tiny budgets: each run a few seconds of work after start-up, long enough to be killed in the middle.
REGRESSION = ["data.num_points=300", "model.hidden_sizes=[16,16]", "epochs=25", "ensemble=2", "device=cpu"]
CLASSIFIER = ["data.limit=600", "epochs=4", "model.hidden_sizes=[32]", "batch_size=64", "device=cpu"]
AUTOENCODER = ["data.limit=300", "epochs=3", "model.hidden_dim=16", "latent.tsne_samples=150"]
AUTOENCODER += ["latent.n_jobs=1", "device=cpu"]
FINETUNE = ["labels=[20,100]", "epochs=2", "min_steps=4", "head_hidden=16", "device=cpu"]
TUNE = ["--quick", "--num-samples", "4", "--folds", "2", "--max-concurrent", "2", "--cpus-per-trial", "1"]
TUNE += ["epochs=6", "data.num_points=200", "--search", "random"]
DQN = ["--seeds", "0", "--exploration", "epsilon", "--workers", "1", "total_steps=1500"]
DQN += ["learning_starts=200", "eval_every=500", "eval_episodes=3", "final_episodes=3", "buffer_size=2000"]
RUN_SECTIONS = "regression,classifier,autoencoder,finetune"
RUN_SETS = [f"--set=regression.{a}" for a in ["epochs=8", "ensemble=2", "data.num_points=200"]]
RUN_SETS += [f"--set=classifier.{a}" for a in ["epochs=2", "data.limit=400", "model.hidden_sizes=[32]"]]
RUN_SETS += [f"--set=autoencoder.{a}" for a in ["epochs=2", "data.limit=256", "model.hidden_dim=16"]]
RUN_SETS += ["--set=autoencoder.latent.tsne=false"]
RUN_SETS += [f"--set=finetune.{a}" for a in ["labels=[20]", "epochs=1", "min_steps=3"]]

# name -> (dlrl arguments before --out, arguments after it)
EXPERIMENTS: dict[str, list[str]] = {
    "regression": ["regression", *REGRESSION],
    "classifier": ["classify", *CLASSIFIER],
    "autoencoder": ["autoencoder", "--variant", "ae", *AUTOENCODER],
    "dae": ["autoencoder", "--variant", "dae", *AUTOENCODER],
    "vae": ["autoencoder", "--variant", "vae", *AUTOENCODER],
    "finetune": ["finetune", *FINETUNE],  # --encoder-run: the uninterrupted autoencoder run
    "tune": ["tune", "regression", *TUNE],
    "dlrl run": ["run", "--quick", "--only", RUN_SECTIONS, *RUN_SETS],
    "dqn": ["rl", "train", *DQN],
}
TIMING_WORDS = ("seconds", "per_second", "eta", "started", "resumed", "wall", "cpu", "resumed_from", "time")
# Keys that say where or how a run went (paths, file sizes), not what it computed.
NOT_RESULTS = {"run_dir", "encoder_run", "ray_address", "storage", "checkpoint_bytes"}
NOT_RESULTS |= {"checkpoint_replay_bytes"}


# ------------------------------------------------------------------------------------------- the child


def child(argv: list[str]) -> int:
    """Run dlrl with ``argv`` in this process; with $SWEEP_SAVES count each checkpoint save into that file,
    with $SWEEP_KILL_AT_SAVE=K die by SIGKILL halfway through the K-th save (before its rename)."""
    import torch

    from dlrl.cli import main

    saves_log, kill_at = os.environ.get("SWEEP_SAVES"), int(os.environ.get("SWEEP_KILL_AT_SAVE", "0"))
    real_save = torch.save
    count = 0

    def save(obj: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal count
        count += 1
        if saves_log:
            with open(saves_log, "a") as log:
                log.write(f"{getattr(target, 'name', target)}\n")
        if count == kill_at:
            real_save(obj, target, *args, **kwargs)  # the whole file into the temporary name...
            if hasattr(target, "flush"):
                target.flush()
                target.truncate(max(1, target.tell() // 2))  # ...then half of it, as a write cut off
                target.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        real_save(obj, target, *args, **kwargs)

    torch.save = save
    return main(argv)


# ------------------------------------------------------------------------------------------- the parent


def launch(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, "--child", "--", *args],
        # offline, every new process would try the download mirrors again: the shipped sample is the data
        env={"DLRL_NO_DOWNLOAD": "1", **os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def started(out: Path) -> bool:
    """The run has begun writing its directory (its config; for `dlrl run` its state)."""
    return (out / "config.yaml").is_file() or (out / "run.json").is_file()


def run_to_end(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 1800
) -> tuple[int, str, float]:
    """(exit code, stderr, seconds from the run directory's first file to the end)."""
    out = Path(args[args.index("--out") + 1])
    process = launch(args, env or {})
    begun = None
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if begun is None and started(out):
            begun = time.monotonic()
        time.sleep(0.02)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    _, err = process.communicate()
    return process.returncode, err, time.monotonic() - (begun or time.monotonic())


def kill_after(
    args: list[str], seconds: float, env: dict[str, str] | None = None, timeout: float = 1800
) -> dict[str, Any]:
    """Start the run and SIGKILL it (its whole process group: Ray, worker processes) ``seconds`` after its
    directory appeared; says whether it was still running then."""
    out = Path(args[args.index("--out") + 1])
    process = launch(args, env or {})
    deadline = time.monotonic() + timeout
    while not started(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(seconds)
    alive = process.poll() is None
    if alive:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    _reap(process)
    return {"kill": f"{seconds:.2f}s after start", "landed": alive, "exit": process.returncode}


def kill_at_save(
    args: list[str], save: int, env: dict[str, str] | None = None, timeout: float = 1800
) -> dict[str, Any]:
    process = launch(args, {**(env or {}), "SWEEP_KILL_AT_SAVE": str(save)})
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    _reap(process)
    return {"kill": f"inside checkpoint write #{save}", "landed": process.returncode == -signal.SIGKILL}


def _reap(process: subprocess.Popen) -> None:
    """SIGKILL whatever the killed process left in its group (Ray's raylet, workers)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.stderr is not None:
        process.stderr.close()


# ------------------------------------------------------------------------------------------- comparing


def results(summary: dict[str, Any]) -> dict[str, Any]:
    """summary.json without timings and paths: what an interrupted run must end with."""
    kept = {}
    for key, value in summary.items():
        if key in NOT_RESULTS or any(word in key for word in TIMING_WORDS):
            continue
        kept[key] = results(value) if isinstance(value, dict) else value
    return kept


def summaries(out: Path) -> dict[str, Any]:
    """summary.json of a run, or of every section of a `dlrl run` directory and its agents' result.json."""
    found = {}
    for path in sorted(out.rglob("summary.json")) + sorted(out.rglob("result.json")):
        if "search" in path.relative_to(out).parts[:1]:
            continue
        found[path.relative_to(out).as_posix()] = results(json.loads(path.read_text()))
    return found


def differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for key in sorted(set(a) | set(b))
            for d in differences(a.get(key), b.get(key), f"{prefix}{key}.")
        ]
    same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    return [] if same else [f"{prefix.rstrip('.')}: {a!r} vs {b!r}"]


def finished_trials(out: Path) -> dict[str, dict[str, Any]]:
    """Trials of a search that had finished (TERMINATED) by now, with their params and last result, read
    from Tune's experiment state as a resumed Tune would."""
    trials: dict[str, dict[str, Any]] = {}
    for state_file in sorted((out / "search").rglob("experiment_state-*.json")):
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        for entry in state.get("trial_data", []):
            try:
                trial = json.loads(entry[0]) if isinstance(entry, list | tuple) else entry
            except (TypeError, ValueError):
                continue
            if isinstance(trial, dict) and trial.get("status") == "TERMINATED":
                trials[str(trial.get("trial_id"))] = {
                    "config": json.dumps(trial.get("config"), sort_keys=True)
                }
    return trials


def trials_csv(out: Path) -> list[dict[str, str]]:
    import csv

    path = out / "trials.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------------------- one row


def sweep_one(
    name: str, workdir: Path, kills: int, rng: random.Random, encoder_run: Path | None
) -> dict[str, Any]:
    base = list(EXPERIMENTS[name])
    if name == "finetune":
        base[1:1] = ["--encoder-run", str(encoder_run)]
    reference, interrupted = workdir / f"{_slug(name)}-reference", workdir / f"{_slug(name)}-killed"
    saves_log = workdir / f"{_slug(name)}-saves.log"
    started_at = time.perf_counter()
    code, err, duration = run_to_end([*base, "--out", str(reference)], {"SWEEP_SAVES": str(saves_log)})
    if code != 0:
        return {"experiment": name, "error": f"uninterrupted run failed ({code}): {_last_line(err)}"}
    saves = len(saves_log.read_text().splitlines()) if saves_log.is_file() else 0
    # First a kill inside a random one of the checkpoint writes of a whole run (a fresh process makes all
    # of them), then kills at random moments. Each resumed process has less left to do: a moment is drawn
    # from a share of what is left, counted in the checkpoint writes the killed processes got through (a
    # kill drawn from the whole run's duration missed a run resumed past half-way, under load).
    plan: list[tuple[str, int]] = [("save", rng.randint(1, saves))] if saves else []
    plan += [("time", timed) for timed in range(kills - len(plan), 0, -1)]  # kills still to come
    points, finished_before, resume = [], {}, []
    left = 1.0  # share of the uninterrupted run still to do
    for attempt, (kind, value) in enumerate(plan):
        args = [*base, "--out", str(interrupted), *resume]
        attempt_saves = workdir / f"{_slug(name)}-saves-{attempt}.log"
        env = {"SWEEP_SAVES": str(attempt_saves)}
        if kind == "save":
            point = kill_at_save(args, value, env)
        else:
            point = kill_after(args, rng.uniform(0.05, 0.8 / value) * left * max(duration, 0.5), env)
        made = len(attempt_saves.read_text().splitlines()) if attempt_saves.is_file() else 0
        left = max(0.1, left - made / max(saves, 1))
        points.append(point)
        if name == "tune":
            finished_before.update(finished_trials(interrupted))
        resume = ["--resume"]
    code, err, _ = run_to_end([*base, "--out", str(interrupted), *resume])
    row: dict[str, Any] = {
        "experiment": name,
        "kill_points": points,
        "landed": sum(p["landed"] for p in points),
        "checkpoint_saves_uninterrupted": saves,
        "final_exit": code,
    }
    if code != 0:
        row.update(identical=False, error=_last_line(err))
    elif name == "tune":
        row.update(_compare_search(reference, interrupted, finished_before))
    else:
        diff = differences(summaries(reference), summaries(interrupted))
        row.update(identical=not diff, differences=diff[:10])
    row["seconds"] = round(time.perf_counter() - started_at, 1)
    return row


def _compare_search(reference: Path, interrupted: Path, finished_before: dict[str, Any]) -> dict[str, Any]:
    rows = trials_csv(interrupted)
    ids = [r["trial"] for r in rows]
    expected = len(trials_csv(reference))
    lost = sorted(set(finished_before) - set(ids))
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    configs = [r.get("trial") for r in rows]
    return {
        "trials": len(rows),
        "trials_expected": expected,
        "finished_before_a_kill": len(finished_before),
        "lost": lost,
        "repeated": repeated,
        "identical": not lost and not repeated and len(rows) == expected and len(configs) == expected,
        "note": "a search is compared by its trials: none finished before a kill lost or run again",
    }


def _slug(name: str) -> str:
    return name.replace(" ", "-")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", help=f"comma-separated experiments (default: all: {', '.join(EXPERIMENTS)})"
    )
    parser.add_argument("--kills", type=int, default=3, help="kill points per experiment (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--workdir", help="keep the run directories here (default: a temporary directory)")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(EXPERIMENTS)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment(s): {', '.join(unknown)}")
    rng = random.Random(args.seed)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="resume-sweep-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows, encoder_run = [], None
    for name in names:
        if name == "finetune":
            encoder_run = workdir / "autoencoder-reference"
            if not (encoder_run / "summary.json").is_file():
                code, err, _ = run_to_end(
                    ["autoencoder", "--variant", "ae", *AUTOENCODER, "--out", str(encoder_run)]
                )
                if code != 0:
                    rows.append(
                        {"experiment": name, "error": f"its autoencoder run failed: {_last_line(err)}"}
                    )
                    continue
        rows.append(sweep_one(name, workdir, args.kills, rng, encoder_run))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    table = {
        "kills_per_experiment": args.kills,
        "seed": args.seed,
        "identical": sum(bool(r.get("identical")) for r in rows),
        "experiments": len(rows),
        "rows": rows,
    }
    print(json.dumps(table, indent=2))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if table["identical"] == len(rows) else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child(sys.argv[3:] if sys.argv[2:3] == ["--"] else sys.argv[2:]))
    sys.exit(main())
