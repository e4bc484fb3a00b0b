"""dlrl on a real multi-node Ray cluster on this machine (the README's one-machine lines: a head with no CPUs
and two worker nodes of one CPU each, every node its own raylet): searches spread over both workers,
survive losing one, keep their storage where asked; DQN's agents as Ray tasks give the local results;
`dlrl run` records where each section ran; bad input is one line, exit code 2, nothing left behind.

The test that loses a worker node runs last (file order); it needs two live workers and starts one if not.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from dlrl.cli import main

from .conftest import LocalCluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(300)]

# A regression search small enough that a trial is mostly Ray's and torch's start-up.
TINY = ["--num-samples", "2", "--folds", "2", "data.num_points=120", "data.test_points=200", "epochs=4"]
TINY += ["ensemble=0", "device=cpu"]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def attach(local_cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> LocalCluster:
    """This process as a client of the cluster: its token where Ray's loader looks, no other Ray settings."""
    for key in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(local_cluster.token_file))
    return local_cluster


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_readme_steps_run_a_search_over_both_workers(local_cluster: LocalCluster, tmp_path: Path) -> None:
    """The README's dlrl line, as written, in a shell with the README's environment (no token settings)."""
    line = next(step for step in local_cluster.steps if step.startswith("dlrl "))
    done = local_cluster.run(line, timeout=280, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for noise in ("Traceback", "WARNING", "Token authentication", "╭"):
        assert noise not in done.stderr, done.stderr
    (run,) = (tmp_path / "runs").glob("tune-regression-*")
    trials = _rows(run / "trials.csv")
    assert len(trials) == 2 and {t["status"] for t in trials} == {"TERMINATED"}
    workers = {w.node_id[:8] for w in local_cluster.workers}
    assert {t["node"] for t in trials} == workers  # both workers ran trials, the CPU-less head none
    assert {t["node_ip"] for t in trials} <= {"127.0.0.1", *local_ips()}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["ray_nodes"] == 3 and summary["nodes_used"] == 2 and summary["trials_retried"] == 0
    assert set(summary["trials_per_node"]) == workers
    assert (run / "best_config.yaml").is_file() and (run / "search").is_dir()


def local_ips() -> set[str]:
    from ray._private.services import get_node_ip_address

    return {get_node_ip_address()}


def _fails_fast(tmp_path: Path, *argv: str, seconds: float = 20.0) -> str:
    """Exit code 2, one line on stderr, within ``seconds``, no run directory."""
    out = tmp_path / "out"
    started = time.perf_counter()
    code, _, err = _cli(*argv, "--out", str(out))
    took = time.perf_counter() - started
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("dlrl: error: "), err
    assert took < seconds, f"{took:.1f}s: {err}"
    assert not out.exists()
    return lines[0]


def test_bad_input_on_the_cluster_is_one_line_and_leaves_nothing(
    attach: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray  # here, not at the top: collecting the suite (which leaves these tests out) stays faster

    address = attach.address
    assert "--cpus-per-trial 2: the largest node of the cluster at" in _fails_fast(
        tmp_path, "tune", "regression", *TINY, "--address", address, "--cpus-per-trial", "2"
    )
    assert "--storage /nonexistent/dlrl: no such directory" in _fails_fast(
        tmp_path, "tune", "regression", *TINY, "--address", address, "--storage", "/nonexistent/dlrl"
    )
    with monkeypatch.context() as patch:  # what a machine with another Ray sees
        patch.setattr(ray, "__version__", "2.59.0")
        message = _fails_fast(tmp_path, "tune", "regression", *TINY, "--address", address)
    assert f"the cluster runs Ray {ray.__version__}" in message and "this machine Ray 2.59.0" in message
    with monkeypatch.context() as patch:
        patch.setenv("RAY_AUTH_TOKEN", "not-the-token")
        assert "refused the token found in RAY_AUTH_TOKEN" in _fails_fast(
            tmp_path, "rl", "train", "--address", address
        )
    with monkeypatch.context() as patch:  # a machine with no token at all
        patch.delenv("RAY_AUTH_TOKEN_PATH")
        patch.setenv("HOME", str(tmp_path))
        assert "no token was found here; set RAY_AUTH_TOKEN" in _fails_fast(
            tmp_path, "run", "--quick", "--only", "search", "--address", address
        )
        patch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "no-token"))
        assert f"RAY_AUTH_TOKEN_PATH={tmp_path / 'no-token'}: no such file" in _fails_fast(
            tmp_path, "tune", "regression", *TINY, "--address", address
        )


