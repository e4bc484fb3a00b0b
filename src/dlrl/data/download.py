"""Downloading one file: streamed, md5-checked before it is renamed into place, retried, with progress."""

from __future__ import annotations

import hashlib
import http.client
import logging
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TextIO

from dlrl.errors import DataError
from dlrl.utils import atomic_path

log = logging.getLogger(__name__)


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Progress:
    """One progress line on ``stream``: redrawn in place on a terminal, else printed about every 10%.

    Redraws are throttled (a 47 MB download arrives in ~700 chunks), so a log file gets at most ~11 lines.
    """

    def __init__(self, name: str, total: int | None, stream: TextIO | None = None):
        self.name, self.total = name, total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last_step = -1  # last printed tenth (non-TTY) or percent (TTY)
        self.last_time = 0.0

    def _text(self, done: int) -> str:
        if self.total:
            percent = 100 * done / self.total
            return f"  {self.name}: {done / 1e6:6.1f} / {self.total / 1e6:.1f} MB ({percent:3.0f}%)"
        return f"  {self.name}: {done / 1e6:6.1f} MB"

    def update(self, done: int) -> None:
        if self.tty:
            now = time.monotonic()
            if now - self.last_time < 0.1 and not (self.total and done >= self.total):
                return
            self.last_time = now
            self.stream.write("\r" + self._text(done))
        else:
            # Without a terminal: a line at every tenth of a known size, or every 10 MB of an unknown one.
            step = 10 * done // self.total if self.total else done // 10_000_000
            if step == self.last_step:
                return
            self.last_step = step
            self.stream.write(self._text(done) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.last_time:
            self.stream.write("\n")
            self.stream.flush()


def download_file(
    url: str,
    dest: Path,
    md5: str,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    show_progress: bool = True,
    stream: TextIO | None = None,
) -> None:
    """Download ``url`` to ``dest``: verified by md5 before it is renamed into place, retried on failure.

    Nothing is ever left under ``dest`` unless its checksum matched.
    """
    last_error = "no attempt"
    for attempt in range(1, retries + 1):
        try:
            with atomic_path(dest) as tmp:
                digest = hashlib.md5(usedforsecurity=False)
                with urllib.request.urlopen(url, timeout=timeout) as response, tmp.open("wb") as out:
                    total = int(response.headers.get("Content-Length") or 0) or None
                    progress = Progress(dest.name, total, stream) if show_progress else None
                    done = 0
                    try:
                        for chunk in iter(lambda: response.read(1 << 16), b""):
                            out.write(chunk)
                            digest.update(chunk)
                            done += len(chunk)
                            if progress:
                                progress.update(done)
                    finally:
                        if progress:
                            progress.close()
                if total is not None and done != total:
                    raise DataError(f"incomplete download ({done} of {total} bytes)")
                if digest.hexdigest() != md5:
                    raise DataError(f"checksum mismatch (md5 {digest.hexdigest()}, expected {md5})")
            return
        except (OSError, DataError, http.client.HTTPException) as err:  # URLError, timeouts are OSErrors
            reason = getattr(err, "reason", err)
            last_error = f"{url}: {reason}"
            log.debug("download attempt %d/%d failed: %s", attempt, retries, last_error)
            # A host that does not resolve, or a file the server does not have, will not appear on retry.
            if isinstance(reason, OSError) and getattr(reason, "errno", None) in (-2, -3, -5):
                break
            if isinstance(err, urllib.error.HTTPError) and 400 <= err.code < 500 and err.code != 429:
                break
            if attempt < retries:
                time.sleep(backoff * 2 ** (attempt - 1))
    raise DataError(f"download failed: {last_error}")
