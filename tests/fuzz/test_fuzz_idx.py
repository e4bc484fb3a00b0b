"""IDX files as they may arrive: headers with any magic, type code, rank and sizes, payloads too short or
too long, gzip streams cut or corrupted anywhere, random bytes; and data directories holding such files.
Every one reads as an array of the shape its header claims, or is one DataError line."""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
from fuzz_support import fuzz_settings, outcome, snapshot, tried, written_outside
from hypothesis import given
from hypothesis import strategies as st

from dlrl.config import DataConfig
from dlrl.data.idx import MAX_PAYLOAD_BYTES, read_idx, read_images, read_labels
from dlrl.data.images import load_images
from dlrl.errors import DataError

TYPE_CODES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]
ITEM_SIZES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


@st.composite
def idx_bytes(draw: st.DrawFn) -> bytes:
    """An IDX file: mostly well-formed, with any part of it possibly wrong."""
    magic = draw(st.sampled_from([b"\x00\x00", b"\x00\x00", b"\x00\x00", b"\x00\x01", b"\xff\xff"]))
    type_code = draw(st.sampled_from([*TYPE_CODES, *TYPE_CODES, 0x00, 0x0A, 0xFF]))
    ndim = draw(st.sampled_from([1, 2, 3, 3, 4, 0, 5, 255]))
    dims = draw(
        st.lists(
            st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1), st.sampled_from([2**31, 2**32 - 1])),
            min_size=min(ndim, 6),
            max_size=min(ndim, 6),
        )
    )
    header = magic + bytes([type_code, ndim]) + b"".join(struct.pack(">I", d) for d in dims)
    count = int(np.prod(dims, dtype=object)) if dims else 0
    size = count * ITEM_SIZES.get(type_code, 1)
    declared = size if size <= 4096 else draw(st.integers(0, 64))
    payload = draw(st.binary(min_size=min(declared, 4096), max_size=min(declared, 4096)))
    # cut it short, or add to it, or leave it as the header says
    change = draw(st.sampled_from(["none", "none", "cut", "extend"]))
    raw = header + payload
    if change == "cut" and raw:
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif change == "extend":
        raw += draw(st.binary(min_size=1, max_size=16))
    return raw


@st.composite
def file_bytes(draw: st.DrawFn) -> bytes:
    """IDX bytes as they are, gzip-compressed (possibly cut or with flipped bytes), or random bytes."""
    kind = draw(st.sampled_from(["plain", "gzip", "gzip-cut", "gzip-flipped", "random", "gzip-random"]))
    if kind == "random":
        return draw(st.binary(max_size=200))
    if kind == "gzip-random":
        return b"\x1f\x8b" + draw(st.binary(max_size=200))
    raw = draw(idx_bytes())
    if kind == "plain":
        return raw
    packed = bytearray(gzip.compress(raw, mtime=0))
    if kind == "gzip-cut":
        return bytes(packed[: draw(st.integers(0, len(packed) - 1))])
    if kind == "gzip-flipped":
        for _ in range(draw(st.integers(1, 4))):
            index = draw(st.integers(0, len(packed) - 1))
            packed[index] ^= draw(st.integers(1, 255))
    return bytes(packed)


def _check_array(array: np.ndarray, raw: bytes) -> None:
    """A successful read is what the header claims: rank, sizes, and never more bytes than allowed."""
    assert 1 <= array.ndim <= 4
    assert array.nbytes <= MAX_PAYLOAD_BYTES
    assert array.dtype.isnative


@fuzz_settings(120)
@given(content=file_bytes(), suffix=st.sampled_from(["", ".gz"]))
def test_any_idx_file_reads_or_is_one_data_error(content: bytes, suffix: str) -> None:
    tried("idx file")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"file-idx3-ubyte{suffix}"
        path.write_bytes(content)
        for reader, read in (("idx", read_idx), ("idx images", read_images), ("idx labels", read_labels)):
            result = outcome(reader, lambda read=read: read(path))
            if isinstance(result, DataError):
                assert str(path) in str(result)
            else:
                _check_array(result, content)


def _write_split(directory: Path, stem: str, array: np.ndarray | bytes, compress: bool) -> None:
    if isinstance(array, bytes):
        raw = array
    else:
        raw = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
        raw += array.astype(np.uint8).tobytes()
    name = f"{stem}.gz" if compress else stem
    (directory / name).write_bytes(gzip.compress(raw, mtime=0) if compress else raw)


@st.composite
def dataset_dir(draw: st.DrawFn) -> dict[str, np.ndarray | bytes]:
    """The four files of an MNIST-like dataset: consistent, or with counts, sizes, labels or a file off."""
    height, width = draw(st.sampled_from([(28, 28), (28, 28), (5, 7), (1, 1), (28, 27)]))
    n_train, n_test = draw(st.integers(0, 40)), draw(st.integers(0, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    files: dict[str, np.ndarray | bytes] = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, height, width)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, height, width)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for _ in range(draw(st.integers(0, 2))):
        stem = draw(st.sampled_from(sorted(files)))
        files[stem] = draw(
            st.one_of(
                idx_bytes(),
                st.just(rng.integers(0, 256, (n_train + 1, height, width))),  # one image too many
                st.just(rng.integers(10, 256, max(n_test, 1))),  # labels out of range
                st.just(rng.integers(0, 10, (max(n_test, 1), 2))),  # labels of rank 2
            )
        )
    return files


@fuzz_settings(40)
@given(
    files=dataset_dir(),
    compress=st.booleans(),
    val_size=st.integers(0, 50),
    limit=st.none() | st.integers(1, 30),
)
def test_any_data_dir_loads_or_is_one_data_error_and_is_never_written(
    files: dict[str, np.ndarray | bytes], compress: bool, val_size: int, limit: int | None
) -> None:
    tried("idx data dir")
    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory) / "data"
        data_dir.mkdir()
        for stem, array in files.items():
            _write_split(data_dir, stem, array, compress)
        before = snapshot([Path(directory)])
        cfg = DataConfig(data_dir=str(data_dir), val_size=val_size, limit=limit, download=False)
        result = outcome("data dir", lambda: load_images(cfg))
        assert not written_outside(before, snapshot([Path(directory)]), allowed=Path(directory) / "none")
        if not isinstance(result, DataError):
            assert len(result.train_x) > 0 and result.train_x.shape[1:] == result.test_x.shape[1:]
            assert int(result.train_y.max()) < 10
