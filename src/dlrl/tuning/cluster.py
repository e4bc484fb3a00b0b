"""A running Ray cluster, checked before anything is written or Ray starts in this process.

``inspect_cluster`` answers in seconds, with one line for whatever is wrong: nothing listening at the address,
something there that is not Ray, a cluster that wants a token this machine does not have (or has another
one), a cluster of another Ray or Python version. The ``ClusterInfo`` it returns knows the cluster's nodes
(CPUs, machine), so callers can refuse a request no node can hold, or a multi-machine cluster without
shared storage, before anything runs.

Token authentication: a cluster started by ``ray start --head`` on a machine with a token (``ray
get-auth-token --generate``; a local Ray creates one too) asks every client for it. When the cluster asks
and ``RAY_AUTH_MODE`` is unset, dlrl turns token mode on if a token is found where Ray's own tools look
(``RAY_AUTH_TOKEN``, the file in ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``): what ``ray.init()`` does for
a cluster it finds on the local machine. ``RAY_AUTH_MODE`` set explicitly is respected.

Imports ray only inside functions: ``dlrl --help`` imports this module's callers.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from dlrl.errors import DlrlError

AUTH_MODE = "RAY_AUTH_MODE"
# The client preface of HTTP/2 and an empty SETTINGS frame: a gRPC server (Ray's GCS) answers with SETTINGS.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_SETTINGS_FRAME = 0x04


class ClusterError(DlrlError):
    """The cluster cannot be used (unreachable, not Ray, its token, its version, too small)."""


@dataclass(frozen=True)
class Node:
    node_id: str  # hex, as `ray list nodes` shows it
    ip: str
    cpus: float
    head: bool


@dataclass
class ClusterInfo:
    address: str  # GCS address: host:port
    given: str  # how the user gave it, for messages: "--address HOST:PORT" or "RAY_ADDRESS=..."
    ray_version: str = ""
    nodes: list[Node] = field(default_factory=list)  # alive nodes
    token: bool = False  # the cluster wants token authentication (dlrl turns it on for the session)
    local_ips: frozenset[str] = frozenset()  # this machine's addresses, as Ray nodes report them

    @property
    def cpus(self) -> float:
        return sum(node.cpus for node in self.nodes)

    @property
    def largest_node_cpus(self) -> float:
        return max((node.cpus for node in self.nodes), default=0.0)

    @property
    def machines(self) -> set[str]:
        return {node.ip for node in self.nodes}

    def on_this_machine(self) -> bool:
        """Every node runs on the machine of this process: they all see its disk."""
        return self.machines <= self.local_ips

    def describe(self) -> str:
        plural = "s" if len(self.nodes) != 1 else ""
        return f"{self.address} ({len(self.nodes)} node{plural}, {self.cpus:g} CPUs)"

    def check_cpus(self, needed: float, option: str) -> None:
        """One task or trial needs ``needed`` CPUs on one node (``option`` names the setting)."""
        if not self.nodes:  # Ray Client (ray://): the nodes are not known here, Ray itself checks
            return
        largest = self.largest_node_cpus
        if needed > largest:
            raise ClusterError(
                f"{option}: the largest node of the cluster at {self.describe()} has {largest:g} "
                f"CPU{'s' if largest != 1 else ''}"
            )


_ATTACHED: ContextVar[ClusterInfo | None] = ContextVar("dlrl_cluster", default=None)


@contextlib.contextmanager
def attached(cluster: ClusterInfo | None) -> Iterator[None]:
    """Inside, an experiment made of independent jobs (DQN's agents) runs them as Ray tasks on ``cluster``
    (None: on this machine, as usual). Set by ``dlrl rl train --address`` and ``dlrl run --address``."""
    token = _ATTACHED.set(cluster)
    try:
        yield
    finally:
        _ATTACHED.reset(token)


def attached_cluster() -> ClusterInfo | None:
    """The cluster of the innermost ``attached``; None outside."""
    return _ATTACHED.get()


def cluster_address(option: str | None) -> tuple[str | None, str]:
    """(address or None for a new local Ray, how it was given) from --address or RAY_ADDRESS."""
    if option:
        return option, f"--address {option}"
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env:
        return env, f"RAY_ADDRESS={env}"
    return None, ""


def _host_port(address: str, given: str) -> tuple[str, int]:
    host, sep, port_text = address.removeprefix("ray://").rpartition(":")
    if not sep or not port_text.isdigit() or not host:
        raise ClusterError(f"{given}: expected HOST:PORT (e.g. 10.0.0.5:6379) or 'auto'")
    return host.strip("[]"), int(port_text)


def probe_address(address: str, given: str, timeout: float = 3.0) -> None:
    """Fail in seconds with one line if nothing listens at ``address``, or something that is not Ray
    (Ray's own client would retry for 20-40 s)."""
    if address == "auto":
        return
    host, port = _host_port(address, given)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise ClusterError(
            f"{given}: cannot reach a Ray cluster ({reason}); is `ray start --head` running there?"
        ) from None
    head = b""
    with sock, contextlib.suppress(OSError):  # silence or a reset: not Ray either
        sock.sendall(_HTTP2_PREFACE)
        while len(head) < 9:
            chunk = sock.recv(9 - len(head))
            if not chunk:
                break
            head += chunk
    if len(head) < 9 or head[3] != _SETTINGS_FRAME:
        raise ClusterError(
            f"{given}: something listens there but it is not a Ray cluster (use the --port given to "
            "`ray start --head`, 6379 by default)"
        )


@contextlib.contextmanager
def stderr_fd_to(path: str | Path) -> Iterator[None]:
    """Point file descriptor 2 at ``path``: Ray's C++ core writes its warnings there, not via Python."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "a", encoding="utf-8") as target:
            os.dup2(target.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def token_source() -> str:
    """Where Ray's token loader takes the token from, first match wins (for messages)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return f"RAY_AUTH_TOKEN_PATH={os.environ['RAY_AUTH_TOKEN_PATH']}"
    return str(Path.home() / ".ray" / "auth_token")


def _token_available(given: str) -> bool:
    """Whether Ray's token loader finds a token; a RAY_AUTH_TOKEN_PATH naming no token is an error."""
    from ray._raylet import AuthenticationTokenLoader  # ray only when a cluster is used
    from ray.exceptions import AuthenticationError

    loader = AuthenticationTokenLoader.instance()
    loader.reset_cache()  # RAY_AUTH_TOKEN may have changed since the last look (a notebook, a test)
    try:
        return bool(loader.has_token(ignore_auth_mode=True))
    except AuthenticationError:  # Ray's loader refuses a token file it cannot read
        path = os.environ.get("RAY_AUTH_TOKEN_PATH", "")
        raise ClusterError(f"{given}: RAY_AUTH_TOKEN_PATH={path}: no such file, or it is empty") from None


@contextlib.contextmanager
def auth_mode(mode: str | None) -> Iterator[None]:
    """``RAY_AUTH_MODE=mode`` for this process while inside (None: leave it as it is)."""
    if mode is None:
        yield
        return
    from ray._raylet import Config  # ray only when a cluster is used

    saved = os.environ.get(AUTH_MODE)
    os.environ[AUTH_MODE] = mode
    Config.initialize("")  # Ray caches its config: re-read, as ray's own _enable_token_auth does
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(AUTH_MODE, None)
        else:
            os.environ[AUTH_MODE] = saved
        Config.initialize("")


def _refused(given: str) -> ClusterError:
    return ClusterError(
        f"{given}: the cluster refused the token found in {token_source()}; set RAY_AUTH_TOKEN to the "
        "output of `ray get-auth-token` on the head node"
    )


def _no_token(given: str, why: str) -> str:
    return (
        f"{given}: {why} no token was found here; set RAY_AUTH_TOKEN to the output of `ray get-auth-token` "
        "on the head node (or copy its ~/.ray/auth_token to this machine)"
    )


def _gcs_client(address: str, given: str) -> tuple[object, bool]:
    """(a client of the cluster's GCS, whether it needed token mode turned on)."""
    from ray._raylet import GcsClient  # ray only when a cluster is used
    from ray.exceptions import AuthenticationError, RpcError

    mode = os.environ.get(AUTH_MODE)
    if mode is not None and mode.lower() == "token" and not _token_available(given):
        raise ClusterError(_no_token(given, f"{AUTH_MODE}=token is set but"))  # Ray would abort the process
    try:
        try:
            return GcsClient(address=address), False
        except AuthenticationError:
            if mode is not None and mode.lower() != "token":
                raise ClusterError(
                    f"{given}: the cluster uses token authentication but {AUTH_MODE}={mode} here; unset it "
                    "(dlrl then finds the token as Ray does) or set RAY_AUTH_MODE=token"
                ) from None
            if not _token_available(given):
                raise ClusterError(_no_token(given, "the cluster uses token authentication and")) from None
            if mode is not None:  # token mode already on: the token is the wrong one
                raise _refused(given) from None
        with auth_mode("token"):
            try:
                return GcsClient(address=address), True
            except AuthenticationError:
                raise _refused(given) from None
    except RpcError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ClusterError(f"{given}: not a Ray cluster's head ({first})") from None


def _check_version(metadata: dict, given: str) -> str:
    """The cluster's Ray version; refuses another Ray (or Python) version, by Ray's own rule."""
    import platform

    import ray  # ray only when a cluster is used
    from ray._private.utils import check_version_info

    theirs = (str(metadata.get("ray_version", "?")), str(metadata.get("python_version", "?")))
    try:
        check_version_info(metadata, "this machine")
    except RuntimeError:
        raise ClusterError(
            f"{given}: the cluster runs Ray {theirs[0]} on Python {theirs[1]}, this machine Ray "
            f"{ray.__version__} on Python {platform.python_version()}; every node and this machine need "
            f"the same versions (pip install 'ray[tune]=={theirs[0]}')"
        ) from None
    return theirs[0]


def _local_ips(host: str) -> frozenset[str]:
    """This machine's addresses as a Ray node started here reports them (localhost resolves to the
    machine's address), plus the one it reaches the cluster from."""
    from ray._private.services import get_node_ip_address  # ray only when a cluster is used

    ips = {"127.0.0.1", "::1", get_node_ip_address()}
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, 9))  # UDP: sends nothing, just picks the route
        ips.add(sock.getsockname()[0])
    return frozenset(ips)


