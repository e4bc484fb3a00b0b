"""The IDX reader on real files: round trips, and every kind of broken file gives a DataError naming it."""

from __future__ import annotations

import gzip
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from dlrl.data.idx import read_idx, read_images, read_labels, read_pair, write_idx
from dlrl.errors import DataError


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(7, 5, 4), dtype=np.uint8)


@pytest.fixture
def labels() -> np.ndarray:
    return np.array([0, 1, 2, 9, 3, 4, 5], dtype=np.uint8)


def _header(count: int, *dims: int) -> bytes:
    return struct.pack(">HBB", 0, 0x08, 1 + len(dims)) + struct.pack(f">{1 + len(dims)}I", count, *dims)


def _raises(path: Path, match: str, reader=read_idx) -> DataError:
    with pytest.raises(DataError, match=match) as info:
        reader(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip(tmp_path: Path, images: np.ndarray, name: str) -> None:
    path = tmp_path / name
    write_idx(path, images)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_images(path)
    assert back.dtype == np.uint8 and back.shape == (7, 5, 4)
    np.testing.assert_array_equal(back, images)


def test_labels_and_pair(tmp_path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    write_idx(tmp_path / "i.gz", images)
    write_idx(tmp_path / "l.gz", labels)
    x, y = read_pair(tmp_path / "i.gz", tmp_path / "l.gz")
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(x, images)


def test_gzip_detected_by_content_not_name(tmp_path: Path, images: np.ndarray) -> None:
    path = tmp_path / "plain-name"
    write_idx(path, images, compress=True)
    np.testing.assert_array_equal(read_idx(path), images)


def test_wrong_magic(tmp_path: Path, images: np.ndarray) -> None:
    path = tmp_path / "bad-magic"
    write_idx(path, images)
    raw = bytearray(path.read_bytes())
    raw[0:4] = b"PK\x03\x04"
    path.write_bytes(bytes(raw))
    _raises(path, "bad magic")


def test_truncated_gzip(tmp_path: Path, images: np.ndarray) -> None:
    path = tmp_path / "t.gz"
    write_idx(path, images)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    _raises(path, "truncated|corrupt")
    path.write_bytes(raw[:12])  # shorter than a gzip header plus trailer
    _raises(path, "truncated gzip")


def test_corrupt_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "c.gz"
    array = np.arange(2000, dtype=np.uint8).reshape(20, 10, 10)
    write_idx(path, array)
    raw = bytearray(path.read_bytes())
    for i in range(20, len(raw) - 8):  # garble the deflate stream, keep header and trailer
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))
    _raises(path, "corrupt|truncated")


def test_corrupt_gzip_crc(tmp_path: Path, images: np.ndarray) -> None:
    path = tmp_path / "crc.gz"
    write_idx(path, images)
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0xFF  # CRC32 in the trailer: only a full read notices
    path.write_bytes(bytes(raw))
    _raises(path, "corrupt")


@pytest.mark.parametrize("compress", [False, True])
def test_billion_images_refused_before_reading(tmp_path: Path, compress: bool) -> None:
    # A header claiming 10^9 28x28 images, then 5 MB of payload: refused from the header alone, fast,
    # without allocating a buffer for the claimed size nor reading the 5 MB that are there.
    raw = _header(1_000_000_000, 28, 28) + bytes(5_000_000)
    path = tmp_path / "huge"
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    tracemalloc.start()
    started = time.process_time()
    try:
        error = _raises(path, "too large")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.process_time() - started < 1.0
    assert peak < 1_000_000, peak
    assert "1000000000" in str(error)


def test_header_larger_than_file_refused_before_reading(tmp_path: Path) -> None:
    # Claims 100,000 images (78 MB, under the sanity limit): the file-size check refuses it without reading.
    path = tmp_path / "short"
    path.write_bytes(_header(100_000, 28, 28) + b"\x01" * 784)
    tracemalloc.start()
    try:
        _raises(path, "header claims shape .100000, 28, 28.")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 10_000_000, peak


def test_plain_file_with_extra_bytes(tmp_path: Path, images: np.ndarray) -> None:
    path = tmp_path / "extra"
    write_idx(path, images)
    path.write_bytes(path.read_bytes() + b"\x00\x00")
    _raises(path, "file holds")


def test_count_mismatch(tmp_path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    write_idx(tmp_path / "i", images)
    write_idx(tmp_path / "l", labels[:-1])
    with pytest.raises(DataError, match=r"7 images but .* 6 labels") as info:
        read_pair(tmp_path / "i", tmp_path / "l")
    assert str(tmp_path / "i") in str(info.value) and str(tmp_path / "l") in str(info.value)


def test_label_out_of_range(tmp_path: Path, labels: np.ndarray) -> None:
    path = tmp_path / "l.gz"
    bad = labels.copy()
    bad[3] = 10
    write_idx(path, bad)
    _raises(path, "label 10 out of range 0..9", reader=read_labels)


def test_images_file_given_as_labels_and_vice_versa(
    tmp_path: Path, images: np.ndarray, labels: np.ndarray
) -> None:
    write_idx(tmp_path / "i", images)
    write_idx(tmp_path / "l", labels)
    _raises(tmp_path / "i", "expected a 1-D label file", reader=read_labels)
    _raises(tmp_path / "l", "expected uint8 images", reader=read_images)


def test_zero_images(tmp_path: Path) -> None:
    path = tmp_path / "none"
    path.write_bytes(_header(0, 28, 28))
    _raises(path, "no images", reader=read_images)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gz"
    path.write_bytes(b"")
    _raises(path, "empty")


def test_header_only_fragment(tmp_path: Path) -> None:
    path = tmp_path / "frag"
    path.write_bytes(b"\x00\x00\x08")
    _raises(path, "too short")
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    _raises(path, "truncated IDX header")


def test_missing_file(tmp_path: Path) -> None:
    _raises(tmp_path / "nope.gz", "not found")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    _raises(tmp_path / "dir", "is a directory")


@pytest.mark.parametrize(
    "dims",
    [(0, 2**31, 2**31), (2**31, 2**31, 2**31), (2**32 - 1,) * 4, (0, 0, 2**32 - 1)],
    ids=["zero-times-huge", "overflows-int64", "largest", "zeros-and-largest"],
)
def test_a_header_whose_sizes_multiply_past_any_real_file_is_refused(tmp_path: Path, dims) -> None:
    """Found by tests/fuzz: sizes whose product overflows int64 (or is 0 beside sizes no array can have)
    matched an empty payload and ended in numpy's ValueError."""
    path = tmp_path / "huge"
    path.write_bytes(struct.pack(">HBB", 0, 0x0B, len(dims)) + struct.pack(f">{len(dims)}I", *dims))
    _raises(path, "too large to be real")
