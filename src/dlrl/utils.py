"""Small shared helpers: seeding and derived seeds, usable cores, CPU time, torch's CPU settings, device
choice, atomic file writes, the git commit of the code."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import random
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlrl.errors import OutputError

if TYPE_CHECKING:
    import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python's ``random``, numpy's global RNG and torch; optionally force deterministic kernels.

    Code that draws random numbers should still take an explicit generator; this only covers what
    cannot (dropout, weight initialisation).
    """
    import torch  # imported here: the CLI's --help and the atomic writers must not pay for torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def derived_seed(seed: int, index: int, stride: int = 1_000) -> int:
    """The seed of the ``index``-th independent part of a run (a fold, a DQN seed of a trial, a mode):
    ``seed * stride + index``, so parts never share a stream and the run seed still decides them all."""
    return seed * stride + index


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), not all the machine has."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_seconds(children: bool = True) -> float:
    """User + system CPU seconds of this process, and of its finished child processes with ``children``
    (worker processes of a DQN run, t-SNE's threads are the process's own)."""
    times = os.times()
    own = times.user + times.system
    return own + times.children_user + times.children_system if children else own


def configure_torch(threads: int) -> None:
    """Torch intra-op threads, and subnormal floats flushed to zero on the CPU.

    Why the flush: Adam's second-moment estimates of weights whose gradients are (nearly) always zero, such
    as those of an MNIST image's blank border pixels, decay into the subnormal range, where x86 arithmetic
    is many times slower. Measured: the optimizer step of a 784-512-512-10 MLP took 5.1 ms instead of
    0.5 ms, and a Fashion-MNIST epoch at batch 64 3.4 s instead of 1.8 s. Values below 1e-38 change no
    result that matters here."""
    import torch  # here, not at the top: the CLI imports utils for --help, which must stay fast

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda if available else cpu; anything else is passed to torch.device."""
    import torch  # as in configure_torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


# Errors of a write that the user can fix (free space, permissions) rather than bugs.
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG, errno.EIO}
)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, else removed.

    A killed process therefore never leaves a half-written file under the final name. A write that fails
    (disk full, no permission, read-only file system) is an ``OutputError`` naming the file, and the file
    under the final name keeps what it held before.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as err:
        raise OutputError(cannot_write(path, err)) from None
    tmp_path = Path(tmp)
    try:
        try:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the final the usual ones
        except OSError as err:
            raise OutputError(cannot_write(path, err)) from None
        try:
            yield tmp_path
        except OSError as err:
            if err.errno not in WRITE_ERRNOS:  # e.g. a download's network error: the caller's to handle
                raise
            raise OutputError(cannot_write(path, err)) from None
        try:
            os.replace(tmp_path, path)
        except OSError as err:
            raise OutputError(cannot_write(path, err)) from None
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink(missing_ok=True)


def cannot_write(path: str | Path, err: OSError) -> str:
    """'cannot write PATH (No space left on device)': one line for a failed write."""
    return f"cannot write {path} ({err.strerror or type(err).__name__})"


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def git_commit(short: bool = False) -> str | None:
    """The commit of the checkout dlrl runs from (None outside a git checkout, or without git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", *(["--short"] if short else []), "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
