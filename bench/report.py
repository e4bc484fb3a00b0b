"""The table "dlrl vs the references" from the JSON files `bench/run_all.py` writes into bench/results/.

One row per comparison: the same work, dlrl's time and the reference's, their ratio, both quality figures,
what the reference is (an installed package, or a re-implementation and why) and which file the figures
came from. A comparison that did not run is a row that says why (skipped: its reference is not installed;
failed: the error; not run: no results file), never a gap. Below the table: the DQN seeds one by one and
the issue's targets with what was measured.

    .venv/bin/python bench/report.py [RESULTS_DIR] [--out FILE]   (default: bench/results, FILE in it)
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
TABLE_NAME = "dlrl-vs-references.md"


@dataclass
class Row:
    comparison: str
    work: str
    dlrl_time: str = "—"
    reference_time: str = "—"
    ratio: str = "—"
    dlrl_quality: str = "—"
    reference_quality: str = "—"
    reference: str = "—"
    source: str = "—"


# --------------------------------------------------------------------------------------------- formatting


def seconds(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value < 60:
        return f"{value:.3g} s" if value < 10 else f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes}:{rest:02d} min"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def ratio(reference: float | None, dlrl: float | None) -> str:
    """reference / dlrl: above 1, dlrl is faster."""
    if not reference or not dlrl:
        return "—"
    return f"**{reference / dlrl:.2f}x**"


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def seed_list(seeds: list[int]) -> str:
    """[0, 1, ..., 9] -> '0–9'; [3] -> '3'; anything else comma-separated."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}–{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# ------------------------------------------------------------------------------------------------ rows


def ffn_pipeline_rows(r: dict[str, Any], source: str) -> list[Row]:
    epochs, threads = r["epochs"], r["threads"]
    return [
        Row(
            "MLP epoch: the PyTorch tutorial's pipeline vs dlrl's",
            f"{r['model']}; {r['dataset']} {r['train_images']:,} images, batch {r['batch_size']}, "
            f"{count(epochs, 'epoch')}, {count(threads, 'thread')}, same initial weights; "
            "CPU seconds per epoch",
            seconds(r["dlrl_epoch_cpu_seconds"]),
            seconds(r["tutorial_epoch_cpu_seconds"]),
            ratio(r["tutorial_epoch_cpu_seconds"], r["dlrl_epoch_cpu_seconds"]),
            f"{percent(r['dlrl_test_accuracy'])} after {count(epochs, 'epoch')}",
            f"{percent(r['tutorial_test_accuracy'])} after {count(epochs, 'epoch')}",
            "PyTorch Quickstart (torchvision FashionMNIST + ToTensor + DataLoader), re-implemented in "
            "bench/ffn_pipeline.py: torchvision does not install beside the CPU torch wheel",
            source,
        )
    ]


def cnn_reference_rows(r: dict[str, Any], source: str) -> list[Row]:
    reference = r.get("reference", {})
    target = r.get("target_accuracy")
    ref_epochs = reference.get("epochs", 0)
    work = (
        f"{r['dataset']}: time until the test accuracy first reaches {percent(target)} ({r['target_source']})"
    )
    rows = []
    for precision in ("fp32", "bf16"):
        ours = r.get("dlrl", {}).get(precision)
        name = f"Time to accuracy: dlrl FFN ({precision}) vs the PyTorch examples CNN"
        if ours is None:
            rows.append(Row(name, work, reference=f"not run: {precision} not in --precisions", source=source))
            continue
        if "skipped" in ours:
            rows.append(Row(name, work, dlrl_time=f"skipped: {ours['skipped']}", source=source))
            continue
        reached = ours["time_to_target_seconds"]
        dlrl_time = (
            f"{seconds(reached)} (epoch {ours['epochs_to_target']} of {ours['epochs']})"
            if reached is not None
            else f"not reached in {count(ours['epochs'], 'epoch')} ({seconds(ours['train_seconds'])})"
        )
        ref_reached = reference.get("time_to_target_seconds")
        rows.append(
            Row(
                name,
                f"{work}; {r['threads']} threads",
                dlrl_time,
                f"{seconds(ref_reached)} (epoch {reference.get('epochs_to_target')})" if reference else "—",
                ratio(ref_reached, reached),
                f"{percent(ours['final_test_accuracy'])} after {count(ours['epochs'], 'epoch')} "
                f"(epochs={ours['epochs_source']}, {seconds(ours['train_seconds'])} training)",
                f"{percent(reference.get('final_test_accuracy'))} after {count(ref_epochs, 'epoch')}"
                if reference
                else "—",
                reference.get("source", "—"),
                source,
            )
        )
    return rows


