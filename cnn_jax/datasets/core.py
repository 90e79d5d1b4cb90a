"""The dataset types every loader returns, the two errors, and the default data directory.

A dataset is held in memory as uint8 images [N, H, W, C] and int32 labels [N]: the largest
supported one (MNIST) is 55 MB that way, and the input pipeline batches straight from it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

DATA_DIR_ENV = "CNN_JAX_DATA_DIR"
DEFAULT_DATA_DIR = "~/tensorflow_datasets"


class DatasetNotFoundError(FileNotFoundError):
    """The data is not here; the message says where it was looked for and how to get it."""


class DatasetIntegrityError(ValueError):
    """A data file is corrupt, truncated or not the expected one; the message names the file."""


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One split: `images` uint8 [N, H, W, C] and `labels` int32 [N]."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images: {self.images.dtype}{list(self.images.shape)}; allowed: uint8 [N, H, W, C]"
            )
        if self.labels.dtype != np.int32 or self.labels.shape != self.images.shape[:1]:
            raise ValueError(
                f"labels: {self.labels.dtype}{list(self.labels.shape)}; "
                f"allowed: int32 [{len(self.images)}]"
            )

    def __len__(self) -> int:
        return len(self.labels)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Three splits plus what a model and the normalisation step need to know about them.

    `mean` and `std` are per channel, of the training images scaled to [0, 1].
    """

    name: str
    train: Split
    validation: Split
    test: Split
    num_classes: int
    image_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What `check` reports without loading any images: enough to build and trace a model."""

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...]


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """`data_dir`, else $CNN_JAX_DATA_DIR, else ~/tensorflow_datasets (the TFDS default)."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(chosen).expanduser()


def channel_stats(
    images: np.ndarray, chunk: int = 4096
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images [N, H, W, C] scaled to [0, 1].

    Sums of pixel values and their squares are exact in float64 (they stay below 2**53), and
    chunking avoids a float copy of the whole split (345 MB for MNIST).
    """
    channels = images.shape[-1]
    total, total_sq = np.zeros(channels), np.zeros(channels)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].reshape(-1, channels).astype(np.float64)
        total += x.sum(axis=0)
        total_sq += np.einsum("ij,ij->j", x, x)
    count = max(1, images.size // channels)
    mean = total / count
    var = np.maximum(total_sq / count - mean**2, 0.0)
    return tuple(float(m) / 255 for m in mean), tuple(float(v) ** 0.5 / 255 for v in var)
