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
from typing import BinaryIO

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


# The largest IDX file this package reads: MNIST's and Fashion-MNIST's 60,000 training images
# of 28 x 28 bytes behind a 16-byte header. No file is decompressed or read past it, so a
# gzip bomb (a few kilobytes that inflate to gigabytes) costs no memory.
MAX_IDX_BYTES = 60_000 * 28 * 28 + 16
REFETCH = "delete it and rerun `cnn-jax-data` to get the official file"


def read_bytes(path: Path, *, limit: int = MAX_IDX_BYTES) -> bytes:
    """The file's IDX bytes, decompressed when its name ends in .gz. Decompression stops one
    byte past the size the IDX header declares, and neither may exceed `limit`: a larger
    file, a header declaring more, or a stream longer than its header says raises
    DatasetIntegrityError naming the file."""
    if path.suffix != ".gz":
        if path.stat().st_size > limit + 1:
            raise DatasetIntegrityError(
                f"{path}: {path.stat().st_size} bytes, more than any MNIST or Fashion-MNIST "
                f"file ({limit}); {REFETCH}"
            )
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as stream:
            return _read_bounded(stream, path, limit)
    except (EOFError, OSError, zlib.error) as err:  # BadGzipFile is an OSError
        raise DatasetIntegrityError(f"{path}: not a complete gzip file ({err}); {REFETCH}") from err


def _read_bounded(stream: BinaryIO, path: Path, limit: int) -> bytes:
    """The header, then at most the bytes it declares plus one, from a decompressing stream."""
    head = stream.read(4)
    if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in TYPE_CODES:
        return head  # parse_idx names what is wrong with it
    head += stream.read(4 * head[3])
    declared = declared_size(head)
    if declared is None:
        return head  # truncated inside the header: parse_idx says so
    if declared > limit:
        raise DatasetIntegrityError(
            f"{path}: its IDX header declares {declared} bytes, more than any MNIST or "
            f"Fashion-MNIST file ({limit}); {REFETCH}"
        )
    data = head + stream.read(declared - len(head) + 1)
    if len(data) > declared:
        raise DatasetIntegrityError(
            f"{path}: decompresses to more than the {declared} bytes its IDX header declares; "
            f"{REFETCH}"
        )
    return data


def declared_size(head: bytes) -> int | None:
    """The size in bytes (header included) that an IDX header declares; None when `head`
    is shorter than the header or its type code is unknown."""
    if len(head) < 4 or head[2] not in TYPE_CODES or len(head) < 4 + 4 * head[3]:
        return None
    shape = np.frombuffer(head, ">u4", head[3], offset=4)
    return 4 + 4 * head[3] + math.prod(int(d) for d in shape) * TYPE_CODES[head[2]].itemsize


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
            f"({expected} bytes) but the data has {len(data)} bytes; {REFETCH}"
        )
    if len(data) > expected:
        raise DatasetIntegrityError(
            f"{path}: {len(data) - expected} unexpected bytes after the declared "
            f"shape {list(shape)}; {REFETCH}"
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
