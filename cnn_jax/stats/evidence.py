"""Estimates for the claims engine, from per-image scores, per-seed numbers or a stored record.

Each returns a `cnn_jax.stats.claims.Estimate` (delta = a - b, se, dof, and what the power
report and the budget interaction need), so every study builds its evidence the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from cnn_jax.stats.censored import CensoredComparison
from cnn_jax.stats.claims import Estimate
from cnn_jax.stats.crossed import crossed_components

CROSSED = "paired crossed t (Satterthwaite)"


def _matrix(name: str, x) -> np.ndarray:
    y = np.asarray(x, dtype=np.float64)
    y = y[None, :] if y.ndim == 1 else y
    if y.ndim != 2 or y.shape[1] < 2 or not np.isfinite(y).all():
        raise ValueError(
            f"{name}: shape {np.shape(x)}; allowed: finite [seeds, images], >= 2 images"
        )
    return y


def paired_estimate(a_sn, b_sn, *, reference_error: float | None = None) -> Estimate:
    """a - b on the same seeds and test images: the crossed paired t of `cnn_jax.stats`.

    Keeps the per-(seed, image) differences (budget interactions on the same seeds and images),
    the variance components (power report) and whether the seed component was pooled.
    """
    a, b = _matrix("a_sn", a_sn), _matrix("b_sn", b_sn)
    if a.shape != b.shape:
        raise ValueError(f"b_sn: shape {b.shape} differs from a_sn {a.shape}; pass matched runs")
    d = a - b
    c = {k: float(v[0]) for k, v in crossed_components(d[None]).items()}
    comps = {k: c[f"var_{k}"] for k in ("seed", "image", "err")}
    return Estimate(
        delta=float(d.mean()), se=math.sqrt(c["v"]), df=c["nu"], n_seeds=d.shape[0],
        n_images=d.shape[1], method=CROSSED, pooled=bool(c["pooled"]),
        reference_error=reference_error, deviation=float(np.abs(d).max()),
        components={k: (None if math.isnan(v) else v) for k, v in comps.items()}, paired=d,
    )  # fmt: skip


def seed_estimate(a: Sequence[float], b: Sequence[float]) -> Estimate:
    """Paired t over seeds of one number per seed (no images to cross; Student 1908)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if d.ndim != 1 or d.size < 2 or not np.isfinite(d).all():
        raise ValueError(f"seed values: {d.size} finite paired seeds; allowed: >= 2")
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    return Estimate(float(d.mean()), se, float(d.size - 1), d.size, 1, "paired t over seeds")


def censored_estimate(c: CensoredComparison) -> Estimate:
    """A paired restricted-mean time comparison (`cnn_jax.stats.censored.compare_times`) as an
    Estimate over seeds; `extra` keeps what its table must say: the runs that reached the target
    per arm, the Kaplan-Meier medians, the restriction and the log-rank p."""
    extra = {
        "reached": [c.reached_a, c.reached_b], "n_runs": c.n_pairs,
        "medians": [c.median_a, c.median_b], "restriction": c.restriction,
        "rmst": [c.rmst_a, c.rmst_b], "logrank_p": c.logrank_p,
    }  # fmt: skip
    return Estimate(c.delta, c.se, float(c.df), c.n_pairs, 1, c.method, extra=extra)


def pooled_from_dof(df: float | None, n_seeds: int, n_images: int) -> bool | None:
    """Whether a stored crossed t pooled its seed component, read off its dof.

    Pooling leaves the image (N - 1) or the error ((S - 1)(N - 1)) dof; an unpooled
    Satterthwaite dof is a non-integer combination bounded by the seed term.
    """
    if df is None or n_seeds < 2:
        return None if df is None else False
    return df in (float(n_images - 1), float((n_seeds - 1) * (n_images - 1)))


def estimate_from_record(c: Mapping[str, Any], *, reference_error: float | None = None) -> Estimate:
    """An Estimate from a stored comparison (delta, se, df, n_seeds, n_images; se = 0 allowed)."""
    missing = [k for k in ("delta", "se", "n_seeds", "n_images") if c.get(k) is None]
    if missing and not (c.get("se") is None and c.get("low") == c.get("high")):
        raise ValueError(f"stored comparison {c.get('name', '')!r}: no {missing}; rerun analysis")
    se = float(c.get("se") or 0.0)
    df = math.inf if c.get("df") is None else float(c["df"])
    s, n = int(c["n_seeds"]), int(c["n_images"])
    deviation = abs(float(c["delta"])) if se == 0 else None  # se 0: every difference equal
    return Estimate(
        float(c["delta"]), se, df, s, n, str(c.get("method", CROSSED)),
        pooled=pooled_from_dof(None if math.isinf(df) else df, s, n),
        reference_error=reference_error, deviation=deviation,
    )  # fmt: skip


def t_p(e: Estimate) -> float:
    """Two-sided p of delta = 0 (for tables that show one p beside an estimate)."""
    if e.se == 0:
        return float(e.delta == 0)
    return float(2 * scipy_stats.t.sf(abs(e.delta) / e.se, e.df))
