"""A real multi-node Ray cluster on this machine, started with the README's "Try it on one machine" lines.

Each line runs as written in its own process group, with free ports in place of 6379 and this cluster's own
HOME (so its token is made for it) and Ray temp directory (so `ray start` finds no other Ray of this machine,
and every process it starts carries the directory in its environment). Teardown kills exactly those
processes, never with `ray stop` (that would stop every Ray of this user, other tests' included), and
checks that none is left.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
README_PORT = "6379"
CLEAN_ENV = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_TMPDIR")


def readme_steps() -> list[str]:
    """The non-empty lines of the README's "Try it on one machine" block."""
    section = README.read_text(encoding="utf-8").split("\n## On a cluster\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("Try it on one machine", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"


def marked(marker: str) -> set[int]:
    """Live processes whose environment holds ``marker`` (zombies count as gone)."""
    needle = marker.encode() + b"\0"
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and needle in _environ(int(entry.name)):
            if _state(int(entry.name)) not in ("Z", "gone"):
                found.add(int(entry.name))
    return found


def _in_group(pgid: int) -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


@dataclass
class Node:
    pgid: int  # the process group its `ray start` made (the raylet and its helpers)
    node_id: str = ""  # Ray's node id (hex), from its raylet's command line
    alive: bool = True


@dataclass
class LocalCluster:
    address: str  # "127.0.0.1:PORT"
    env: dict[str, str]  # what the README's lines ran with: for dlrl subprocesses
    steps: list[str]  # the README lines, with this cluster's port
    marker: str  # "RAY_TMPDIR=..." in the environment of every process the cluster started
    home: Path
    workers: list[Node] = field(default_factory=list)
    head: Node | None = None
    log: Path | None = None

    @property
    def token_file(self) -> Path:
        return self.home / ".ray" / "auth_token"

    def alive_workers(self) -> list[Node]:
        return [w for w in self.workers if w.alive]

    def run(
        self, line: str, timeout: float = 180, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """One shell line with the cluster's environment, in its own process group."""
        return subprocess.run(
            ["bash", "-c", line],
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )

    def start_node(self, line: str, attempts: int = 2) -> Node:
        """A `ray start` line in its own process group; returns the node it started.

        A raylet waits a hard-coded 15 s for its agents (Python processes) to start (ray-project/ray#65983):
        on a machine whose cores are busy with other work they can take longer, and the node dies. Then
        its processes are killed and the line is run again, up to ``attempts`` times."""
        for _ in range(attempts):
            with open(self.log or os.devnull, "a") as log:
                proc = subprocess.Popen(
                    ["bash", "-c", line], env=self.env, stdout=log, stderr=log, start_new_session=True
                )
                code = proc.wait(timeout=180)
            if code == 0:
                break
            for pid in _in_group(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        assert code == 0, f"{line!r} failed {attempts} times ({code}): {self.raylet_fatal()}"
        node = Node(proc.pid)
        for pid in _in_group(proc.pid):
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(b"/raylet"):
                node.node_id = next(a for a in args if a.startswith(b"--node_id=")).split(b"=", 1)[1].decode()
        assert node.node_id, f"no raylet in the process group of {line!r}"
        return node

    def raylet_fatal(self) -> str:
        """The last fatal line of the raylets' logs (why a node did not start), if any."""
        lines = [
            line
            for log in self.home.parent.glob("ray/session_*/logs/raylet*.out")
            for line in log.read_text(errors="replace").splitlines()
            if " C " in line
        ]
        return lines[-1][:400] if lines else "no raylet error logged"

    def kill_worker(self, node: Node) -> None:
        """Lose a worker node as a crashed machine would: SIGKILL to its raylet, helpers and Ray workers."""
        pids = _in_group(node.pgid)
        children = {int(c) for pid in pids for c in _children(pid)}
        for pid in pids | children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.alive = False

    def add_worker(self) -> Node:
        line = next(s for s in self.steps if s.startswith("ray start --address"))
        node = self.start_node(line)
        self.workers.append(node)
        return node


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def stop(marker: str, seconds: float = 20.0) -> set[int]:
    """SIGKILL every process holding ``marker`` until none is left; returns those that would not go."""
    deadline = time.monotonic() + seconds
    left = marked(marker)
    while left and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.3)
        left = marked(marker)
    return left


@pytest.fixture(scope="session")
def local_cluster() -> LocalCluster:
    """The README's one-machine cluster: a head with no CPUs and two one-CPU workers, up to (not including)
    its `dlrl` line. Torn down with every process it started."""
    if shutil.which("bash") is None:
        pytest.skip("needs bash to run the README's lines")
    root = Path(tempfile.mkdtemp(prefix="dlrlc", dir="/tmp"))  # short: Ray's socket paths live under it
    home = root / "home"
    home.mkdir()
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        HOME=str(home),
        RAY_TMPDIR=str(root),
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONUNBUFFERED="1",
        PATH=f"{venv_bin}:{env.get('PATH', '')}",  # `ray` and `dlrl` of this environment
    )
    steps = [line.replace(README_PORT, port) for line in readme_steps()]
    cluster = LocalCluster(
        f"127.0.0.1:{port}", env, steps, f"RAY_TMPDIR={root}", home, log=root / "steps.log"
    )
    try:
        for line in steps:
            if line.startswith("dlrl ") or line == "ray stop":
                break
            if line.startswith("export "):
                for item in shlex.split(line)[1:]:
                    key, _, value = item.partition("=")
                    env[key] = value
            elif line.startswith("ray start --head"):
                cluster.head = cluster.start_node(line)
            elif line.startswith("ray start"):
                cluster.workers.append(cluster.start_node(line))
            else:
                done = cluster.run(line)
                assert done.returncode == 0, f"{line!r}: {done.stderr[-2000:]}"
        assert cluster.head is not None and len(cluster.workers) == 2, steps
        yield cluster
    finally:
        left = stop(cluster.marker)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"Ray processes of the test cluster still alive: {sorted(left)}"
