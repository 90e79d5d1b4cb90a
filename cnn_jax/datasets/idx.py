"""Reading and writing IDX files (the MNIST format), gzipped or not, with integrity checks.

Format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of
dimensions, each dimension as a big-endian uint32, then the values in C order. Every way a
file can be wrong (bad gzip stream, bad magic, truncated or overlong data, wrong sha256)
raises DatasetIntegrityError naming the file, because a silently short training set is
worse than no training set.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from pathlib import Path

import numpy as np

from cnn_jax.datasets.core import DatasetIntegrityError

# IDX type code -> big-endian numpy dtype.
TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when its name ends in .gz."""
    raw = path.read_bytes()
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:  # BadGzipFile is an OSError
        raise DatasetIntegrityError(f"{path}: not a complete gzip file ({err})") from err


def check_sha256(data: bytes, expected: str, path: Path) -> None:
    """Raises DatasetIntegrityError unless sha256(data) == expected (hex)."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise DatasetIntegrityError(
            f"{path}: sha256 of the decompressed IDX data is {actual}, expected {expected}; "
            "the file is damaged or is not the official one"
        )


def parse_idx(data: bytes, path: Path) -> np.ndarray:
    """The array in IDX bytes `data` (read from `path`, named in errors), in native byte order."""
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise DatasetIntegrityError(f"{path}: not an IDX file (bad magic number {data[:4]!r})")
    code, ndim = data[2], data[3]
    if code not in TYPE_CODES:
        raise DatasetIntegrityError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetIntegrityError(f"{path}: truncated inside the IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
    dtype = TYPE_CODES[code]
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) < expected:
        raise DatasetIntegrityError(
            f"{path}: truncated: the header declares shape {list(shape)} "
            f"({expected} bytes) but the data has {len(data)} bytes"
        )
    if len(data) > expected:
        raise DatasetIntegrityError(
            f"{path}: {len(data) - expected} unexpected bytes after the declared "
            f"shape {list(shape)}"
        )
    values = np.frombuffer(data, dtype, math.prod(shape), offset=header)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path: str | Path, *, sha256: str | None = None) -> np.ndarray:
    """Reads an IDX file (.gz or plain); checks the decompressed bytes' sha256 when given."""
    path = Path(path)
    data = read_bytes(path)
    if sha256 is not None:
        check_sha256(data, sha256, path)
    return parse_idx(data, path)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of `array` (its dtype must be one of TYPE_CODES)."""
    for code, dtype in TYPE_CODES.items():
        if array.dtype.newbyteorder("=") == dtype.newbyteorder("="):
            header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
            return header + np.ascontiguousarray(array, dtype).tobytes()
    raise ValueError(f"dtype {array.dtype} has no IDX type code")


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Writes `array` as an IDX file, gzipped (reproducibly: mtime 0) when `path` ends in .gz."""
    path = Path(path)
    data = encode_idx(array)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
