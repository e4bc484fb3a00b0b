"""A validating reader of IDX files (the MNIST format), gzip-compressed or plain.

Everything the header claims is checked against the file before any large allocation:
magic, type code, dimensions, and payload size (for gzip, against the size in its trailer).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from dlrl.errors import DataError

# IDX type codes -> big-endian dtypes
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_PAYLOAD_BYTES = 2**31  # far above any MNIST-family file; a header claiming more is corrupt
_GZIP_MAGIC = b"\x1f\x8b"


def _header(path: Path, raw: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """Parse and check the header; return (dtype, shape, header length)."""
    if len(raw) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    zero, type_code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or type_code not in _DTYPES or not 1 <= ndim <= 4:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    return _DTYPES[type_code], tuple(shape), header_len


def _gzip_size(path: Path) -> int:
    """Uncompressed size (mod 2**32) stored in the gzip trailer."""
    with path.open("rb") as handle:
        handle.seek(-4, os.SEEK_END)
        return struct.unpack("<I", handle.read(4))[0]


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file into a numpy array of its declared shape (native byte order)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            is_gzip = handle.read(2) == _GZIP_MAGIC
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected an IDX file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    if size == 0:
        raise DataError(f"{path}: file is empty")
    if is_gzip and size < 18:  # 10-byte gzip header + 8-byte trailer
        raise DataError(f"{path}: truncated gzip file ({size} bytes)")
    opener = gzip.open if is_gzip else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4 + 4 * 4)  # the longest header we accept (4 dimensions)
            dtype, shape, header_len = _header(path, head)
            count = math.prod(shape)  # Python ints: a product of four 32-bit sizes cannot overflow
            payload = count * dtype.itemsize
            # Both checks below happen before the payload is read or any buffer of its size allocated. The
            # sizes other than 0 count too: numpy cannot shape even an empty array as (0, 2**31, 2**31).
            if math.prod(d for d in shape if d) * dtype.itemsize > MAX_PAYLOAD_BYTES:
                size = f" ({payload} bytes)" if payload else ""
                raise DataError(f"{path}: header claims shape {shape}{size}, too large to be real")
            total = header_len + payload
            stored = _gzip_size(path) if is_gzip else size
            if stored != total % 2**32:
                holds = "gzip trailer records" if is_gzip else "file holds"
                raise DataError(
                    f"{path}: header claims shape {shape} ({total} bytes) but the {holds} {stored} bytes "
                    "(truncated or corrupt)"
                )
            data = head[header_len:] + handle.read(max(0, payload - (len(head) - header_len)))
            # Reading past the end also makes gzip check the CRC of the whole stream.
            if len(data) != payload or handle.read(1):
                raise DataError(f"{path}: payload is {len(data)} bytes, header says {payload}")
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataError(f"{path}: corrupt or truncated gzip data ({err})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def read_images(path: str | Path) -> np.ndarray:
    """Images as uint8 (N, H, W)."""
    array = read_idx(path)
    if array.ndim != 3 or array.dtype != np.uint8:
        raise DataError(
            f"{Path(path)}: expected uint8 images of shape (N, H, W), got {array.dtype} {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0 or array.shape[2] == 0:
        raise DataError(f"{Path(path)}: holds no images (shape {array.shape})")
    return array


def read_labels(path: str | Path, num_classes: int = 10) -> np.ndarray:
    """Labels as int64 (N,), each in [0, num_classes)."""
    array = read_idx(path)
    if array.ndim != 1:
        raise DataError(f"{Path(path)}: expected a 1-D label file, got shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        bad = int(array[(array < 0) | (array >= num_classes)][0])
        raise DataError(f"{Path(path)}: label {bad} out of range 0..{num_classes - 1}")
    return array.astype(np.int64)


def read_pair(
    images_path: str | Path, labels_path: str | Path, num_classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels, checked to agree in count."""
    images = read_images(images_path)
    labels = read_labels(labels_path, num_classes)
    if len(images) != len(labels):
        raise DataError(
            f"{Path(images_path)}: {len(images)} images but {Path(labels_path)} has {len(labels)} labels"
        )
    return images, labels


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write an IDX file (uint8 only); gzip when the name ends in .gz. Used by tests and tools."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = (
        struct.pack(">HBB", 0, 0x08, array.ndim)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )
    if compress if compress is not None else path.suffix == ".gz":
        raw = gzip.compress(raw, mtime=0)
    path.write_bytes(raw)