def _untimed(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in rows]


def _same_tensors(a: object, b: object, where: str = "") -> None:
    """Equal nested checkpoints: tensors bit for bit, everything else equal, timings and workers aside."""
    if isinstance(a, dict):
        assert set(a) == set(b), where  # type: ignore[arg-type]
        for key in a:
            if "seconds" not in str(key) and key != "workers":  # the local run was given workers=1
                _same_tensors(a[key], b[key], f"{where}.{key}")  # type: ignore[index]
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where  # type: ignore[arg-type]
        for i, (x, y) in enumerate(zip(a, b, strict=True)):  # type: ignore[call-overload]
            _same_tensors(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where  # type: ignore[arg-type]
    else:
        assert a == b, where


def test_rl_train_on_the_cluster_matches_local_processes(attach: LocalCluster, tmp_path: Path) -> None:
    """The same seeds give the same agents whether they train in local processes or as Ray tasks: every
    episode, evaluation and update, and the checkpoints' weights bit for bit (only timings differ)."""
    args = ["rl", "train", "seeds=[0,1]", "total_steps=800", "learning_starts=200", "eval_every=400"]
    args += ["eval_episodes=2", "confirm_episodes=2", "final_episodes=3", "device=cpu"]
    code, _, err = _cli(*args, "workers=1", "--out", str(tmp_path / "local"))  # in this process: no spawn
    assert code == 0, err
    code, _, err = _cli(*args, "--out", str(tmp_path / "cluster"), "--address", attach.address)
    assert code == 0, err
    workers = {w.node_id[:8] for w in attach.workers}
    for agent in ("epsilon-seed0", "epsilon-seed1"):
        here, there = tmp_path / "local" / agent, tmp_path / "cluster" / agent
        for name in ("episodes.csv", "evals.csv", "updates.csv"):
            assert _untimed(_rows(here / name)) == _untimed(_rows(there / name)), (agent, name)
        local = json.loads((here / "result.json").read_text())
        remote = json.loads((there / "result.json").read_text())
        for key in ("steps", "episodes", "best_eval", "best_step", "final_returns", "final_mean"):
            assert local[key] == remote[key], (agent, key)
        assert remote["node"] in workers and "node" not in local
        for name in ("best.pt", "last.pt"):
            _same_tensors(
                torch.load(here / "checkpoints" / name, weights_only=True),
                torch.load(there / "checkpoints" / name, weights_only=True),
                f"{agent}/{name}",
            )
    summary = json.loads((tmp_path / "cluster" / "summary.json").read_text())
    assert {run["node"] for run in summary["runs"].values()} <= workers


def test_dlrl_run_sends_search_and_dqn_to_the_cluster_and_says_so(
    attach: LocalCluster, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    sets = ["search.tune.num_samples=2", "search.tune.folds=2", "search.epochs=3", "search.ensemble=0"]
    sets += ["search.data.num_points=120", "dqn.seeds=[0]", "dqn.explorations=[epsilon]"]
    sets += ["dqn.total_steps=600", "dqn.learning_starts=200", "dqn.final_episodes=2", "regression.epochs=2"]
    argv = [
        "run",
        "--quick",
        "--only",
        "regression,search,dqn",
        "--out",
        str(out),
        "--address",
        attach.address,
    ]
    for item in sets:
        argv += ["--set", item]
    code, _, err = _cli(*argv)
    assert code == 0, err
    info = json.loads((out / "run.json").read_text())
    where = f"cluster {attach.address} (3 nodes, 2 CPUs)"
    assert info["ran_on"] == {"regression": "this machine", "search": where, "dqn": where}
    status = json.loads((out / "sections.json").read_text())
    assert {status[name]["ran_on"] for name in ("search", "dqn")} == {where}
    trials = _rows(out / "search" / "trials.csv")
    assert {t["node"] for t in trials} <= {w.node_id[:8] for w in attach.workers}
    written = (out / "report.html").read_text()
    assert f"ran on {where}" in written
    # `dlrl report` rebuilds the same page from the files alone (the other sections: tests/reliability)
    (out / "report.html").unlink()
    assert _cli("report", str(out))[0] == 0
    generated = re.compile(r"report built [^<]*")
    assert generated.sub("", (out / "report.html").read_text()) == generated.sub("", written)


def _watch_and_kill(cluster: LocalCluster, storage: Path, killed: dict) -> None:
    """Kill the second worker node once the first two trials (one on each worker) wrote two checkpoints each
    to the storage: the trial running there is mid-way (60 epochs, a checkpoint every 2). Two, because a
    trial's first checkpoint directory can appear before Ray has registered it: a kill then restarted the
    trial from epoch 0 (seen once in CI); by its second, the first one is registered."""
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline:
        written = Counter(c.parent for c in storage.glob("*/trial_*/checkpoint_*"))
        if sum(count >= 2 for count in written.values()) >= 2:
            node = cluster.alive_workers()[-1]
            cluster.kill_worker(node)
            killed["node"] = node.node_id[:8]
            return
        time.sleep(0.2)


def test_a_lost_worker_node_costs_only_its_running_trial(
    attach: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last: a worker node is killed mid-search; its trial restarts from its checkpoint on the other node,
    nothing finished is lost or run twice, and the run directory has everything the storage had."""
    while len(attach.alive_workers()) < 2:
        attach.add_worker()
    storage = tmp_path / "storage"
    storage.mkdir()
    out = tmp_path / "search"
    killed: dict = {}
    watcher = threading.Thread(target=_watch_and_kill, args=(attach, storage, killed), daemon=True)
    watcher.start()
    argv = ["tune", "regression", "--num-samples", "4", "--folds", "2", "--scheduler", "fifo"]
    argv += ["data.num_points=300", "data.test_points=200", "epochs=60", "ensemble=0", "device=cpu"]
    argv += ["tune.checkpoint_every=2", "--address", attach.address, "--storage", f"file://{storage}"]
    code, _, err = _cli(*argv, "--out", str(out))
    watcher.join(timeout=1)
    assert code == 0, err
    assert killed, "no two trials reached a checkpoint"
    trials = {t["trial"]: t for t in _rows(out / "trials.csv")}
    assert len(trials) == 4 and {t["status"] for t in trials.values()} == {"TERMINATED"}  # all accounted for
    (lost,) = [t for t in trials.values() if t["retries"] != "0"]  # the one trial that ran on the lost node
    assert lost["retries"] == "1" and lost["node"].split() == [killed["node"], lost["node"].split()[-1]]
    assert lost["node"].split()[-1] != killed["node"]  # finished on the other worker
    assert int(lost["restarted_from"]) > 0  # from its last checkpoint, not from epoch 0
    for tid, row in trials.items():  # every epoch once, in order: nothing finished was run twice
        epochs = [int(float(r["epoch"])) for r in _rows(out / "metrics.csv") if r["trial"] == tid]
        assert epochs == list(range(1, 61)), tid
        if row is not lost:
            assert row["restarted_from"] == "" and killed["node"] not in row["node"].split()[1:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials_retried"] == 1 and summary["retried"][0]["trial"] == lost["trial"]
    assert f"trial {lost['trial']}: failed on node {killed['node']}" in err
    assert f"trial {lost['trial']}: retried 1 time" in err
    # the run directory holds the storage's copy: every trial's results and checkpoints, Tune's state
    name = out.name
    assert summary["storage"] == f"file://{storage}/{name}"
    copied = {p.relative_to(out / "search") for p in (out / "search").rglob("*") if p.is_file()}
    stored = {p.relative_to(storage / name) for p in (storage / name).rglob("*") if p.is_file()}
    assert copied == stored and any(p.name == "trial.pt" for p in copied)
