"""After a search: trials.csv, metrics.csv, best_config.yaml, figures and the summary, from Tune's files."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from dlrl.config import ExperimentConfig, config_to_yaml
from dlrl.errors import DlrlError
from dlrl.rundir import RunDir
from dlrl.tuning.space import apply_params, params_of
from dlrl.utils import atomic_write_text

log = logging.getLogger("dlrl.tuning")

UNFINISHED = ("PENDING", "RUNNING", "PAUSED")
EXPERIMENT_DIR = "search"  # Ray Tune's experiment directory inside the run directory


@dataclass
class TrialRecord:
    trial_id: str
    status: str
    params: dict[str, Any]
    history: list[dict[str, float]] = field(
        default_factory=list
    )  # one row per epoch: means/spreads over folds
    error: str = ""
    nodes: list[str] = field(default_factory=list)  # Ray node ids it ran on, in order (a retry may move it)
    node_ips: list[str] = field(default_factory=list)
    failures: int = 0  # times it failed and was retried (Ray Tune's num_failures)
    restarted_from: list[int] = field(default_factory=list)  # epochs of the checkpoints it restarted from

    def best(self, metric: str, mode: str) -> tuple[float, int, float]:
        """(best mean metric over epochs, its epoch, the spread over folds there); NaN if none."""
        sign = 1 if mode == "min" else -1
        scored = [
            (r[metric], i) for i, r in enumerate(self.history) if math.isfinite(r.get(metric, math.nan))
        ]
        if not scored:
            return math.nan, 0, math.nan
        value, index = min(scored, key=lambda item: (sign * item[0], item[1]))
        row = self.history[index]
        return value, int(row.get("epoch", index + 1)), float(row.get(f"{metric}_std", math.nan))


def _history(frame: Any) -> list[dict[str, float]]:
    if frame is None or len(frame) == 0:
        return []
    keep = [c for c in frame.columns if c in ("epoch", "seconds") or c.startswith(("train_", "val_"))]
    frame = frame[keep]
    rows = [{k: float(v) for k, v in row.items() if v == v} for row in frame.to_dict("records")]
    by_epoch: dict[int, dict[str, float]] = {}
    for index, row in enumerate(rows):
        epoch = int(row.get("epoch", index + 1))
        # A resumed trial repeats the epochs after its last checkpoint: the later report of an epoch wins.
        by_epoch[epoch] = {**row, "epoch": epoch}
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def _in_order(values: Any) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value == value and value is not None and value not in seen:  # skip NaN (rows before it was known)
            seen.append(value)
    return seen


def _placement(frame: Any) -> tuple[list[str], list[str], list[int]]:
    """(node ids, node IPs, epochs restarted from) of a trial, from its result rows."""
    if frame is None or len(frame) == 0:
        return [], [], []

    def column(name: str) -> list[Any]:
        return _in_order(frame[name].tolist()) if name in frame.columns else []

    restarts = [int(v) for v in column("restored_from") if v > 0]
    return [str(v) for v in column("node")], [str(v) for v in column("node_ip")], restarts


def short_node(node_id: str) -> str:
    """The first 8 hex digits of a Ray node id (``ray list nodes`` shows all 56)."""
    return node_id[:8]


def load_trials(run_dir: RunDir, setup: Any) -> list[TrialRecord]:
    """Every trial of the search in creation order, read from Tune's experiment directory (no Ray needed)."""
    from ray.tune import ExperimentAnalysis  # ray only when results are read: `dlrl --help` stays fast

    from dlrl.tuning.raysession import QuietLogs  # imports ray

    with QuietLogs(run_dir.path / "ray.log"):  # e.g. warnings about trials that never reported
        analysis = ExperimentAnalysis(str(run_dir.path.resolve() / EXPERIMENT_DIR))
        frames = analysis.trial_dataframes
    records = []
    for trial in analysis.trials:  # in creation order
        error = ""
        if trial.status == "ERROR":
            error_file = getattr(trial, "error_file", None) or ""
            error = str(error_file)
        frame = frames.get(trial.trial_id)
        nodes, ips, restarts = _placement(frame)
        records.append(
            TrialRecord(
                trial.trial_id,
                trial.status,
                params_of(trial.config, setup.tune),
                _history(frame),
                error,
                nodes,
                ips,
                int(getattr(trial, "num_failures", 0) or 0),
                restarts,
            )
        )
    return records


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def trial_rows(records: list[TrialRecord], metric: str, mode: str, max_epochs: int) -> list[dict[str, Any]]:
    rows = []
    for record in records:
        best, epoch, spread = record.best(metric, mode)
        last = record.history[-1] if record.history else {}
        rows.append(
            {
                "trial": record.trial_id,
                "status": record.status,
                "epochs": len(record.history),
                "stopped_early": record.status == "TERMINATED" and len(record.history) < max_epochs,
                metric: best,
                f"{metric}_std": spread,
                "best_epoch": epoch,
                f"{metric}_last": last.get(metric, math.nan),
                "seconds": round(sum(r.get("seconds", 0.0) for r in record.history), 2),
                "node": " ".join(short_node(n) for n in record.nodes),
                "node_ip": " ".join(record.node_ips),
                "retries": record.failures,
                "restarted_from": " ".join(str(e) for e in record.restarted_from),
                **{name: _cell(value) for name, value in record.params.items()},
            }
        )
    return rows


def best_config_text(setup: Any, params: dict[str, Any]) -> tuple[ExperimentConfig, str]:
    """The base config with the best trial's ``params``, and the text of best_config.yaml."""
    config = apply_params(setup.adapter.config_cls, setup.base.model_dump(mode="json"), params, "best trial")
    command = setup.adapter.command
    header = f"# Best config of `dlrl tune {setup.experiment}`; train it: dlrl {command} --config FILE\n"
    return config, header + config_to_yaml(config)