def vae_rows(r: dict[str, Any], source: str) -> list[Row]:
    ours, ref = r["dlrl_conv_vae"], r.get("reference_mlp_vae")
    epochs = r["epochs"]
    return [
        Row(
            "VAE: dlrl's conv VAE vs the PyTorch examples MLP VAE",
            f"{r['dataset']} {r['train_images']:,} images, {count(epochs, 'epoch')} each, "
            f"{count(r['threads'], 'thread')}; quality: test loss per image (summed BCE + KL, lower "
            "is better)",
            seconds(ours["wall_seconds"]),
            seconds(ref["wall_seconds"]) if ref else "—",
            ratio(ref["wall_seconds"], ours["wall_seconds"]) if ref else "—",
            f"{ours['final_test_loss']:.1f}",
            f"{ref['final_test_loss']:.1f}" if ref else "—",
            "pytorch/examples vae/main.py (784-400-20 MLP, Adam 1e-3, batch 128), re-implemented in "
            "bench/vae.py" + ("" if ref else " (not run: --skip-reference)"),
            source,
        )
    ]


def tsne_rows(r: dict[str, Any], source: str) -> list[Row]:
    ours, ref = r.get("opentsne"), r.get("sklearn")
    return [
        Row(
            "t-SNE: openTSNE (FFT gradients) vs scikit-learn Barnes-Hut",
            f"{r['points']:,} {r['latent_dim']}-d encodings of {r['dataset']} test images, "
            f"{r['n_jobs']} jobs; quality: 10-NN class accuracy in the 2-D map",
            seconds(ours["wall_seconds"]) if ours else "—",
            seconds(ref["wall_seconds"]) if ref else "—",
            ratio(ref["wall_seconds"], ours["wall_seconds"]) if ours and ref else "—",
            percent(ours["knn10_accuracy_2d"]) if ours else "—",
            percent(ref["knn10_accuracy_2d"]) if ref else "—",
            "scikit-learn's TSNE (installed)",
            source,
        )
    ]


def dqn_rows(r: dict[str, Any], source: str) -> list[Row]:
    rows = []
    tp = r.get("throughput")
    if tp:
        rows.append(
            Row(
                "DQN loop throughput: dlrl vs a naive loop",
                f"{tp['steps']:,} env steps of {r['env']} training, same updates and sizes, 1 thread; "
                "env steps per CPU second",
                f"{tp['dlrl_steps_per_cpu_second']:,.0f} steps/s",
                f"{tp['naive_steps_per_cpu_second']:,.0f} steps/s",
                f"**{tp['speedup_cpu']:.2f}x**",
                "same updates",
                "same updates",
                "a cleanrl-style loop in bench/dqn.py (deque, random.sample, a tensor per step): "
                "not a library",
                source,
            )
        )
    return rows


