"""Max pooling at stride 1 keeps resolution and marks exactly the local maxima."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_jax.measure import peaks


def test_stride_one_pool_keeps_size_and_dominates():
    heat = np.random.default_rng(0).random((9, 11)).astype(np.float32)
    pooled = np.asarray(peaks.local_max_pool(heat, 3))
    assert pooled.shape == heat.shape and np.all(pooled >= heat)
    np.testing.assert_allclose(pooled[4, 5], heat[3:6, 4:7].max())
    np.testing.assert_allclose(pooled[0, 0], heat[0:2, 0:2].max())  # -inf padding at borders


def test_finds_the_bump_centres_strongest_first():
    centres = np.array([[5, 6], [20, 25], [12, 28]])
    heat = peaks.gaussian_heat_map((32, 32), centres, sigma=2.0, amplitudes=[0.6, 1.0, 0.8])
    found = peaks.find_peaks(heat, window=5, threshold=0.1)
    np.testing.assert_array_equal(found, centres[[1, 2, 0]])
    assert peaks.find_peaks(heat, window=5, threshold=0.9).shape == (1, 2)


def test_matches_brute_force_local_maxima():
    heat = np.random.default_rng(1).random((12, 12)).astype(np.float32)
    mask = np.asarray(peaks.peak_mask(heat, 3, threshold=-1.0))
    padded = np.pad(heat, 1, constant_values=-np.inf)
    brute = np.array(
        [[heat[i, j] == padded[i : i + 3, j : j + 3].max() for j in range(12)] for i in range(12)]
    )
    np.testing.assert_array_equal(mask, brute)
    suppressed = np.asarray(peaks.suppress(heat, 3))
    np.testing.assert_array_equal(suppressed != 0, brute)


def test_even_window_raises():
    with pytest.raises(ValueError, match="window"):
        peaks.local_max_pool(np.zeros((4, 4)), 2)
