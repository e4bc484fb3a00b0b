"""Running the sections of ``dlrl run`` one after another, with a report after each."""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlrl.pipeline.environment import write_env
from dlrl.pipeline.section import check_cluster, resolve_configs, run_section, uses_cluster
from dlrl.pipeline.sections import Section, expected_seconds
from dlrl.pipeline.state import STATUS_FILE, RunSettings, RunState
from dlrl.pipeline.tensorboard import check_tensorboard, log_tensorboard
from dlrl.progress import StageProgress
from dlrl.report import REPORT_NAME, build_report
from dlrl.rundir import run_lock
from dlrl.tuning.cluster import ClusterInfo
from dlrl.utils import cpu_seconds

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a ``dlrl run`` left in its directory."""

    out: Path
    status: dict[str, Any]  # sections.json: name -> {status, seconds, cpu_seconds, error, traceback}
    seconds: float  # wall time of the whole run, over every session of it
    sections: list[str]  # the sections this session was asked to run, in order

    @property
    def report_path(self) -> Path:
        return self.out / REPORT_NAME

    @property
    def status_path(self) -> Path:
        return self.out / STATUS_FILE

    def failed(self) -> list[str]:
        """The sections asked for that are not done (failed, or interrupted)."""
        return [name for name in self.sections if self.status.get(name, {}).get("status") != "done"]

    def summary(self, section: str) -> dict[str, Any]:
        """A finished section's summary.json."""
        return json.loads((self.out / section / "summary.json").read_text())


def run_all(out: Path, settings: RunSettings, *, resume: bool = False, **options: Any) -> RunResult:
    """``_run_all`` holding ``out``/.lock: a second dlrl process pointed at the same run is refused."""
    with run_lock(out, fresh=not resume):
        return _run_all(out, settings, resume=resume, **options)


def _run_all(
    out: Path,
    settings: RunSettings,
    *,
    resume: bool = False,
    tensorboard: bool = False,
    report: bool = True,
    cluster: ClusterInfo | None = None,
) -> RunResult:
    """Run the settings' sections into ``out`` (continuing it with ``resume``); the status of every section is
    also in out/sections.json. A failing section is recorded and the others still run. ``cluster``: where
    the searches and DQN's agents run (run.json and sections.json say where each section ran)."""
    if tensorboard:
        check_tensorboard()
    configs = resolve_configs(settings)
    check_cluster(settings, configs, cluster)
    state = RunState.begin(out, settings, resume)
    state.info["cluster"] = cluster.describe() if cluster is not None else None  # of this session
    if not (out / "env.json").exists():
        write_env(state.run, settings.seed, settings.profile)
    state.save()
    if report:
        _write_report(out)  # from the first second on, report.html shows what is planned and what is done

    sections = settings.sections
    progress = StageProgress(expected_seconds(sections, settings.quick))
    progress.skipped.update(s.name for s in sections if state.status_of(s.name) == "done")  # out of the ETA
    state.start_clock()
    plural = "s" if len(sections) != 1 else ""
    log.info("dlrl run (%s profile): %d section%s into %s", settings.profile, len(sections), plural, out)
    for section in sections:
        if state.status_of(section.name) == "done":
            log.info(progress.skip(section.name, "done earlier, skipped"))
            continue
        log.info(progress.start(section.name))
        try:
            _run_and_record(section, configs[section.name], state, resume, cluster)
        finally:  # also after Ctrl-C: the interrupted section shows in the report
            _after_section(section, state, progress, tensorboard, report)
    state.save()
    if report:  # once more with the run's final total time, as `dlrl report` rebuilds it from run.json
        _write_report(out)
    return RunResult(out, state.status, state.info["seconds"], [s.name for s in sections])


def _run_and_record(
    section: Section, config: Any, state: RunState, resume: bool, cluster: ClusterInfo | None = None
) -> None:
    """Run one section and record its status, times and where it ran in sections.json, however it ends."""
    wall_started, cpu_started = time.perf_counter(), cpu_seconds()
    # "interrupted" until it finishes or fails: also what a SystemExit or Ctrl-C leaves behind
    record: dict[str, Any] = {"experiment": section.experiment, "part": section.part}
    record["status"] = "interrupted"
    if cluster is not None:  # dlrl run --address: where this section ran
        record["ran_on"] = f"cluster {cluster.describe()}" if uses_cluster(section) else "this machine"
        state.info.setdefault("ran_on", {})[section.name] = record["ran_on"]
    try:
        failed_before = state.status_of(section.name) == "failed"
        run_section(section, config, state.out, resume, failed_before, cluster)
        record["status"] = "done"
    except Exception as err:  # a failing section is recorded; the others still run
        record.update(status="failed", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
    finally:
        earlier = state.interrupted_record(section.name)  # an interrupted earlier session counts too
        record["seconds"] = round(time.perf_counter() - wall_started + earlier.get("seconds", 0.0), 1)
        record["cpu_seconds"] = round(cpu_seconds() - cpu_started + earlier.get("cpu_seconds", 0.0), 1)
        state.record(section.name, record)


def _after_section(
    section: Section, state: RunState, progress: StageProgress, tensorboard: bool, report: bool
) -> None:
    """The progress line, the TensorBoard export and report.html, after a section ended in any way."""
    record = state.status[section.name]
    line = progress.finish(section.name, record["status"].upper() if record["status"] != "done" else "done")
    if record["status"] == "failed":
        log.error("%s: %s", line, record["error"])
    else:
        log.info(line)
    section_dir = state.out / section.name
    if tensorboard and section_dir.is_dir():
        try:
            log_tensorboard(section_dir, state.out / "tensorboard" / section.name)
        except Exception as err:
            log.error("%s: TensorBoard logging failed: %s", section.name, err)
    if report:
        _write_report(state.out)


def _write_report(out: Path) -> None:
    """Rewrite RUN/report.html; a report problem is logged, never fatal to the training run."""
    try:
        build_report(out)
    except Exception as err:
        log.error("report.html could not be written: %s: %s", type(err).__name__, err)