def dqn_sb3_rows(r: dict[str, Any], source: str) -> list[Row]:
    name = f"DQN {r['env']}: dlrl vs Stable-Baselines3 + RL Zoo"
    if "skipped" in r:
        return [Row(name, "same seeds, same evaluation", reference=f"skipped: {r['skipped']}", source=source)]
    ours, ref = r.get("dlrl"), r.get("sb3")
    seeds = r["seeds"]
    work = (
        f"seeds {seed_list(seeds)} ({len(seeds)}), {r['workers']} processes; dlrl's evaluation for "
        f"both ({r['evaluation']['final_episodes']} fresh greedy episodes of the best policy); "
        "CPU seconds per seed"
    )

    def quality(side: dict[str, Any] | None) -> str:
        if not side:
            return "—"
        median = side["median_steps_to_solve"]
        steps = f", median {median:,.0f} steps to solve" if median is not None else ""
        solved = f"{side['seeds_solved']}/{side['seeds']} seeds solved"
        return f"{solved}{steps}, mean {side['mean_final_mean']:.1f}"

    return [
        Row(
            name,
            work,
            seconds(ours["mean_cpu_seconds_per_seed"]) if ours else "—",
            seconds(ref["mean_cpu_seconds_per_seed"]) if ref else "—",
            ratio(ref["mean_cpu_seconds_per_seed"], ours["mean_cpu_seconds_per_seed"])
            if ours and ref
            else "—",
            quality(ours),
            quality(ref),
            ref["source"] if ref else "—",
            source,
        )
    ]


def tune_overhead_rows(r: dict[str, Any], source: str) -> list[Row]:
    ray, seq = r["ray"], r["sequential"]
    return [
        Row(
            "Search: Ray Tune vs a plain sequential loop",
            f"{r['trials']} trials x {r['folds']} folds x {r['epochs']} epochs of the regression search, "
            "same trials; wall seconds",
            seconds(ray["wall_seconds"]),
            seconds(seq["wall_seconds"]),
            ratio(seq["wall_seconds"], ray["wall_seconds"]),
            f"best val MSE {ray['best_val_mse']:.4g}",
            f"best val MSE {seq['best_val_mse']:.4g}",
            "the same trials in a loop in this process (dlrl.tuning.trial.run_trial, no Ray): what Ray costs",
            source,
        )
    ]


# name -> (what the row compares, when it did not run; how to read its result)
ROWS: dict[str, tuple[str, Callable[[dict[str, Any], str], list[Row]]]] = {
    "ffn_pipeline": ("MLP epoch: the PyTorch tutorial's pipeline vs dlrl's", ffn_pipeline_rows),
    "cnn_reference": ("Time to accuracy: dlrl FFN vs the PyTorch examples CNN", cnn_reference_rows),
    "vae": ("VAE: dlrl's conv VAE vs the PyTorch examples MLP VAE", vae_rows),
    "tsne": ("t-SNE: openTSNE vs scikit-learn Barnes-Hut", tsne_rows),
    "dqn": ("DQN loop throughput: dlrl vs a naive loop", dqn_rows),
    "dqn_sb3": ("DQN CartPole-v1: dlrl vs Stable-Baselines3 + RL Zoo", dqn_sb3_rows),
    "tune_overhead": ("Search: Ray Tune vs a plain sequential loop", tune_overhead_rows),
}


def rows_of(name: str, wrapper: dict[str, Any] | None) -> list[Row]:
    """The rows of one benchmark; a benchmark that did not produce figures gives one row saying why."""
    title, build = ROWS[name]
    if wrapper is None:
        return [Row(title, "—", reference=f"not run: no bench/results/{name}.json", source="—")]
    source = f"`{name}.json` ({wrapper.get('finished', '?')})"
    status = wrapper.get("status")
    if status == "skipped":
        return [Row(title, "—", reference=f"skipped: {wrapper.get('reason')}", source=source)]
    if status != "done":
        return [Row(title, "—", reference=f"{status}: {wrapper.get('reason')}", source=source)]
    try:
        return build(wrapper["result"], source)
    except (KeyError, TypeError, ValueError) as err:  # a result file of another version
        return [Row(title, "—", reference=f"unreadable result ({type(err).__name__}: {err})", source=source)]


# --------------------------------------------------------------------------------------------- sections


def steps_text(steps: float | None) -> str:
    return "—" if steps is None else f"{steps:,.0f}"


def steps_to_solve(row: dict[str, Any]) -> str:
    return "—" if row["steps_to_solve"] is None else f"{row['steps_to_solve']:,}"


