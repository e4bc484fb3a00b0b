"""Dataset sources: downloads against a real local HTTP server, and the resolution order."""

from __future__ import annotations

import hashlib
import http.server
import io
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from dlrl.data import sources
from dlrl.data.download import Progress, download_file
from dlrl.data.idx import write_idx
from dlrl.data.sources import DatasetSpec, fetch, resolve
from dlrl.errors import DataError

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


@pytest.fixture
def server() -> Iterator[Callable[[Handler], str]]:
    """Start an HTTP server on 127.0.0.1 (free port) whose GET is ``handle``; yields a starter -> base URL."""
    servers = []

    def start(handle: Handler) -> str:
        class RequestHandler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                handle(self)

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _serve(files: dict[str, bytes], fail_first: int = 0, calls: list[str] | None = None) -> Handler:
    """Serve ``files`` by name; the first ``fail_first`` requests get a 500."""
    seen = calls if calls is not None else []

    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        seen.append(request.path)
        name = request.path.lstrip("/")
        if len(seen) <= fail_first:
            request.send_error(500, "try again")
            return
        if name not in files:
            request.send_error(404)
            return
        request.send_response(200)
        request.send_header("Content-Length", str(len(files[name])))
        request.end_headers()
        request.wfile.write(files[name])

    return handle


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


PAYLOAD = bytes(range(256)) * 1000  # 256 kB: several read chunks


def test_download_success_with_progress(server, tmp_path: Path) -> None:
    base = server(_serve({"f.gz": PAYLOAD}))
    stream = io.StringIO()
    download_file(base + "f.gz", tmp_path / "f.gz", _md5(PAYLOAD), backoff=0, stream=stream)
    assert (tmp_path / "f.gz").read_bytes() == PAYLOAD
    assert list(tmp_path.iterdir()) == [tmp_path / "f.gz"]  # no temp file left
    text = stream.getvalue()
    assert "f.gz" in text and "100%" in text