def _write_figures(
    setup: Any, run_dir: RunDir, records: list[TrialRecord], rows: list[dict[str, Any]], best_trial: str
) -> None:
    """Metric vs each parameter, learning curves of the top trials, parallel coordinates."""
    # here, not at the top: matplotlib takes a fraction of a second that every dlrl command paid
    from dlrl.viz.search import plot_learning_curves, plot_metric_vs_params, plot_parallel_coordinates

    metric, mode = setup.metric, setup.mode
    sign = 1 if mode == "min" else -1
    names = list(setup.tune.space)
    log_scale = {n for n, s in setup.tune.space.items() if s.type in ("loguniform", "logint")}
    finite = [(r, row) for r, row in zip(records, rows, strict=True) if math.isfinite(row[metric])]
    values = {n: [r.params.get(n) for r, _ in finite] for n in names}
    scores = [row[metric] for _, row in finite]
    best_index = next(i for i, (r, _) in enumerate(finite) if r.trial_id == best_trial)
    run_dir.save_figure(
        plot_metric_vs_params(values, scores, metric, best_index, log_scale), "metric_vs_params"
    )
    ranked = sorted(finite, key=lambda item: sign * item[1][metric])[: setup.tune.top_k]
    curves = {
        r.trial_id: (
            [h.get("epoch", i + 1) for i, h in enumerate(r.history)],
            [h.get(metric, math.nan) for h in r.history],
            [h.get(f"{metric}_std", 0.0) for h in r.history],
        )
        for r, _ in ranked
    }
    run_dir.save_figure(plot_learning_curves(curves, metric, setup.tune.folds), "learning_curves")
    run_dir.save_figure(
        plot_parallel_coordinates(values, scores, metric, mode, log_scale), "parallel_coordinates"
    )


def write_results(
    setup: Any, run_dir: RunDir, timing: dict[str, Any], expected_trials: int = 0, out_of_time: bool = False
) -> tuple[dict[str, Any], ExperimentConfig]:
    """Write the tables, best config and figures; return the summary and the best config.

    An interrupted search (unfinished trials, or fewer than ``expected_trials`` without running out of time:
    Ctrl-C may come before the searcher created them all) writes the tables only, then raises
    KeyboardInterrupt.
    """
    metric, mode = setup.metric, setup.mode
    max_epochs = setup.adapter.epochs(setup.base)
    records = load_trials(run_dir, setup)
    rows = trial_rows(records, metric, mode, max_epochs)
    run_dir.write_metrics(rows, "trials.csv")
    run_dir.write_metrics([{"trial": r.trial_id, **h} for r in records for h in r.history], "metrics.csv")
    if any(r.status in UNFINISHED for r in records) or (len(records) < expected_trials and not out_of_time):
        raise KeyboardInterrupt
    scored = [row for row in rows if math.isfinite(row[metric])]
    if not scored:
        raise DlrlError(
            f"all {len(rows)} trials failed or produced no finite {metric} "
            f"(see {run_dir.path / 'trials.csv'} and {run_dir.path / 'ray.log'})"
        )
    sign = 1 if mode == "min" else -1
    best_row = min(scored, key=lambda row: sign * row[metric])
    best = next(r for r in records if r.trial_id == best_row["trial"])
    best_config, text = best_config_text(setup, best.params)
    atomic_write_text(run_dir.path / "best_config.yaml", text)

    _write_figures(setup, run_dir, records, rows, best.trial_id)

    statuses = [r.status for r in records]
    placement = _placement_summary(records)
    return {
        "experiment": setup.experiment,
        "metric": metric,
        "mode": mode,
        "best_metric": best_row[metric],
        "best_metric_std": best_row[f"{metric}_std"],
        "best_trial": best.trial_id,
        "best_epoch": best_row["best_epoch"],
        "trials": len(records),
        "trials_completed": sum(
            1 for row in rows if row["status"] == "TERMINATED" and not row["stopped_early"]
        ),
        "trials_stopped_early": sum(1 for row in rows if row["stopped_early"]),
        "trials_failed": statuses.count("ERROR"),
        "folds": setup.tune.folds,
        "search": setup.tune.search,
        "scheduler": setup.tune.scheduler,
        "epochs_per_trial": max_epochs,
        "epochs_trained": sum(len(r.history) for r in records),
        **timing,
        **placement,
        "best_params": {name: best.params.get(name) for name in setup.tune.space},
    }, best_config


def _placement_summary(records: list[TrialRecord]) -> dict[str, Any]:
    """Where the trials ran and which were retried (each also logged: the terminal says what was retried)."""
    per_node: dict[str, int] = {}
    for record in records:
        for node in record.nodes:
            per_node[short_node(node)] = per_node.get(short_node(node), 0) + 1
    retried = [r for r in records if r.failures]
    for record in retried:
        log.info(
            "trial %s: retried %d time%s (failed or lost its node), restarted from the checkpoint of epoch "
            "%s; ran on node %s; %s",
            record.trial_id,
            record.failures,
            "s" if record.failures != 1 else "",
            ", ".join(str(e) for e in record.restarted_from) or "0 (none yet)",
            " then ".join(short_node(n) for n in record.nodes),
            record.status,
        )
    return {
        "nodes_used": len(per_node),
        "trials_per_node": per_node,
        "trials_retried": len(retried),
        "retried": [
            {
                "trial": r.trial_id,
                "retries": r.failures,
                "restarted_from": " ".join(str(e) for e in r.restarted_from),
                "nodes": " ".join(short_node(n) for n in r.nodes),
                "status": r.status,
            }
            for r in retried
        ],
    }
