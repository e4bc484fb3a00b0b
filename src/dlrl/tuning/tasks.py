"""Independent jobs that each write one directory, run as Ray tasks on a cluster (DQN's agents under
``dlrl rl train --address`` and ``dlrl run --address``).

Each job is a call ``job(directory)`` returning a record (a dict). Its task holds ``cpus`` CPUs, runs the call
in a temporary directory on its node, seeded with the files of the job's local directory when resuming, and
hands back the directory's files with the record; this process writes them into the job's local directory.
The run directory is thus complete on the machine that started it, whether or not the nodes share a disk.
The same call with the same arguments and threads as in a local process gives the same results. Ray retries
a task whose node is lost, from the start of that job (its files were on the lost node).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlrl.rundir import RunDir
from dlrl.tuning.cluster import ClusterInfo
from dlrl.utils import atomic_path

log = logging.getLogger("dlrl.tuning")

Job = Callable[[str], dict[str, Any]]


def pack(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` by its relative path."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def unpack(files: dict[str, bytes], directory: Path) -> None:
    for name, data in files.items():
        with atomic_path(directory / name) as tmp:
            tmp.write_bytes(data)


def run_in_temporary_directory(job: Job, files: dict[str, bytes]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The body of one task: the job's files in, the job, its record (with where it ran) and files out."""
    import ray  # runs in a Ray worker

    with tempfile.TemporaryDirectory(prefix="dlrl-job-") as directory:
        unpack(files, Path(directory))
        record = dict(job(directory))
        record["node"] = ray.get_runtime_context().get_node_id()[:8]  # as a search's trials.csv names it
        record["node_ip"] = ray.util.get_node_ip_address()
        return record, pack(Path(directory))


def run_on_cluster(
    cluster: ClusterInfo,
    jobs: list[tuple[Job, str | Path]],
    cpus: float,
    log_path: Path,
    resume: bool = False,
    record_file: str | None = "result.json",
) -> list[dict[str, Any]]:
    """Run every (job, local directory) as a Ray task; returns the records in the order the jobs finished.

    A job's files are written into its directory as soon as it finishes, its record (with ``node`` and
    ``node_ip``) also as ``record_file`` there. ``resume``: each job starts from its directory's files.
    """
    import ray  # only when jobs go to a cluster: `dlrl --help` stays fast

    from dlrl.tuning.raysession import ray_session  # imports ray

    cluster.check_cpus(cpus, f"{cpus:g} CPUs per task (its torch threads)")
    task = ray.remote(num_cpus=cpus)(run_in_temporary_directory)
    records = []
    with ray_session(log_path, cluster):
        log.info("%d job(s) as Ray tasks on the cluster at %s", len(jobs), cluster.describe())
        pending = {}
        for job, directory in jobs:
            local = Path(directory)
            files = pack(local) if resume and local.is_dir() else {}
            pending[task.remote(job, files)] = local
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            local = pending.pop(ready)
            try:
                record, files = ray.get(ready)
            except ray.exceptions.RayTaskError as err:  # the job's own exception, as a local run raises it
                raise (err.cause or err) from None
            unpack(files, local)
            if record_file is not None:
                RunDir(local).write_json(record_file, record)
            records.append(record)
    return records
