"""Zhang et al. 2017's corruptions as dataset options: random training labels, shuffled pixels."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_jax import datasets
from cnn_jax.datasets import corrupt


def test_random_labels_replace_the_training_labels_only_and_repeat_per_seed(data_dir):
    true = datasets.load("digits", data_dir=data_dir, train_subset=300, subset_seed=1)
    rand = datasets.load(
        "digits", data_dir=data_dir, train_subset=300, subset_seed=1, corrupt="random_labels"
    )
    again = datasets.load(
        "digits", data_dir=data_dir, train_subset=300, subset_seed=1, corrupt="random_labels"
    )
    other = datasets.load(
        "digits", data_dir=data_dir, train_subset=300, subset_seed=1, corrupt="random_labels",
        corrupt_seed=1,
    )  # fmt: skip
    np.testing.assert_array_equal(rand.train.images, true.train.images)
    np.testing.assert_array_equal(rand.train.labels, again.train.labels)  # deterministic
    assert not np.array_equal(rand.train.labels, other.train.labels)
    assert np.mean(rand.train.labels == true.train.labels) < 0.3  # about 1 in 10 by chance
    assert set(np.unique(rand.train.labels)) == set(range(10))
    for split in ("validation", "test"):  # true labels and images where it is measured
        np.testing.assert_array_equal(getattr(rand, split).labels, getattr(true, split).labels)
        np.testing.assert_array_equal(getattr(rand, split).images, getattr(true, split).images)


def test_shuffled_pixels_permute_every_split_the_same_way_and_keep_labels(data_dir):
    true = datasets.load("digits", data_dir=data_dir, train_subset=200)
    mixed = datasets.load("digits", data_dir=data_dir, train_subset=200, corrupt="shuffled_pixels")
    n, h, w, c = true.test.images.shape
    flat_true = true.train.images.reshape(len(true.train), h * w, c)
    flat = mixed.train.images.reshape(len(mixed.train), h * w, c)
    perm = corrupt.pixel_permutation(h, w, 0)
    np.testing.assert_array_equal(flat, flat_true[:, perm])
    flat_test = mixed.test.images.reshape(n, h * w, c)
    np.testing.assert_array_equal(flat_test, true.test.images.reshape(n, h * w, c)[:, perm])
    assert not np.array_equal(mixed.train.images, true.train.images)
    np.testing.assert_array_equal(mixed.train.labels, true.train.labels)
    np.testing.assert_array_equal(mixed.test.labels, true.test.labels)
    assert mixed.mean == pytest.approx(true.mean) and mixed.std == pytest.approx(true.std)


@pytest.mark.parametrize(
    "opts, fragment",
    [
        ({"corrupt": "random"}, r"^dataset option 'corrupt': 'random' for 'digits'; allowed: "
                                "none, random_labels, shuffled_pixels$"),
        ({"corrupt_seed": -1}, r"^dataset option 'corrupt_seed': -1 for 'digits'; allowed: "),
    ],
)  # fmt: skip
def test_bad_corruption_values_are_named_in_one_line(opts, fragment, tmp_path):
    with pytest.raises(ValueError, match=fragment):
        datasets.check("digits", data_dir=tmp_path, **opts)
