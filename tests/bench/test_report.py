"""bench/report.py: the table "dlrl vs the references" from result files, with no silent gap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from report import ROWS, TABLE_NAME, write_table

MACHINE = {
    "cpu": "AMD EPYC",
    "isa": ["avx", "avx2", "fma"],
    "logical_cores": 2,
    "usable_cores": 2,
    "load_average": [0.1, 0.2, 0.3],
    "torch": {"version": "2.13.0+cpu", "threads": 2, "native_bf16": False, "cpu_capability": "AVX2"},
}
FFN = {
    "model": "the Quickstart tutorial's network",
    "dataset": "fashion-mnist",
    "train_images": 55000,
    "batch_size": 64,
    "epochs": 3,
    "threads": 1,
    "dlrl_epoch_cpu_seconds": 2.0,
    "tutorial_epoch_cpu_seconds": 6.0,
    "dlrl_test_accuracy": 0.865,
    "tutorial_test_accuracy": 0.858,
}
CNN = {
    "dataset": "fashion-mnist",
    "threads": 2,
    "target_accuracy": 0.9,
    "target_source": "the reference after 3 epochs, measured in this run",
    "reference": {
        "epochs": 3,
        "final_test_accuracy": 0.9,
        "time_to_target_seconds": 300.0,
        "epochs_to_target": 3,
        "source": "pytorch/examples mnist/main.py, re-implemented",
    },
    "dlrl": {
        "fp32": {
            "epochs": 28,
            "epochs_source": "time_budget",
            "train_seconds": 160.0,
            "test_seconds": 4.0,
            "final_test_accuracy": 0.912,
            "time_to_target_seconds": 120.0,
            "epochs_to_target": 20,
        },
        "bf16": {"skipped": "no native bf16 on this CPU"},
    },
}


def per_seed(seed: int, solved: int | None, final: float, cpu: float) -> dict[str, Any]:
    return {
        "seed": seed,
        "steps_to_solve": solved,
        "steps": solved or 50_000,
        "final_mean": final,
        "cpu_seconds": cpu,
        "last_policy_mean": final,
    }


def side(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "per_seed": rows,
        "seeds": len(rows),
        "seeds_solved": sum(r["final_mean"] >= 475 for r in rows),
        "median_steps_to_solve": 5000.0,
        "mean_final_mean": sum(r["final_mean"] for r in rows) / len(rows),
        "mean_cpu_seconds_per_seed": sum(r["cpu_seconds"] for r in rows) / len(rows),
        "total_cpu_seconds": sum(r["cpu_seconds"] for r in rows),
        "source": "stable-baselines3 2.9.2 (installed)",
    }


DQN_SB3 = {
    "env": "CartPole-v1",
    "seeds": [0, 1, 2],
    "workers": 2,
    "evaluation": {"final_episodes": 100},
    "dlrl": side(
        [per_seed(0, 15800, 500.0, 16.6), per_seed(1, 1700, 500.0, 2.0), per_seed(2, 5900, 500.0, 5.9)]
    ),
    "sb3": side(
        [per_seed(0, None, 19.3, 60.0), per_seed(1, 40000, 500.0, 55.0), per_seed(2, 35000, 500.0, 50.0)]
    ),
}


def write(
    directory: Path, name: str, status: str, result: dict | None = None, reason: str | None = None
) -> None:
    record: dict[str, Any] = {"benchmark": name, "status": status, "machine_start": MACHINE}
    record["finished"] = "now"
    if result is not None:
        record["result"] = result
    if reason is not None:
        record["reason"] = reason
    (directory / f"{name}.json").write_text(json.dumps(record))


def table_rows(text: str) -> list[str]:
    lines = text.splitlines()
    return [line for line in lines if line.startswith("| ") and not line.startswith("| comparison")]


def test_every_comparison_is_a_row_even_when_it_did_not_run(tmp_path: Path) -> None:
    write(tmp_path, "ffn_pipeline", "done", FFN)
    write(tmp_path, "cnn_reference", "done", CNN)
    write(tmp_path, "vae", "failed", reason="exit 1: RuntimeError: boom")
    missing = "stable-baselines3 is not installed (pip install -e '.[bench]')"
    write(tmp_path, "dqn_sb3", "skipped", reason=missing)
    run = {"profile": "full", "machine": MACHINE, "wall_seconds": 1500}
    (tmp_path / "run.json").write_text(json.dumps(run))
    text = write_table(tmp_path).read_text()
    assert (tmp_path / TABLE_NAME).is_file()
    rows = table_rows(text)
    for title, _ in ROWS.values():
        assert any(title.split(":")[0] in row for row in rows), title
    assert "**AMD EPYC**, 2 usable cores" in text and "no native bf16" in text
    assert "| **3.00x** |" in text  # the tutorial's 6.0 s over dlrl's 2.0 s per epoch
    assert "skipped: stable-baselines3 is not installed (pip install -e '.[bench]')" in text
    assert "failed: exit 1: RuntimeError: boom" in text
    assert "not run: no bench/results/tsne.json" in text
    assert "skipped: no native bf16 on this CPU" in text  # the bf16 half of the time-to-accuracy comparison
    assert "91.20% after 28 epochs (epochs=time_budget" in text and "**2.50x**" in text  # 300 s / 120 s
    assert "Fashion-MNIST FFN, default recipe, fp32 (target ≥ 91.0% within 3 minutes): 91.20%" in text
    assert "→ met" in text.split("fp32 (target")[1].splitlines()[0]
    assert "DQN vs SB3 + Zoo: not measured" in text
    assert "`make bench` within 30 minutes: 25:00 min → met" in text


def test_dqn_seeds_one_by_one_and_the_dqn_target(tmp_path: Path) -> None:
    write(tmp_path, "dqn_sb3", "done", DQN_SB3)
    text = write_table(tmp_path).read_text()
    assert "| | 0 | 1 | 2 |" in text
    assert "| dlrl: steps to solve | 15,800 | 1,700 | 5,900 |" in text
    assert "| SB3 + Zoo: steps to solve | — | 40,000 | 35,000 |" in text
    assert "| SB3 + Zoo: final mean (100 fresh episodes) | 19.3 | 500.0 | 500.0 |" in text
    assert "3/3 seeds solved" in text and "2/3 seeds solved" in text
    target = next(line for line in text.splitlines() if line.startswith("- DQN vs SB3"))
    assert "dlrl solves 3/3, SB3 2/3; median steps to solve 5,000 vs 5,000" in target
    assert target.endswith("→ met")


def test_a_tiny_run_says_its_figures_mean_nothing(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"profile": "tiny", "machine": MACHINE}))
    assert "Smoke run at tiny budgets" in write_table(tmp_path).read_text()
