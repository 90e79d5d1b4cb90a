"""Datasets as in-memory uint8 splits, prepared once through TFDS (no TensorFlow needed).

    from cnn_jax import datasets
    ds = datasets.load("digits", canvas_size=28)
    ds.train.images  # uint8 [N, 28, 28, 1]; ds.train.labels: int32 [N]

Built in: see `available()`. Any other name is a TFDS dataset already prepared (as
array_record) in the data dir. The README's Datasets section describes each one and how to get it.
"""

from cnn_jax.datasets.api import NAMES, available, check, load
from cnn_jax.datasets.core import (
    Dataset,
    DatasetIntegrityError,
    DatasetNotFoundError,
    DatasetSpec,
    Split,
    resolve_data_dir,
)

__all__ = [
    "NAMES",
    "Dataset",
    "DatasetIntegrityError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "Split",
    "available",
    "check",
    "load",
    "resolve_data_dir",
]
