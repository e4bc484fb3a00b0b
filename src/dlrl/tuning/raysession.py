"""Ray plumbing: a quiet local (or attached) Ray session shut down on every exit, and the progress callback.

Imports ray at module level: import this module only when a search actually runs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from dlrl.tuning.cluster import ClusterError, ClusterInfo, auth_mode, stderr_fd_to
from dlrl.utils import usable_cores

log = logging.getLogger("dlrl.tuning")

# Set for the driver (and inherited by a local cluster's processes): no usage stats, no dashboard noise.
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
    "RAY_DEDUP_LOGS": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1000",
}
# Loggers whose output belongs in RUN/ray.log, not on the terminal.
QUIET_LOGGERS = ("ray", "optuna", "py.warnings", "filelock", "urllib3")


@dataclass
class SessionInfo:
    address: str  # "local" or the cluster address
    cpus: float  # CPUs of the cluster
    start_seconds: float = 0.0
    shutdown_seconds: float = 0.0
    nodes: int = 1  # alive nodes when the session started


class QuietLogs:
    """Route ray/optuna log records and Python warnings to a file while the search runs."""

    def __init__(self, path: Path):
        self.path = path
        self.handler = logging.FileHandler(path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.saved: list[tuple[logging.Logger, list[logging.Handler], bool, int]] = []

    def attach(self) -> None:
        """(Re)attach the file handler: ray.init replaces the handlers of the 'ray' logger."""
        try:  # optuna adds its own stderr handler the first time it logs, unless told not to
            import optuna

            optuna.logging.disable_default_handler()
        except ImportError:
            pass
        manager = logging.root.manager.loggerDict
        children = [n for n in manager if n.startswith("ray.") and isinstance(manager[n], logging.Logger)]
        for name in (*QUIET_LOGGERS, *children):
            logger = logging.getLogger(name)
            if not any(saved[0] is logger for saved in self.saved):
                self.saved.append((logger, logger.handlers[:], logger.propagate, logger.level))
            if name in QUIET_LOGGERS:
                logger.handlers[:] = [self.handler]
                logger.propagate = False
                logger.setLevel(logging.INFO)
            else:  # Ray's sub-loggers may carry their own stream handlers; send them up to 'ray' instead
                logger.handlers[:] = []
                logger.propagate = True

    def __enter__(self) -> QuietLogs:
        self.attach()
        logging.captureWarnings(True)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("default")
        return self

    def __exit__(self, *exc: object) -> None:
        self._warnings.__exit__(*exc)
        logging.captureWarnings(False)
        for logger, handlers, propagate, level in self.saved:
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.setLevel(level)
        self.handler.close()


@contextmanager
def ray_session(log_path: Path, cluster: ClusterInfo | None = None) -> Iterator[SessionInfo]:
    """A Ray session: a new local Ray with every core, or the ``cluster`` checked by ``inspect_cluster``.

    Always shut down on the way out (finished, error or Ctrl-C): a local Ray leaves no processes behind.
    Raises ClusterError if attaching fails (nothing has run then). A Ray this process had already started
    (``ray.init()`` in a notebook or script) is used as it is and left running.
    """
    if ray.is_initialized() and cluster is None:  # with a cluster: refused by inspect_cluster
        with (
            QuietLogs(log_path),
            open(log_path, "a", encoding="utf-8") as stream,
            contextlib.redirect_stdout(stream),  # Tune's prints to the log, as below
        ):
            info = SessionInfo(f"this process's Ray ({ray.get_runtime_context().gcs_address})", _cpus())
            info.nodes = _alive_nodes()
            yield info
        return
    saved_env = {key: os.environ.get(key) for key in RAY_ENV}
    os.environ.update(RAY_ENV)
    try:
        with (
            auth_mode("token" if cluster is not None and cluster.token else None),
            QuietLogs(log_path) as quiet,
            contextlib.ExitStack() as stack,  # stack: Tune's prints to the log
        ):
            started = time.perf_counter()
            # ray.init installs a stream handler on the 'ray' logger and logs through it right away: let that
            # handler write into the log file, then put ours back.
            with (
                open(log_path, "a", encoding="utf-8") as stream,
                contextlib.redirect_stderr(stream),
                stderr_fd_to(log_path),
            ):
                _init(cluster)
            quiet.attach()
            stack.enter_context(
                contextlib.redirect_stdout(stack.enter_context(open(log_path, "a", encoding="utf-8")))
            )
            address = cluster.address if cluster is not None else "local"
            info = SessionInfo(address, _cpus())
            info.nodes = _alive_nodes()
            info.start_seconds = time.perf_counter() - started
            log.debug("ray started in %.1fs (%s, %g CPUs)", info.start_seconds, info.address, info.cpus)
            try:
                yield info
            finally:
                stopping = time.perf_counter()
                with stderr_fd_to(log_path):
                    ray.shutdown()
                info.shutdown_seconds = time.perf_counter() - stopping
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _cpus() -> float:
    return float(ray.cluster_resources().get("CPU", 0))


def _alive_nodes() -> int:
    return sum(1 for node in ray.nodes() if node.get("Alive"))


# A local Ray on a busy machine can fail to start: its raylet gives its agents 15 s to come up (hard-coded in
# Ray, ray-project/ray#65983), then exits, and ray.init raises this after its own 30 s.
SLOW_START = "timed out during startup"
LOCAL_START_ATTEMPTS = 3


# A local Ray starts one idle worker per CPU for the first driver; Tune's trials need workers with their own
# runtime environment, so those never run a trial. Measured on 2 cores, a two-trial `dlrl tune regression
# --quick`: 51-52 CPU s and 41 s without the idle workers' start-up, 41 CPU s and 34-35 s with it.
NO_PRESTARTED_WORKERS = {"prestart_worker_first_driver": False, "enable_worker_prestart": False}


def _init(cluster: ClusterInfo | None) -> None:
    """ray.init for a new local Ray or the cluster; a failure half-way takes down whatever started.
    A local Ray that timed out starting is started again (up to LOCAL_START_ATTEMPTS times)."""
    for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
        try:
            _init_once(cluster)
            return
        except Exception as err:
            if cluster is not None or SLOW_START not in str(err) or attempt == LOCAL_START_ATTEMPTS:
                raise
            log.warning(
                "Ray's local start timed out (a busy machine?); starting it again (%d/%d)",
                attempt + 1,
                LOCAL_START_ATTEMPTS,
            )


def _init_once(cluster: ClusterInfo | None) -> None:
    try:
        if cluster is None:
            ray.init(
                address="local",
                num_cpus=usable_cores(),
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.INFO,
                _system_config=NO_PRESTARTED_WORKERS,
            )
        else:
            ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.INFO)
    except BaseException as err:  # Ctrl-C included
        ray.shutdown()
        if cluster is None or not isinstance(err, ConnectionError | RuntimeError):
            raise
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ClusterError(f"{cluster.given}: cannot connect to the Ray cluster ({first})") from None


def trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


class ProgressCallback(tune.Callback):
    """One terminal line per finished trial plus the current best (through the 'dlrl.tuning' logger)."""

    def __init__(self, metric: str, mode: str, total: int, max_epochs: int, params: list[str]):
        self.metric = metric
        self.mode = mode
        self.total = total
        self.max_epochs = max_epochs
        self.params = params

    def _best_of(self, trial: Any) -> float:
        stats = trial.metric_analysis.get(self.metric, {})
        value = stats.get(self.mode, math.nan)
        return float(value) if value is not None else math.nan

    def _current_best(self, trials: list[Any], trial: Any) -> tuple[float, str]:
        sign = 1 if self.mode == "min" else -1
        done = [t for t in trials if t.status == "TERMINATED" or t is trial]  # not the running ones
        scored = [(self._best_of(t), t.trial_id) for t in done if t.metric_analysis.get(self.metric)]
        scored = [(v, tid) for v, tid in scored if math.isfinite(v)]
        if not scored:
            return math.nan, "-"
        return min(scored, key=lambda item: sign * item[0])

    def _line(self, trials: list[Any], trial: Any, what: str) -> None:
        ended = ("TERMINATED", "ERROR")
        done = sum(t.status in ended for t in trials) + (
            trial.status not in ended
        )  # also counts a resumed search
        params = " ".join(
            f"{name.rpartition('.')[2]}={_short(trial.config.get(name))}" for name in self.params
        )
        best, best_id = self._current_best(trials, trial)
        log.info(
            "trial %d/%d %s: %s  %s | best %s=%.4g (%s)",
            done,
            self.total,
            trial.trial_id,
            what,
            params,
            self.metric,
            best,
            best_id,
        )

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        epochs = int(result.get("epoch", 0) or 0)
        std = result.get(f"{self.metric}_std")
        spread = f" ±{std:.2g}" if isinstance(std, float) else ""
        how = "" if epochs >= self.max_epochs else f", stopped early at epoch {epochs}/{self.max_epochs}"
        self._line(trials, trial, f"{self.metric}={self._best_of(trial):.4g}{spread}{how}")

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        log.warning(
            "trial %s: failed on node %s at epoch %s (its node lost, or an error); retry %d of %d from "
            "its last checkpoint",
            trial.trial_id,
            str(result.get("node", "?"))[:8],
            result.get("epoch", 0),
            trial.num_failures,
            trial.max_failures,
        )

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._line(trials, trial, f"FAILED (see {trial.path})")