def inspect_cluster(option: str | None) -> ClusterInfo | None:
    """The cluster at --address ``option`` (or RAY_ADDRESS), checked; None when neither is given."""
    address, given = cluster_address(option)
    if address is None:
        return None
    ray = sys.modules.get("ray")  # imported only once this process has used Ray
    if ray is not None and ray.is_initialized():  # one process, one Ray connection
        raise ClusterError(
            f"{given}: this process is already connected to a Ray (ray.init() was called): "
            "call ray.shutdown() first, or leave out the address to use that Ray"
        )
    probe_address(address, given)
    if address.startswith("ray://"):  # Ray Client: the driver runs on the cluster; ray.init checks it
        return ClusterInfo(address, given)
    if address == "auto":
        from ray._private.services import canonicalize_bootstrap_address  # ray only for a cluster

        found = canonicalize_bootstrap_address("auto")
        if not found:
            raise ClusterError(f"{given}: no Ray cluster started on this machine (`ray start --head`)")
        address = found
    from ray.core.generated import gcs_pb2  # ray only when a cluster is used

    # Ray's C++ client logs each refused attempt on fd 2: the user gets one line from us instead
    with stderr_fd_to(os.devnull):
        client, token = _gcs_client(address, given)
    with auth_mode("token" if token else None), stderr_fd_to(os.devnull):
        raw = client.internal_kv_get(b"CLUSTER_METADATA", namespace=b"cluster", timeout=10)  # type: ignore[attr-defined]
        infos = client.get_all_node_info(timeout=10)  # type: ignore[attr-defined]
    version = _check_version(json.loads(raw) if raw else {}, given)
    nodes = [
        Node(
            info.node_id.hex(),
            info.node_manager_address,
            float(info.resources_total.get("CPU", 0.0)),
            bool(info.is_head_node),
        )
        for info in infos.values()
        if info.state == gcs_pb2.GcsNodeInfo.ALIVE
    ]
    host = _host_port(address, given)[0]
    return ClusterInfo(address, given, version, nodes, token, _local_ips(host))