def seed_table(wrapper: dict[str, Any] | None) -> list[str]:
    """Each DQN seed: steps to solve, env steps used, final mean, CPU seconds, for dlrl and SB3."""
    if not wrapper or wrapper.get("status") != "done" or "skipped" in wrapper["result"]:
        return []
    r = wrapper["result"]
    sides = [(label, r[key]) for label, key in (("dlrl", "dlrl"), ("SB3 + Zoo", "sb3")) if key in r]
    final = r["evaluation"]["final_episodes"]
    seeds = r["seeds"]
    lines = [
        "",
        f"### DQN {r['env']}, seed by seed",
        "",
        "| | " + " | ".join(str(s) for s in seeds) + " |",
        "|---|" + "---|" * len(seeds),
    ]
    for label, side in sides:
        by_seed = {row["seed"]: row for row in side["per_seed"]}
        fields = [
            ("steps to solve", steps_to_solve),
            ("env steps used", lambda row: f"{row['steps']:,}"),
            (f"final mean ({final} fresh episodes)", lambda row: f"{row['final_mean']:.1f}"),
            ("CPU seconds", lambda row: f"{row['cpu_seconds']:.1f}"),
        ]
        if label != "dlrl":
            fields.append(("last policy mean", lambda row: f"{row['last_policy_mean']:.1f}"))
        for field, show in fields:
            values = [show(by_seed[s]) if s in by_seed else "—" for s in seeds]
            lines.append(f"| {label}: {field} | " + " | ".join(values) + " |")
    return lines


def targets(results: dict[str, dict[str, Any] | None], total_seconds: float | None) -> list[str]:
    """The issue's measured targets, each with what this run measured (or why it cannot say)."""
    lines = ["", "### Targets", ""]
    cnn = results.get("cnn_reference")
    if cnn and cnn.get("status") == "done":
        for precision, goal in (("fp32", 0.910), ("bf16", 0.915)):
            ours = cnn["result"].get("dlrl", {}).get(precision)
            if not ours or "skipped" in ours:
                why = ours["skipped"] if ours else "not run"
                lines.append(f"- Fashion-MNIST FFN, default recipe, {precision}: not measured ({why})")
                continue
            whole = ours["train_seconds"] + (ours["test_seconds"] or 0)
            met = ours["final_test_accuracy"] >= goal and whole <= 180
            lines.append(
                f"- Fashion-MNIST FFN, default recipe, {precision} "
                f"(target ≥ {100 * goal:.1f}% within 3 minutes): "
                f"{percent(ours['final_test_accuracy'])}, {ours['epochs']} epochs ({ours['epochs_source']}), "
                f"{seconds(whole)} training + test → {'met' if met else 'not met'}"
            )
    else:
        lines.append("- Fashion-MNIST FFN: not measured (cnn_reference did not run)")
    sb3 = results.get("dqn_sb3")
    if sb3 and sb3.get("status") == "done" and "dlrl" in sb3["result"] and "sb3" in sb3["result"]:
        ours, ref = sb3["result"]["dlrl"], sb3["result"]["sb3"]
        more = ours["seeds_solved"] >= ref["seeds_solved"]
        cheaper = ours["total_cpu_seconds"] <= ref["total_cpu_seconds"]
        ours_steps, ref_steps = ours["median_steps_to_solve"], ref["median_steps_to_solve"]
        fewer = ours_steps is not None and (ref_steps is None or ours_steps <= ref_steps)
        lines.append(
            f"- DQN vs SB3 + Zoo (target: dlrl solves more seeds, in fewer steps and less CPU time; seeds "
            f"counted as at least as many, since both may solve all): dlrl "
            f"solves {ours['seeds_solved']}/{ours['seeds']}, SB3 {ref['seeds_solved']}/{ref['seeds']}; "
            f"median steps to solve {steps_text(ours_steps)} vs {steps_text(ref_steps)}; CPU "
            f"{seconds(ours['total_cpu_seconds'])} vs {seconds(ref['total_cpu_seconds'])} → "
            f"{'met' if more and fewer and cheaper else 'not met'}"
        )
    else:
        lines.append("- DQN vs SB3 + Zoo: not measured (dqn_sb3 skipped or not run)")
    if total_seconds is not None:
        verdict = "met" if total_seconds <= 1800 else "not met"
        lines.append(f"- `make bench` within 30 minutes: {seconds(total_seconds)} → {verdict}")
    return lines


