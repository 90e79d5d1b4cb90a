"""Kayhan & van Gemert 2020's red-green absolute-position dataset, generated with numpy.

"On Translation Invariance in CNNs: Convolutional Layers Can Exploit Absolute Spatial
Location" (CVPR 2020), Exp. 2 (repo oskyhn/CNNs-Without-Borders, red-green utils): 32x32 RGB
images with one 4x4 red and one 4x4 green box on black. Class 0: red left of green; class 1:
green left of red. The left box's x is in [0, (32 - 4) / 2 - 4), the right box's x at least
5 pixels further right; class 0 boxes sit near y = 7, class 1 near y = 23 (each box's y drawn
independently in base + [-4, 3], the paper's fluctuation 28/6 truncated). So the class is
also told by height, and a net that reads absolute position can take that shortcut.

The 'dissimilar' test set is the 'similar' one with the heights swapped (class 0 boxes moved
16 pixels down, class 1 boxes 16 up), exactly as the reference code derives it: the relative
order (the real class cue) is kept, the height cue now points to the other class. Each split
has its own random stream from (seed, split); labels alternate 0, 1 as in the reference.
"""

from __future__ import annotations

import numpy as np

from cnn_jax.datasets.kind import DatasetKind, choice, int_at_least

CLASS_NAMES = ("red_left", "green_left")
SPLITS = ("train", "validation", "test")
TEST_SETS = ("similar", "dissimilar")
IMAGE_SIZE, BOX, BASE_Y, SWAP = 32, 4, (7, 23), 16
_FLUCTUATION = (-4, 4)  # randint(-28/6, 28/6) in the reference: offsets -4..3


def config_name(seed: int, num_train: int, num_validation: int, num_test: int, test_set: str):
    """Name of the prepared variant, e.g. 'seed0_n2000-1000-1000_similar'."""
    return f"seed{seed}_n{num_train}-{num_validation}-{num_test}_{test_set}"


def _boxes(num_images: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels [N] (0, 1, 0, ...) and box corners [N, 2 boxes (left, right), 2 (y, x)]."""
    labels = (np.arange(num_images) % 2).astype(np.int32)
    free = IMAGE_SIZE - BOX
    corners = np.zeros((num_images, 2, 2), np.int64)
    for i in range(num_images):
        x_left = rng.integers(0, free // 2 - BOX)
        x_right = rng.integers(x_left + BOX + 1, free)  # |dx| >= box + 1, as the reference
        ys = BASE_Y[labels[i]] + rng.integers(*_FLUCTUATION, size=2)
        corners[i] = [[ys[0], x_left], [ys[1], x_right]]
    return labels, corners


def render(labels: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """uint8 [N, 32, 32, 3]: the left box red (class 0) or green (class 1), the other box the
    other colour, each a BOX x BOX square of 255 at its corner."""
    images = np.zeros((len(labels), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    for i, label in enumerate(labels):
        left_channel = 0 if label == 0 else 1  # red = channel 0, green = channel 1
        for box, channel in zip(corners[i], (left_channel, 1 - left_channel)):
            y, x = box
            images[i, y : y + BOX, x : x + BOX, channel] = 255
    return images


def swap_heights(labels: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The dissimilar set's corners: class 0 boxes 16 pixels down, class 1 boxes 16 up."""
    out = corners.copy()
    out[:, :, 0] += np.where(labels == 0, SWAP, -SWAP)[:, None]
    return out


def make_splits(
    seed: int, num_train: int, num_validation: int, num_test: int, test_set: str = "similar"
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train' | 'validation' | 'test': (uint8 [N, 32, 32, 3], int32 [N])}; 'test' is the
    similar set or, with test_set='dissimilar', the same boxes at swapped heights."""
    if test_set not in TEST_SETS:
        raise ValueError(f"test_set: {test_set!r}; allowed: {', '.join(TEST_SETS)}")
    out = {}
    for k, (name, n) in enumerate(zip(SPLITS, (num_train, num_validation, num_test))):
        labels, corners = _boxes(n, np.random.default_rng([seed, k]))
        if name == "test" and test_set == "dissimilar":
            corners = swap_heights(labels, corners)
        out[name] = (render(labels, corners), labels)
    return out


KIND = DatasetKind(
    name="red_green",
    description="Kayhan & van Gemert 2020's red-green boxes (class = which colour is left).",
    class_names=CLASS_NAMES,
    options={  # the paper's sizes: 2000 train, 1000 validation, 1000 test
        "num_train": int_at_least(2, 2000),
        "num_validation": int_at_least(2, 1000),
        "num_test": int_at_least(2, 1000),
        "seed": int_at_least(0, 0),
        "test_set": choice("similar", TEST_SETS),
    },
    make_splits=make_splits,
    side=IMAGE_SIZE,
    channels=3,
    variant_name=config_name,
)
