"""Holm's step-down adjustment: one family of p-values per study."""

from __future__ import annotations

import numpy as np


def holm(p_values) -> np.ndarray:
    """Holm (1979, Scand. J. Stat. 6:65) step-down adjusted p's; FWER <= alpha, any dependence.

    Sorted p_(1) <= ... <= p_(m): adjusted p_(j) = max_{k <= j} min(1, (m - k + 1) p_(k)).
    A 2-D input holds one family per row.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim not in (1, 2) or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p_values: {p_values!r}; allowed: a 1-D sequence of numbers in [0, 1]")
    order = np.argsort(p, axis=-1, kind="stable")
    k = p.shape[-1]
    scaled = np.minimum(1.0, (k - np.arange(k)) * np.take_along_axis(p, order, axis=-1))
    out = np.empty_like(p)
    np.put_along_axis(out, order, np.maximum.accumulate(scaled, axis=-1), axis=-1)
    return out