def machine_line(record: dict[str, Any]) -> str:
    torch_info = record.get("torch") or {}
    isa = ", ".join(record.get("isa", [])) or "none of avx/avx2/avx512"
    bf16 = "native bf16" if torch_info.get("native_bf16") else "no native bf16 (fp32 is the fast arithmetic)"
    emulated = record.get("isa_environment") or {}
    limits = f"; limited by {', '.join(f'{k}={v}' for k, v in emulated.items())}" if emulated else ""
    return (
        f"**{record.get('cpu') or 'unknown CPU'}**, {record.get('usable_cores')} usable cores "
        f"({record.get('logical_cores')} logical); ISA: {isa}; {bf16}{limits}; "
        f"torch {torch_info.get('version')} (kernels: {torch_info.get('cpu_capability')}), "
        f"Python {record.get('python')}, {record.get('platform')}"
    )


def render(results_dir: Path) -> str:
    results: dict[str, dict[str, Any] | None] = {}
    for name in ROWS:
        path = results_dir / f"{name}.json"
        results[name] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    run_path = results_dir / "run.json"
    run = json.loads(run_path.read_text(encoding="utf-8")) if run_path.is_file() else {}
    machine = run.get("machine") or next(
        (w["machine_start"] for w in results.values() if w and "machine_start" in w), {}
    )
    loads = [w.get("machine_start", {}).get("load_average") for w in results.values() if w]
    loads += [w.get("load_average_end") for w in results.values() if w]
    one_minute = [x[0] for x in loads if x]
    cores = machine.get("usable_cores") or machine.get("logical_cores")
    if not one_minute:
        load = "unknown"
    elif cores and max(one_minute) > cores:
        load = f"{min(one_minute):.2f}–{max(one_minute):.2f} (above the {cores} cores: times are inflated)"
    else:
        load = f"{min(one_minute):.2f}–{max(one_minute):.2f} (at most the cores, the benchmarks' own work)"
    lines = ["# dlrl vs the references", ""]
    if run.get("profile") == "tiny":
        lines += ["> **Smoke run at tiny budgets (`--profile tiny`): the figures below mean nothing.**", ""]
    lines += [
        f"Measured on {machine_line(machine)}.",
        "",
        f"Run: {run.get('started', '?')} to {run.get('finished', '?')}, profile `{run.get('profile', '?')}`, "
        f"git {machine.get('git_commit')}; 1-minute load average during the run {load}.",
        "",
        "Ratio: the reference's time over dlrl's (above 1: dlrl is faster). Every figure was measured in "
        "this run by the script named in the first column's file; rows that did not run say why.",
        "",
        "| comparison | the same work | dlrl | reference | ratio | dlrl quality | reference quality "
        "| reference | figures from |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ROWS:
        for row in rows_of(name, results[name]):
            values = [
                row.comparison,
                row.work,
                row.dlrl_time,
                row.reference_time,
                row.ratio,
                row.dlrl_quality,
                row.reference_quality,
                row.reference,
                row.source,
            ]
            lines.append("| " + " | ".join(cell(v) for v in values) + " |")
    lines += seed_table(results.get("dqn_sb3"))
    lines += targets(results, run.get("wall_seconds"))
    return "\n".join(lines) + "\n"


def write_table(results_dir: Path, out: Path | None = None) -> Path:
    out = out or results_dir / TABLE_NAME
    out.write_text(render(results_dir), encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", nargs="?", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, help=f"default: RESULTS/{TABLE_NAME}")
    args = parser.parse_args()
    print(write_table(args.results, args.out))


if __name__ == "__main__":
    main()
