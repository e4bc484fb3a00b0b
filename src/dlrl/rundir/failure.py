"""A run that ended in an error never looks finished: its directory is removed, or marked failed."""

from __future__ import annotations

import json
import shutil
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrl.errors import DlrlError, OutputError
from dlrl.utils import atomic_write_text

if TYPE_CHECKING:
    from dlrl.rundir import RunDir

FAILED_FILE = "failed.json"
TRACEBACK_FILE = "traceback.txt"


@contextmanager
def cleanup_on_error(run_dir: RunDir, created: bool) -> Iterator[None]:
    """What a run directory looks like after its run ended in an error: never like a finished run.

    Bad input (a DlrlError) removes a directory this invocation created: no half-written output. Anything
    else (a full disk, a bug) removes it too when it holds no work to resume (no checkpoint), and otherwise
    marks it failed (``failed.json`` + ``traceback.txt``, see :func:`mark_failed`) and keeps its
    checkpoints for --resume; the exception then carries ``dlrl_run_dir`` and ``dlrl_traceback`` for the
    CLI. Ctrl-C leaves the directory as it is (resumable). A run that ends well drops an earlier failure
    mark.
    """
    try:
        yield
    except DlrlError as err:
        if not isinstance(err, OutputError):
            if created and run_dir.path.exists():
                shutil.rmtree(run_dir.path, ignore_errors=True)
            raise
        _failed(run_dir, created, err)
        raise
    except Exception as err:
        _failed(run_dir, created, err)
        raise
    (run_dir.path / FAILED_FILE).unlink(missing_ok=True)


def holds_work(path: Path) -> bool:
    """Whether a run directory holds anything worth resuming: a checkpoint, or a search's trials."""
    if (path / "search").is_dir():
        return True
    return any(not p.name.startswith(".") for p in path.rglob("*.pt"))


def _failed(run_dir: RunDir, created: bool, err: BaseException) -> None:
    if created and run_dir.path.exists() and not holds_work(run_dir.path):
        shutil.rmtree(run_dir.path, ignore_errors=True)
    elif run_dir.path.is_dir() and not hasattr(err, "dlrl_run_dir"):  # the innermost run directory
        err.dlrl_run_dir = str(run_dir.path)  # type: ignore[attr-defined]
        err.dlrl_traceback = mark_failed(run_dir, err)  # type: ignore[attr-defined]


def mark_failed(run_dir: RunDir, err: BaseException) -> str | None:
    """Write failed.json (status, error) and traceback.txt; return the traceback's path, None if even
    these cannot be written (a full disk): the missing summary.json still says the run did not finish."""
    text = "".join(traceback.format_exception(err))
    path = run_dir.path / TRACEBACK_FILE
    record = {
        "status": "failed",
        "error": f"{type(err).__name__}: {first_line(err)}",
        "traceback": TRACEBACK_FILE,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        atomic_write_text(path, text)
        run_dir.write_json(FAILED_FILE, record)
    except DlrlError:
        return None
    return str(path)


def first_line(err: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an exception's message (its type name if it has none), shortened."""
    line = next((part.strip() for part in str(err).splitlines() if part.strip()), type(err).__name__)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def read_failure(path: str | Path) -> dict[str, Any] | None:
    """failed.json of a run directory as a dict, None if the run is not marked failed (or unreadable)."""
    try:
        data = json.loads((Path(path) / FAILED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
