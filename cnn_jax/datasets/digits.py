"""The 1,797 8x8 handwritten digits shipped with scikit-learn (UCI optdigits), on a canvas.

Real data that installs with pip, so the default experiments run offline in seconds. Each
digit can be upscaled (nearest neighbour) and placed in the centre or at a random spot of
a larger blank canvas, which leaves room for translation experiments. The split into
train/validation/test is fixed and does not depend on the canvas options, so the same
digits are test digits under every placement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cnn_jax.datasets.kind import DatasetKind, choice, int_at_least

DIGIT_SIZE = 8
NUM_IMAGES = 1797
CLASS_NAMES = tuple(str(d) for d in range(10))
POSITIONS = ("center", "random")
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
SPLIT_SEED = 0
POSITION_SEED = 0


def config_name(canvas_size: int, digit_scale: int, position: str) -> str:
    """Name of the prepared variant, e.g. 'canvas16_scale1_center'."""
    return f"canvas{canvas_size}_scale{digit_scale}_{position}"


def raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 digits as uint8 [1797, 8, 8] (pixel values 0..16 scaled to 0..255), int32 labels."""
    from sklearn.datasets import load_digits  # deferred: scikit-learn takes ~1 s to import

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    return images, bunch.target.astype(np.int32)


def place(images: np.ndarray, canvas_size: int, digit_scale: int, position: str) -> np.ndarray:
    """Upscales [N, 8, 8] digits by `digit_scale` and pastes them on a canvas: [N, C, C, 1].

    'center' puts every digit in the middle (rounded to the top left); 'random' draws each
    digit's top-left corner uniformly from a fixed seed, so the canvas is the same every time.
    """
    size = DIGIT_SIZE * digit_scale
    if canvas_size < size:
        raise ValueError(
            f"canvas_size: {canvas_size} < 8 * digit_scale = {size}; allowed: >= {size}"
        )
    if position not in POSITIONS:
        raise ValueError(f"position: {position!r}; allowed: {', '.join(POSITIONS)}")
    scaled = images.repeat(digit_scale, axis=1).repeat(digit_scale, axis=2)
    n = len(images)
    if position == "center":
        offsets = np.full((n, 2), (canvas_size - size) // 2)
    else:
        offsets = np.random.default_rng(POSITION_SEED).integers(0, canvas_size - size + 1, (n, 2))
    canvas = np.zeros((n, canvas_size, canvas_size, 1), np.uint8)
    for i, (top, left) in enumerate(offsets):
        canvas[i, top : top + size, left : left + size, 0] = scaled[i]
    return canvas


def split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
    """A stratified, fixed split: per class 20% test, 10% validation, the rest train.

    Within each split the order is that of one fixed permutation (seed 0), so classes are
    interleaved and the first n training images are a fair small-data subset.
    """
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    which = np.zeros(len(labels), np.int8)  # 0 train, 1 validation, 2 test
    for c in np.unique(labels):
        members = order[labels[order] == c]
        n_test = round(len(members) * TEST_FRACTION)
        n_val = round(len(members) * VALIDATION_FRACTION)
        which[members[:n_test]] = 2
        which[members[n_test : n_test + n_val]] = 1
    return {
        name: order[which[order] == k] for k, name in enumerate(("train", "validation", "test"))
    }


def make_splits(
    canvas_size: int, digit_scale: int, position: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train' | 'validation' | 'test': (uint8 [N, C, C, 1], int32 [N])}."""
    images, labels = raw_digits()
    canvas = place(images, canvas_size, digit_scale, position)
    return {name: (canvas[idx], labels[idx]) for name, idx in split_indices(labels).items()}


def check_options(options: Mapping[str, Any]) -> None:
    """The canvas must hold the scaled digit: a check across two options."""
    if options["canvas_size"] < DIGIT_SIZE * options["digit_scale"]:
        raise ValueError(
            f"dataset option 'canvas_size': {options['canvas_size']} for 'digits'; allowed: "
            f">= 8 * digit_scale = {DIGIT_SIZE * options['digit_scale']}"
        )


KIND = DatasetKind(
    name="digits",
    description="scikit-learn's 8x8 digits (UCI optdigits) placed on a canvas.",
    class_names=CLASS_NAMES,
    options={
        "canvas_size": int_at_least(DIGIT_SIZE, 16),
        "digit_scale": int_at_least(1, 1),
        "position": choice("center", POSITIONS),
    },
    make_splits=make_splits,
    side="canvas_size",
    variant_name=config_name,
    check_options=check_options,
)
