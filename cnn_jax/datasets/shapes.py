"""Synthetic geometric shapes at random positions and sizes: a controlled toy dataset.

Every image is one bright shape on a black background, drawn from pixel-centre geometry
with numpy. Each split has its own random stream derived from (seed, split), so changing the
number of training images leaves the validation and test images unchanged. Labels are
balanced exactly (then shuffled).
"""

from __future__ import annotations

import numpy as np

from cnn_jax.datasets.kind import DatasetKind, int_at_least

CLASS_NAMES = ("square", "circle", "triangle", "cross", "plus", "ring")
SPLITS = ("train", "validation", "test")
MIN_IMAGE_SIZE = 12
RADIUS_RANGE = (0.15, 0.35)  # half the shape's extent, as a fraction of the image size
INTENSITY_RANGE = (128, 255)  # foreground grey level, drawn per image


def config_name(
    image_size: int, seed: int, num_train: int, num_validation: int, num_test: int
) -> str:
    """Name of the prepared variant, e.g. 'size32_seed0_n2000-500-500'."""
    return f"size{image_size}_seed{seed}_n{num_train}-{num_validation}-{num_test}"


def shape_mask(label: int, image_size: int, cy: float, cx: float, r: float) -> np.ndarray:
    """Boolean [S, S] mask of shape `CLASS_NAMES[label]` centred at (cy, cx), half-extent r."""
    y, x = np.mgrid[0:image_size, 0:image_size] + 0.5
    dy, dx = y - cy, x - cx
    inside_box = (np.abs(dx) <= r) & (np.abs(dy) <= r)
    stroke = max(0.75, r / 5)  # half the line width of cross, plus and ring
    name = CLASS_NAMES[label]
    if name == "square":
        return inside_box
    if name == "circle":
        return dx**2 + dy**2 <= r**2
    if name == "triangle":  # apex up, base at the bottom of the box
        return inside_box & (np.abs(dx) <= (dy + r) / 2)
    if name == "cross":
        near_diagonal = np.minimum(np.abs(dx - dy), np.abs(dx + dy)) / np.sqrt(2) <= stroke
        return inside_box & near_diagonal
    if name == "plus":
        return inside_box & ((np.abs(dx) <= stroke) | (np.abs(dy) <= stroke))
    if name == "ring":
        dist = np.sqrt(dx**2 + dy**2)
        return (dist <= r) & (dist >= r - 2 * stroke)
    raise ValueError(f"label: {label}; allowed: 0..{len(CLASS_NAMES) - 1}")


def draw_split(
    num_images: int, image_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`num_images` random shapes: uint8 [N, S, S, 1] and balanced int32 labels [N]."""
    labels = rng.permutation(np.arange(num_images) % len(CLASS_NAMES)).astype(np.int32)
    radii = rng.uniform(*RADIUS_RANGE, num_images) * image_size
    centres = rng.uniform(radii[:, None], image_size - radii[:, None], (num_images, 2))
    grey = rng.integers(INTENSITY_RANGE[0], INTENSITY_RANGE[1] + 1, num_images)
    images = np.zeros((num_images, image_size, image_size, 1), np.uint8)
    for i in range(num_images):
        mask = shape_mask(int(labels[i]), image_size, centres[i, 0], centres[i, 1], radii[i])
        images[i, mask, 0] = grey[i]
    return images, labels


def make_splits(
    image_size: int, seed: int, num_train: int, num_validation: int, num_test: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train' | 'validation' | 'test': (uint8 [N, S, S, 1], int32 [N])}, fixed by the args."""
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size: {image_size}; allowed: >= {MIN_IMAGE_SIZE}")
    sizes = (num_train, num_validation, num_test)
    return {
        name: draw_split(n, image_size, np.random.default_rng([seed, k]))
        for k, (name, n) in enumerate(zip(SPLITS, sizes))
    }


KIND = DatasetKind(
    name="shapes",
    description="Synthetic shapes at random positions and sizes.",
    class_names=CLASS_NAMES,
    options={
        "num_train": int_at_least(1, 2000),
        "num_validation": int_at_least(1, 500),
        "num_test": int_at_least(1, 500),
        "image_size": int_at_least(MIN_IMAGE_SIZE, 32),
        "seed": int_at_least(0, 0),
    },
    make_splits=make_splits,
    side="image_size",
    variant_name=config_name,
)
