"""The built-in datasets, one line each: names, options, TFDS builders and `load` follow.

A dataset module declares its `DatasetKind` (`cnn_jax.datasets.kind`) at its end; listing it
here makes it loadable. The list sits below `options` and `api`, which both derive from it.
"""

from __future__ import annotations

from cnn_jax.datasets import digits, mnist, redgreen, shapes
from cnn_jax.datasets.kind import DatasetKind

KINDS: tuple[DatasetKind, ...] = (
    digits.KIND,
    shapes.KIND,
    redgreen.KIND,
    mnist.MNIST_KIND,
    mnist.FASHION_MNIST_KIND,
)
BY_NAME: dict[str, DatasetKind] = {kind.name: kind for kind in KINDS}
