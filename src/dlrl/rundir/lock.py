"""One writer at a time: RUN/.lock, an flock held while a dlrl process writes the run directory."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from dlrl.errors import OutputError, RunDirError
from dlrl.utils import cannot_write

try:
    import fcntl
except ImportError:  # Windows: run directories are not locked
    fcntl = None  # type: ignore[assignment]


LOCK_FILE = ".lock"


def lock_holder(path: str | Path) -> str | None:
    """Who holds ``path``'s lock ('pid 123 on host since ...'), None if no live process does."""
    lock = Path(path) / LOCK_FILE
    if fcntl is None:
        return None
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder_text(fd)
    except OSError:  # a file system without locks
        return None
    finally:
        os.close(fd)  # also releases the shared lock just taken
    return None


def _holder_text(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another process"


def in_use_error(path: Path, holder: str) -> RunDirError:
    return RunDirError(
        f"{path}: in use by another dlrl process ({holder}); wait for it to end or choose another --out"
    )


@contextmanager
def run_lock(path: str | Path, fresh: bool = False) -> Iterator[None]:
    """Hold ``path``/.lock while this process writes the run directory (created here if missing).

    A second dlrl process pointed at the same directory gets one RunDirError line instead of both writing.
    The lock is an flock: the kernel drops it when its holder exits, however it exits, so the lock file of
    a killed process is stale and simply taken over. ``fresh``: the directory must hold nothing else (a run
    that finished between our checks and the lock is not overwritten). A directory made here and still
    empty at the end is removed."""
    path = Path(path)
    if fcntl is None:  # no flock on this platform: run unlocked
        yield
        return
    lock = path / LOCK_FILE
    made = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = _acquire(lock, path)
    except OSError as err:
        raise OutputError(cannot_write(lock, err)) from None
    try:
        if fresh and any(p.name != LOCK_FILE for p in path.iterdir()):
            raise RunDirError(
                f"--out {path}: directory exists and is not empty (use --resume to continue it)"
            )
        yield
    finally:
        with suppress(OSError):
            lock.unlink()  # before closing: whoever opened the old file sees it is gone and retries
        os.close(fd)
        if made:  # nothing written after all (bad input found first): leave nothing behind
            with suppress(OSError):
                path.rmdir()


def _acquire(lock: Path, path: Path) -> int:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_text(fd)
            os.close(fd)
            raise in_use_error(path, holder) from None
        except OSError:  # a file system without locks: run unlocked rather than not at all
            return fd
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:  # not a file its previous holder removed meanwhile
            break
        os.close(fd)
    since = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {platform.node()} since {since}\n".encode(), 0)
    return fd
