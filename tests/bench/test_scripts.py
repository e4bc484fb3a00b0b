"""The benchmarks at tiny budgets: each runs and prints valid JSON with the machine it ran on, `run_all.py`
writes the table with a row for everything (skipped with the reason when a reference is missing), and bad
input is one line with exit code 2. Benchmarks never assert on times."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cnn_reference
from dlrl.cli import main as dlrl_main
from dlrl.data.images import load_images
from dlrl.utils import usable_cores
from run_all import BENCH, BENCHMARKS, Benchmark, run_all

# Through run_all.py, each in its own process as `make bench` runs it: this references.
TINY = ["cnn_reference", "dqn_sb3"]
# The older benchmarks at the same tiny budgets in this process (a process start costs ~5 CPU s of imports);
# they set torch's threads, seeds and subnormal flushing as any dlrl experiment run in a test does.
IN_PROCESS = ["ffn_pipeline", "vae"]


def _env(tmp: Path) -> dict[str, str]:
    (tmp / "tmp").mkdir(exist_ok=True)  # TMPDIR, checked for what the benchmarks leave behind
    return {
        **os.environ,
        "DLRL_NO_DOWNLOAD": "1",
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "TMPDIR": str(tmp / "tmp"),
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """bench/run_all.py --profile tiny over the benchmarks whose scripts are this issue's (seconds each)."""
    tmp = tmp_path_factory.mktemp("bench")
    command = [sys.executable, str(BENCH / "run_all.py"), "--profile", "tiny", "--only", ",".join(TINY)]
    done = subprocess.run(
        [*command, "--out", str(tmp / "results")],
        capture_output=True,
        text=True,
        env=_env(tmp),
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not list((tmp / "tmp").glob("SB3-*"))  # Stable-Baselines3's default logger leaves empty folders
    return tmp / "results", done.stdout


@pytest.mark.slow
def test_every_benchmark_prints_json_with_its_machine(tiny_run: tuple[Path, str]) -> None:
    results, stdout = tiny_run
    for name in TINY:
        record = json.loads((results / f"{name}.json").read_text())
        assert record["status"] == "done", (name, record.get("reason"))
        assert record["profile"] == "tiny" and record["command"][0].endswith(f"{name}.py")
        machine = record["machine_start"]
        assert machine["cpu"] and machine["torch"]["version"] and len(machine["load_average"]) == 3
        assert len(record["load_average_end"]) == 3
        result = record["result"]
        assert result["benchmark"] == name
        assert f"[{TINY.index(name) + 1}/{len(TINY)}] {name}:" in stdout
    assert stdout.count("measured here in") == len(TINY) and stdout.count("; reference: ") == len(TINY)
    run = json.loads((results / "run.json").read_text())
    assert run["benchmarks"] == dict.fromkeys(TINY, "done")
    table = (results / "dlrl-vs-references.md").read_text()
    assert "Smoke run at tiny budgets" in table
    assert "not run: no bench/results/tsne.json" in table  # left out by --only: a row that says so


@pytest.mark.slow
@pytest.mark.parametrize("name", IN_PROCESS)
def test_older_benchmark_prints_json_of_both_sides(name: str, monkeypatch: pytest.MonkeyPatch, capsys):
    tiny = next(benchmark.tiny for benchmark in BENCHMARKS if benchmark.name == name)
    monkeypatch.setattr(sys, "argv", [str(BENCH / f"{name}.py"), *tiny])
    runpy.run_path(str(BENCH / f"{name}.py"), run_name="__main__")
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["benchmark"] == name and result["epochs"] == 1 and result["train_images"] == 256, err
    if name == "vae":  # both VAEs scored on the same test images
        sides = [result["dlrl_conv_vae"], result["reference_mlp_vae"]]
        assert all(len(side["test_loss_per_epoch"]) == 1 and side["final_test_loss"] > 0 for side in sides)
    else:  # the tutorial's pipeline and dlrl's, each with its test accuracy
        assert {"tutorial", "dlrl"} <= set(result["variants"])
        assert 0 <= result["tutorial_test_accuracy"] <= 1 and 0 <= result["dlrl_test_accuracy"] <= 1


@pytest.mark.slow
def test_the_new_benchmarks_report_both_sides(tiny_run: tuple[Path, str]) -> None:
    results, _ = tiny_run
    cnn = json.loads((results / "cnn_reference.json").read_text())["result"]
    assert cnn["reference"]["epochs"] == 1 and len(cnn["reference"]["test_accuracy_per_epoch"]) == 1
    assert cnn["target_accuracy"] == cnn["reference"]["final_test_accuracy"]
    fp32 = cnn["dlrl"]["fp32"]
    assert fp32["precision"] == "fp32" and fp32["epochs"] == 1 and fp32["final_test_accuracy"] is not None
    assert "bf16" in cnn["dlrl"]  # measured, or skipped with the reason
    assert cnn["dlrl"]["bf16"].get("skipped") or cnn["dlrl"]["bf16"]["precision"] == "bf16"
    dqn = json.loads((results / "dqn_sb3.json").read_text())["result"]
    for side in ("dlrl", "sb3"):
        (seed,) = dqn[side]["per_seed"]
        assert seed["seed"] == 0 and seed["cpu_seconds"] > 0 and seed["final_mean"] > 0
        assert {"steps_to_solve", "steps"} <= set(seed)
    assert dqn["evaluation"]["final_episodes"] == 2  # the shared evaluation follows dlrl's config


@pytest.mark.slow
def test_the_bench_trains_what_dlrl_classify_trains(tiny_run: tuple[Path, str], tmp_path: Path) -> None:
    """The time-to-accuracy run of dlrl is `dlrl classify` with the same config: the same test accuracy."""
    results, _ = tiny_run
    fp32 = json.loads((results / "cnn_reference.json").read_text())["result"]["dlrl"]["fp32"]
    out = tmp_path / "classify"
    args = ["data.limit=256", "epochs=1", "model.hidden_sizes=[16]", "precision=fp32", "figures=false"]
    assert dlrl_main(["-q", "classify", "--out", str(out), *args]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"] == pytest.approx(fp32["final_test_accuracy"], abs=1e-6)


def test_the_bench_settles_the_length_after_3_epochs_as_dlrl_classify_does(tmp_path: Path) -> None:
    """epochs=auto: the bench's dlrl run re-plans after 3 epochs as `dlrl classify` does, and so trains the
    same epochs to the same test accuracy (a budget that fits max_epochs: no timing decides the length)."""
    settings = ["data.limit=256", "model.hidden_sizes=[16]", "max_epochs=10", "time_budget=1000"]
    cfg = cnn_reference.dlrl_config("mnist", "fp32", None, settings)
    data = load_images(cfg.data)
    bench = cnn_reference.train_dlrl(cfg, usable_cores(), 1.0, data.test_x, data.test_y)
    assert bench["epochs_before_training"] == bench["epochs"] == 10 and bench["replanned_seconds_per_epoch"]
    out = tmp_path / "classify"
    assert dlrl_main(["-q", "classify", "--out", str(out), "precision=fp32", "figures=false", *settings]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_before_training"] == summary["epochs_run"] == 10
    assert summary["test_accuracy"] == pytest.approx(bench["final_test_accuracy"], abs=1e-6)


@pytest.mark.parametrize(
    ("name", "args", "needle"),
    [
        ("ffn_pipeline", ["--network", "resnet"], "--network: invalid choice: 'resnet'"),
        ("vae", ["--dataset", "cifar"], "--dataset: invalid choice: 'cifar'"),
        ("cnn_reference", ["--dataset", "cifar"], "--dataset 'cifar': unknown"),
        ("cnn_reference", ["--set", "modle.hidden_sizes=[8]"], "unknown key 'modle'"),
        ("dqn_sb3", ["--env", "NoSuchEnv-v0"], "--env 'NoSuchEnv-v0': not a Gymnasium environment"),
        ("dqn_sb3", ["--env", "Pendulum-v1"], "no RL Zoo settings copied here"),
        ("run_all", ["--only", "nope"], "--only 'nope': unknown benchmark"),
        ("dqn", ["--env", "NoSuchEnv-v0"], "--env 'NoSuchEnv-v0': not a Gymnasium environment"),
        ("dqn", ["--seeds", "0,x"], "--seeds '0,x': give comma-separated integers"),
        ("dqn", ["lr=fast"], "lr"),
        ("dqn_pixels", ["--minutes", "0"], "--minutes 0.0: give a positive number of minutes"),
        ("dqn_pixels", ["--seeds", "0,x"], "--seeds '0,x': give comma-separated integers"),
        ("dqn_pixels", ["pixels.frame_stack=0"], "frame_stack"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    name: str, args: list[str], needle: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """In this process (torch is imported once, not per case), as ``python bench/NAME.py ARGS`` runs it."""
    monkeypatch.setattr(sys, "argv", [str(BENCH / f"{name}.py"), *args])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(BENCH / f"{name}.py"), run_name="__main__")
    out, err = capsys.readouterr()
    assert info.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith(f"{name}.py: error: "), err
    assert out == ""


def test_a_missing_reference_is_skipped_with_the_reason(tmp_path: Path) -> None:
    requires = {"no_such_module_x": "pip install x"}
    missing = Benchmark("dqn_sb3", "dlrl vs a library", "a library", [], [], 1.0, requires=requires)
    records, table = run_all([missing], tmp_path, tiny=True)
    assert records[0]["status"] == "skipped"
    assert records[0]["reason"] == "no_such_module_x is not installed (pip install x)"
    assert "skipped: no_such_module_x is not installed (pip install x)" in table.read_text()
    record: dict[str, Any] = json.loads((tmp_path / "dqn_sb3.json").read_text())
    assert record["machine_start"]["cpu"] is not None or record["machine_start"]["isa"] == []


def test_dqn_sb3_without_stable_baselines3_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import dqn_sb3

    monkeypatch.setattr(dqn_sb3, "sb3_missing", lambda: "stable-baselines3 is not installed (pip install x)")
    monkeypatch.setattr(sys, "argv", ["dqn_sb3.py", "--seeds", "0"])
    dqn_sb3.main()
    result = json.loads(capsys.readouterr().out)
    assert result["skipped"] == "stable-baselines3 is not installed (pip install x)"
    assert "machine" in result and "dlrl" not in result and "sb3" not in result


# The pixel agent at a tiny budget: small frames, a small conv net, 200 steps.
PIXELS_TINY = [
    "total_steps=200",
    "learning_starts=50",
    "buffer_size=300",
    "batch_size=16",
    "eval_every=100",
    "eval_episodes=1",
    "confirm_episodes=null",
    "final_episodes=2",
    "pixels.size=[12,36]",
    "model.hidden_sizes=[16]",
    "model.conv_channels=[4,8]",
    "model.conv_kernels=[4,3]",
    "model.conv_strides=[2,1]",
]


def test_dqn_pixels_stops_each_seed_at_its_time_budget(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    args = ["--seeds", "0", "--workers", "1", "--minutes", "1e-6", *PIXELS_TINY]
    monkeypatch.setattr(sys, "argv", [str(BENCH / "dqn_pixels.py"), *args])
    runpy.run_path(str(BENCH / "dqn_pixels.py"), run_name="__main__")
    result = json.loads(capsys.readouterr().out)
    assert result["benchmark"] == "dqn_pixels" and result["machine"]["cpu"] is not None
    assert result["obs_shape"] == [4, 12, 36] and result["solve"]["seeds"] == 1
    seed = result["per_seed"]["0"]
    # stopped at the first evaluation: any training takes longer than 60 microseconds
    assert seed["steps"] == 100 and [point[0] for point in seed["curve_step_seconds_greedy"]] == [100]
    assert seed["final_mean"] > 0 and seed["replay_bytes_in_checkpoint"] > 0
    assert seed["best_eval_seconds"] == seed["curve_step_seconds_greedy"][0][1]
    replay = result["replay"]
    assert 0 < replay["allocated_bytes"] < replay["float32_obs_and_next_obs_bytes"]
