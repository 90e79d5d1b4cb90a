"""Peak finding on a heat map with max pooling at stride 1 (the seed's detection question).

Max pooling with stride 1 and SAME padding keeps the map's resolution; a pixel equal to the
max of its window is a local maximum. Keeping only those pixels (above a threshold) is the
non-maximum suppression that keypoint / centre-point detectors (e.g. CenterNet) use in
place of box NMS: one jit-able op, no sorting of boxes. Plateaus (equal neighbours) all
count as maxima; the window sets how close two peaks may be and still both survive.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def _check_window(window: int) -> int:
    if not isinstance(window, (int, np.integer)) or window < 1 or window % 2 == 0:
        raise ValueError(f"window: {window!r} not allowed; allowed: odd integers >= 1")
    return int(window)


def local_max_pool(heat_hw: jax.Array, window: int = 3) -> jax.Array:
    """Max over each window x window neighbourhood, stride 1, same size as the input [H, W].

    Padding is -inf, so border pixels compare only with real neighbours.
    """
    window = _check_window(window)
    pad = (window - 1) // 2
    x_bhwc = jnp.asarray(heat_hw, jnp.float32)[None, :, :, None]
    pooled = nn.max_pool(x_bhwc, (window, window), (1, 1), padding=((pad, pad), (pad, pad)))
    return pooled[0, :, :, 0]


def peak_mask(heat_hw: jax.Array, window: int = 3, threshold: float = 0.0) -> jax.Array:
    """Boolean [H, W]: pixels that are their neighbourhood's max and above `threshold`."""
    heat_hw = jnp.asarray(heat_hw, jnp.float32)
    return (local_max_pool(heat_hw, window) == heat_hw) & (heat_hw > threshold)


def suppress(heat_hw: jax.Array, window: int = 3) -> jax.Array:
    """The heat map with every non-maximum set to 0 (what a CenterNet decoder keeps)."""
    heat_hw = jnp.asarray(heat_hw, jnp.float32)
    return jnp.where(local_max_pool(heat_hw, window) == heat_hw, heat_hw, 0.0)


def find_peaks(
    heat_hw: np.ndarray, window: int = 3, threshold: float = 0.0, max_peaks: int | None = None
) -> np.ndarray:
    """Peaks as int [N, 2] (row, col), strongest first (ties in row-major order)."""
    heat = np.asarray(heat_hw, np.float32)
    rows, cols = np.nonzero(np.asarray(peak_mask(heat, window, threshold)))
    order = np.argsort(-heat[rows, cols], kind="stable")
    peaks = np.stack([rows[order], cols[order]], axis=1).astype(np.int64)
    return peaks if max_peaks is None else peaks[:max_peaks]


def gaussian_heat_map(
    shape_hw: tuple[int, int], centres: np.ndarray, sigma: float, amplitudes=None
) -> np.ndarray:
    """Sum of isotropic Gaussian bumps at `centres` [N, 2] (row, col): a toy detector output."""
    rows, cols = np.mgrid[0 : shape_hw[0], 0 : shape_hw[1]]
    centres = np.asarray(centres, np.float64).reshape(-1, 2)
    amps = np.ones(len(centres)) if amplitudes is None else np.asarray(amplitudes, np.float64)
    heat = np.zeros(shape_hw)
    for (r, c), a in zip(centres, amps):
        heat += a * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * sigma**2))
    return heat.astype(np.float32)
