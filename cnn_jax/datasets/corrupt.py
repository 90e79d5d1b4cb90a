"""Zhang et al. 2017's corrupted data, applied at load time (no prepared copy per corruption).

`corrupt='random_labels'`: every training label is replaced by a class drawn uniformly at random
(Zhang et al. 2017, Sec. 2: "all the labels are replaced with random ones"); validation and test
keep their true labels, so test accuracy still measures generalisation to the true task.
`corrupt='shuffled_pixels'`: one random permutation of the pixel positions (channels move
together) is applied to the images of every split, labels untouched; the paper applies "the same
permutation ... to all the images in both training and test set", since a net trained on
permuted images can only be tested on the same permutation. Both are deterministic from
`corrupt_seed` and drawn after `train_subset`, so a subset draw and its labels go together.
"""

from __future__ import annotations

import numpy as np

from cnn_jax.datasets.core import Split

KINDS = ("none", "random_labels", "shuffled_pixels")


def random_labels(train: Split, num_classes: int, seed: int) -> Split:
    """The training split with uniformly random labels in [0, num_classes)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=len(train)).astype(np.int32)
    return Split(train.images, labels)


def pixel_permutation(height: int, width: int, seed: int) -> np.ndarray:
    """A permutation of the height x width pixel positions (the same for every image)."""
    return np.random.default_rng(seed).permutation(height * width)


def shuffle_pixels(split: Split, permutation: np.ndarray) -> Split:
    """Every image of `split` with its pixel positions permuted by `permutation`."""
    n, h, w, c = split.images.shape
    flat = split.images.reshape(n, h * w, c)[:, permutation]
    return Split(np.ascontiguousarray(flat.reshape(n, h, w, c)), split.labels)


def apply(splits: dict[str, Split], kind: str, seed: int, num_classes: int) -> dict[str, Split]:
    """`splits` ('train', 'validation', 'test') corrupted as `kind` says (see the module)."""
    if kind not in KINDS:
        raise ValueError(f"dataset option 'corrupt': {kind!r}; allowed: {', '.join(KINDS)}")
    if kind == "random_labels":
        return {**splits, "train": random_labels(splits["train"], num_classes, seed)}
    if kind == "shuffled_pixels":
        h, w = splits["train"].images.shape[1:3]
        perm = pixel_permutation(h, w, seed)
        return {name: shuffle_pixels(split, perm) for name, split in splits.items()}
    return splits
