"""What a regularizer did to the weights: L1/L2 norms, sparsity, histograms of kernel values.

Only conv and dense kernels count (the leaves the L1/L2 penalties and weight decay act on,
`optim.kernel_mask`), so biases and batch-norm scales do not blur the picture. L1 is
expected to push many kernels to (near) zero, L2 / weight decay to shrink all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from cnn_jax.optim import kernel_mask

NEAR_ZERO_THRESHOLDS = (1e-3, 1e-2)


def kernels(params: Any) -> dict[str, np.ndarray]:
    """Every kernel leaf of `params` as a host array, keyed by its path ('block0/conv/kernel')."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    mask = jax.tree.leaves(kernel_mask(params))
    out = {}
    for (path, leaf), is_kernel in zip(leaves, mask):
        if is_kernel:
            name = "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)
            out[name] = np.asarray(jax.device_get(leaf), np.float64)
    return out


def _flat(params: Any) -> np.ndarray:
    values = list(kernels(params).values())
    if not values:
        raise ValueError("params: no kernel leaves; expected a CNN's parameter tree")
    return np.concatenate([v.ravel() for v in values])


def weight_stats(
    params: Any, thresholds: Sequence[float] = NEAR_ZERO_THRESHOLDS
) -> dict[str, float]:
    """Norms and sparsity of all kernels together.

    Keys: num_weights, l1 (sum |w|), l2 (sqrt of sum w^2), mean_abs, max_abs, and
    near_zero_<t> (fraction of weights with |w| < t) for each threshold t.
    """
    w = _flat(params)
    stats = {
        "num_weights": int(w.size),
        "l1": float(np.abs(w).sum()),
        "l2": float(np.sqrt(np.square(w).sum())),
        "mean_abs": float(np.abs(w).mean()),
        "max_abs": float(np.abs(w).max()),
    }
    for t in thresholds:
        stats[f"near_zero_{t:g}"] = float(np.mean(np.abs(w) < t))
    return stats


def weight_histogram(params: Any, bins: np.ndarray | int = 101) -> tuple[np.ndarray, np.ndarray]:
    """(counts, bin_edges) of all kernel values; pass shared edges to compare runs."""
    return np.histogram(_flat(params), bins=bins)
