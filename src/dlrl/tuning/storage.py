"""Where Ray Tune keeps a search's trials and checkpoints, and bringing them home.

By default the run directory itself (RUN/search/): right on one machine, or on a cluster whose nodes all run
on it. Otherwise ``--storage``: a directory every node shares (NFS, ...) or any URI pyarrow's filesystems
accept (s3://bucket/path, gs://..., file:///path); the search is STORAGE/<run directory name>/ there and is
copied into RUN/search/ after the search (also after Ctrl-C), so the run directory is complete on the
machine that started it either way.

pyarrow (a Ray Tune dependency) is imported inside functions: ``dlrl --help`` imports this module's callers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from dlrl.errors import ConfigError


def is_uri(storage: str) -> bool:
    return "://" in storage


def storage_root(storage: str) -> str:
    """Ray's ``storage_path``: a URI as given, a local path made absolute."""
    return storage if is_uri(storage) else str(Path(storage).expanduser().resolve())


def _filesystem(storage: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path on it) of a storage URI or local path."""
    import pyarrow.fs  # heavy: only when a search with --storage runs

    if not is_uri(storage):
        return pyarrow.fs.LocalFileSystem(), storage_root(storage)
    try:
        return pyarrow.fs.FileSystem.from_uri(storage)
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError / ValueError by scheme
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"--storage {storage}: not a URI pyarrow can open ({first})") from None


def check_storage(storage: str) -> None:
    """Before Ray starts: the directory exists and takes a file (written and removed again), or the URI's
    filesystem answers and takes one. Nothing is left there."""
    if not is_uri(storage):
        path = Path(storage).expanduser()
        if not path.exists():
            raise ConfigError(f"--storage {storage}: no such directory")
        if not path.is_dir():
            raise ConfigError(f"--storage {storage}: not a directory")
        try:
            handle, probe = tempfile.mkstemp(prefix=".dlrl-storage-probe-", dir=path)
        except OSError as err:
            raise ConfigError(f"--storage {storage}: not writable ({err.strerror or err})") from None
        os.close(handle)
        os.unlink(probe)
        return
    import pyarrow.fs  # heavy: only when a search with --storage runs

    filesystem, root = _filesystem(storage)
    try:
        info = filesystem.get_file_info(root)
        if isinstance(filesystem, pyarrow.fs.LocalFileSystem) and info.type != pyarrow.fs.FileType.Directory:
            raise ConfigError(f"--storage {storage}: no such directory")
        probe = f"{root.rstrip('/')}/.dlrl-storage-probe-{uuid.uuid4().hex}"
        with filesystem.open_output_stream(probe) as stream:
            stream.write(b"dlrl")
        filesystem.delete_file(probe)
    except ConfigError:
        raise
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"--storage {storage}: cannot write there ({first})") from None


def holds(storage: str, name: str) -> bool:
    """Whether STORAGE/<name> exists (an earlier search of that name)."""
    import pyarrow.fs  # heavy: only when a search with --storage runs

    filesystem, root = _filesystem(storage)
    return filesystem.get_file_info(f"{root.rstrip('/')}/{name}").type != pyarrow.fs.FileType.NotFound


def copy_home(storage: str, name: str, destination: Path) -> None:
    """Replace ``destination`` with a copy of STORAGE/<name> (results, checkpoints, Tune's state)."""
    import pyarrow.fs  # heavy: only when a search with --storage runs

    filesystem, root = _filesystem(storage)
    source = f"{root.rstrip('/')}/{name}"
    if filesystem.get_file_info(source).type == pyarrow.fs.FileType.NotFound:
        return  # the search never started there
    staging = destination.with_name(destination.name + ".copying")
    shutil.rmtree(staging, ignore_errors=True)
    pyarrow.fs.copy_files(
        source,
        str(staging),
        source_filesystem=filesystem,
        destination_filesystem=pyarrow.fs.LocalFileSystem(),
    )
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(destination)
    staging.rename(destination)  # a killed copy leaves the staging directory, never half of RUN/search