def test_progress_goes_to_stderr_by_default(server, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = server(_serve({"f.gz": PAYLOAD}))
    download_file(base + "f.gz", tmp_path / "f.gz", _md5(PAYLOAD), backoff=0)
    captured = capsys.readouterr()
    assert "f.gz" in captured.err and "100%" in captured.err
    assert captured.out == ""


def test_wrong_file_is_refused_and_not_placed(server, tmp_path: Path) -> None:
    base = server(_serve({"f.gz": b"not the file you wanted" * 100}))
    with pytest.raises(DataError, match="checksum mismatch"):
        download_file(
            base + "f.gz", tmp_path / "f.gz", _md5(PAYLOAD), retries=2, backoff=0, show_progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_retries_after_server_errors(server, tmp_path: Path) -> None:
    calls: list[str] = []
    base = server(_serve({"f.gz": PAYLOAD}, fail_first=2, calls=calls))
    download_file(base + "f.gz", tmp_path / "f.gz", _md5(PAYLOAD), retries=3, backoff=0, show_progress=False)
    assert (tmp_path / "f.gz").read_bytes() == PAYLOAD
    assert len(calls) == 3


def test_gives_up_after_retries(server, tmp_path: Path) -> None:
    calls: list[str] = []
    base = server(_serve({"f.gz": PAYLOAD}, fail_first=10, calls=calls))
    with pytest.raises(DataError, match=r"download failed: .*f\.gz.*try again"):
        download_file(
            base + "f.gz", tmp_path / "f.gz", _md5(PAYLOAD), retries=3, backoff=0, show_progress=False
        )
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []


def test_not_found_is_not_retried(server, tmp_path: Path) -> None:
    calls: list[str] = []
    base = server(_serve({}, calls=calls))
    with pytest.raises(DataError, match="Not Found"):
        download_file(base + "f.gz", tmp_path / "f.gz", "0" * 32, retries=3, backoff=0, show_progress=False)
    assert len(calls) == 1


def test_truncated_response(server, tmp_path: Path) -> None:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Length", str(len(PAYLOAD)))
        request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(PAYLOAD[:1000])
        request.close_connection = True

    base = server(handle)
    with pytest.raises(DataError, match=r"incomplete download|IncompleteRead"):
        download_file(
            base + "f.gz", tmp_path / "f.gz", _md5(PAYLOAD), retries=2, backoff=0, show_progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="download failed"):
        download_file("http://127.0.0.1:9/f.gz", tmp_path / "f.gz", "0" * 32, retries=2, backoff=0, timeout=2)
    assert list(tmp_path.iterdir()) == []


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_without_tty_prints_about_every_tenth() -> None:
    stream = _Stream(tty=False)
    progress = Progress("train-images-idx3-ubyte.gz", 47_000_000, stream)
    for done in range(65536, 47_000_000, 65536):  # what a 47 MB download in 64 kB chunks reports
        progress.update(done)
    progress.update(47_000_000)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert 10 <= len(lines) <= 12
    assert "\r" not in stream.getvalue()
    assert lines[-1].endswith("(100%)")


def test_progress_on_tty_is_one_updating_line() -> None:
    stream = _Stream(tty=True)
    progress = Progress("f.gz", 47_000_000, stream)
    for done in range(65536, 47_000_000, 65536):
        progress.update(done)
    progress.update(47_000_000)
    progress.close()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("(100%)\n")
    assert 1 <= text.count("\r") < 100  # throttled redraws, not one per chunk


# --- fetch and resolve -------------------------------------------------------------------------------


def _fake_dataset(directory: Path, n: int = 12) -> dict[str, bytes]:
    """Write the four gzip IDX files of a tiny dataset into ``directory``; return name -> bytes."""
    rng = np.random.default_rng(1)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        "train-labels": rng.integers(0, 10, n, dtype=np.uint8),
        "test-images": rng.integers(0, 256, (n // 2, 28, 28), dtype=np.uint8),
        "test-labels": rng.integers(0, 10, n // 2, dtype=np.uint8),
    }
    out = {}
    for split, stem in sources.SPLIT_FILES.items():
        path = directory / f"{stem}.gz"
        write_idx(path, arrays[split])
        out[split] = path.read_bytes()
    return out


def _spec(blobs: dict[str, bytes], name: str = "fashion-mnist") -> DatasetSpec:
    return DatasetSpec(
        name=name,
        classes=tuple("0123456789"),
        mirrors=(),
        gz_md5={split: _md5(data) for split, data in blobs.items()},
    )


def test_fetch_from_mirror_override(server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blobs = _fake_dataset(tmp_path / "origin")
    served = {f"{stem}.gz": blobs[split] for split, stem in sources.SPLIT_FILES.items()}
    calls: list[str] = []
    base = server(_serve(served, calls=calls))
    spec = _spec(blobs)
    monkeypatch.setenv("DLRL_MIRROR_FASHION_MNIST", "http://127.0.0.1:9/dead " + base)
    assert sources.mirrors_for(spec) == ("http://127.0.0.1:9/dead/", base)
    target = fetch(spec, tmp_path / "dl", retries=1, backoff=0, show_progress=False)
    assert sorted(p.name for p in target.iterdir()) == sorted(served)
    assert len(calls) == 4
    fetch(spec, tmp_path / "dl", retries=1, backoff=0, show_progress=False)  # verified files are kept
    assert len(calls) == 4


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, env, cache, system = (tmp_path / n for n in ("explicit", "env", "cache", "system"))
    for d in (explicit, env, cache / "fashion-mnist", system):
        _fake_dataset(d)
    spec = DatasetSpec(
        "fashion-mnist",
        tuple("0123456789"),
        (),
        dict(sources.DATASETS["fashion-mnist"].gz_md5),
        system_dirs=(str(system),),
    )
    monkeypatch.setitem(sources.DATASETS, "fashion-mnist", spec)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache.parent))
    cache.rename(cache.parent / "dlrl")
    monkeypatch.setenv("DLRL_DATA_DIR", str(env))
    steps = [
        ("--data-dir", explicit),
        ("DLRL_DATA_DIR", env),
        ("user cache", tmp_path / "dlrl" / "fashion-mnist"),
        ("system copy", system),
    ]
    for origin, directory in steps:
        found = resolve("fashion-mnist", explicit if explicit.exists() else None, download=False)
        assert (found.origin, found.directory) == (origin, directory)
        assert not found.is_sample
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()
        if origin == "DLRL_DATA_DIR":
            monkeypatch.delenv("DLRL_DATA_DIR")
    with pytest.raises(DataError) as info:
        resolve("fashion-mnist", None, download=False)
    message = str(info.value)
    assert "\n" not in message
    assert "dlrl data fetch fashion-mnist" in message and "--data-dir" in message
    assert "dataset-fashion-mnist" in message


def test_data_dir_subfolder(tmp_path: Path) -> None:
    _fake_dataset(tmp_path / "d" / "mnist")
    found = resolve("mnist", tmp_path / "d", download=False)
    assert found.directory == tmp_path / "d" / "mnist" and found.origin == "--data-dir"


def test_mnist_falls_back_to_sample_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dlrl"):
        found = resolve("mnist", None, download=False)
    assert found.is_sample and found.origin == "shipped sample"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "\n" not in message and "dlrl data fetch mnist" in message and "--data-dir" in message


def test_downloads_disabled_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLRL_MIRROR_MNIST", "http://127.0.0.1:9/")
    monkeypatch.setenv("DLRL_NO_DOWNLOAD", "1")
    assert resolve("mnist", None, download=True).is_sample


def _listing(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def test_failed_download_falls_back_for_mnist_and_writes_nothing_into_the_data_dir(
    server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    monkeypatch.setenv("DLRL_MIRROR_MNIST", server(_serve({}, calls=calls)))
    monkeypatch.setenv("DLRL_NO_DOWNLOAD", "0")
    data_dir = tmp_path / "d"  # DLRL_DATA_DIR without mnist: searched, then the cache, then a download
    data_dir.mkdir()
    (data_dir / "fashion-mnist").mkdir()
    monkeypatch.setenv("DLRL_DATA_DIR", str(data_dir))
    with caplog.at_level(logging.WARNING, logger="dlrl"):
        found = resolve("mnist", None, download=True)
    assert found.is_sample and calls == ["/train-images-idx3-ubyte.gz"]
    assert _listing(data_dir) == ["fashion-mnist"]  # reading never creates anything in a data dir
    downloads = sources.cache_dir() / "mnist"  # downloads go to the cache
    assert not downloads.exists() or not list(downloads.iterdir())  # nothing half-downloaded left behind


def test_failed_download_is_tried_and_said_once_per_process(
    server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Offline, the first lookup tries each mirror once; later ones (the other sections of a 'dlrl run')
    neither try again nor repeat the download lines; the failure is one log line."""
    calls: list[str] = []
    mirrors = [server(_serve({}, calls=calls)), server(_serve({}, calls=calls))]
    monkeypatch.setenv("DLRL_MIRROR_MNIST", " ".join(mirrors))
    monkeypatch.setenv("DLRL_NO_DOWNLOAD", "0")
    with caplog.at_level(logging.DEBUG, logger="dlrl"):
        for _ in range(5):
            assert resolve("mnist", None, download=True).is_sample
    assert calls == ["/train-images-idx3-ubyte.gz"] * 2
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len([m for m in messages if m.startswith("downloading")]) == 2
    failures = [m for m in messages if "not trying again" in m]
    assert len(failures) == 1 and "\n" not in failures[0] and "Not Found" in failures[0]
    assert "mnist" in failures[0] and "train-images-idx3-ubyte.gz" in failures[0]
    # An explicit 'dlrl data fetch' still tries.
    with pytest.raises(DataError, match="Not Found"):
        fetch(sources.DATASETS["mnist"], sources.cache_dir() / "mnist", retries=1, show_progress=False)
    assert len(calls) == 4


@pytest.mark.parametrize("origin", ["--data-dir", "DLRL_DATA_DIR"])
@pytest.mark.parametrize("subfolder", [False, True])
def test_incomplete_explicit_data_dir_is_an_error(
    server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, origin: str, subfolder: bool
) -> None:
    """Only the train files: refused naming the directory and the missing files; no other data is used,
    no download is tried and nothing is created in the directory."""
    data_dir = tmp_path / "d"
    directory = data_dir / "mnist" if subfolder else data_dir
    _fake_dataset(directory)
    for split in ("test-images", "test-labels"):
        (directory / f"{sources.SPLIT_FILES[split]}.gz").unlink()
    calls: list[str] = []
    monkeypatch.setenv("DLRL_MIRROR_MNIST", server(_serve({}, calls=calls)))
    monkeypatch.setenv("DLRL_NO_DOWNLOAD", "0")
    _fake_dataset(sources.cache_dir() / "mnist")  # a complete copy elsewhere must not stand in
    if origin == "DLRL_DATA_DIR":
        monkeypatch.setenv("DLRL_DATA_DIR", str(data_dir))
    before = _listing(data_dir)
    with pytest.raises(DataError) as info:
        resolve("mnist", data_dir if origin == "--data-dir" else None, download=True)
    message = str(info.value)
    assert "\n" not in message and origin in message and str(directory) in message
    assert "incomplete mnist" in message
    assert "t10k-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "train-images" not in message.split("missing")[1].split(")")[0]
    assert calls == [] and _listing(data_dir) == before


def test_data_dir_without_the_dataset_is_an_error(tmp_path: Path) -> None:
    _fake_dataset(tmp_path / "d" / "fashion-mnist")
    _fake_dataset(sources.cache_dir() / "mnist")
    with pytest.raises(DataError) as info:
        resolve("mnist", tmp_path / "d", download=False)
    message = str(info.value)
    assert "\n" not in message and f"--data-dir {tmp_path / 'd'}" in message
    assert "no local copy of mnist" in message and "dlrl data fetch mnist --data-dir" in message


@pytest.mark.parametrize("origin", ["--data-dir", "DLRL_DATA_DIR"])
def test_data_dir_that_is_not_a_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, origin: str
) -> None:
    (tmp_path / "file").write_text("not a directory")
    cases = ((tmp_path / "missing", "no such directory"), (tmp_path / "file", "not a directory"))
    for path, problem in cases:
        if origin == "DLRL_DATA_DIR":
            monkeypatch.setenv("DLRL_DATA_DIR", str(path))
        with pytest.raises(DataError) as info:
            resolve("mnist", path if origin == "--data-dir" else None, download=False)
        message = str(info.value)
        assert "\n" not in message and f"{origin} {path}: {problem}" in message
    assert not (tmp_path / "missing").exists()


def test_partial_copy_in_the_cache_is_skipped_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    _fake_dataset(sources.cache_dir() / "mnist")
    (sources.cache_dir() / "mnist" / "train-labels-idx1-ubyte.gz").unlink()
    with caplog.at_level(logging.WARNING, logger="dlrl"):
        found = resolve("mnist", None, download=False)
    assert found.is_sample
    assert any("incomplete mnist copy" in r.getMessage() for r in caplog.records)


def test_unknown_dataset() -> None:
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        resolve("cifar")
