"""Crossed seeds x images design: variance of a grand mean, two-level bootstrap, expanded levels.

Helpers of `cnn_jax.stats` (batched over a leading axis m so that calibration can run thousands of
simulated studies at once through the same code the experiments use).
"""

from __future__ import annotations

import numpy as np
from scipy import special
from scipy import stats as scipy_stats

_CHUNK = 2_000_000  # bootstrap weights materialised per chunk (elements), bounds memory


# Preliminary-test level for dropping the seed component, by number of seeds (calibrated by
# `experiments.calibration.main`):
# a wrong pooling is what breaks Holm's far tail, and with fewer than
# 5 seeds the F test rarely detects seed variance, so it must pool less often. At 0.25 Holm over 10
# null comparisons erred in 0.107 (S=2), 0.066 (S=3), 0.045 (S=4) of studies where seed variance
# dominates; at 0.10: 0.042, 0.029, 0.018 (intervals then conservative, 0.95-0.99 coverage).
POOL_LEVEL, POOL_LEVEL_FEW_SEEDS, FEW_SEEDS = 0.25, 0.10, 4


def pool_level(s: int) -> float:
    """Level of the seed-pooling F test for S seeds: POOL_LEVEL from 5 seeds, smaller below."""
    return POOL_LEVEL_FEW_SEEDS if s <= FEW_SEEDS else POOL_LEVEL


def crossed_variance(y_msn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Var of the grand mean of each crossed [seeds, images] matrix, and its Satterthwaite dof.

    Two-way random-effects model y_si = mu + a_s + b_i + e_si: Var = s2_a/S + s2_b/N + s2_e/(SN).
    ANOVA estimates s2_a = (MS_seed - MS_err)/N, s2_b = (MS_img - MS_err)/S, s2_e = MS_err
    (Searle, Casella & McCulloch 1992, ch. 4), a negative component truncated at 0, i.e.
    Var = (max(MS_seed, MS_err) + max(MS_img, MS_err) - MS_err)/(SN). Dof: Satterthwaite (1946)
    for that combination, the seed mean square keeping its S - 1 dof even when truncated, unless a
    preliminary F test (Bancroft 1944) finds the seeds indistinguishable: MS_seed/MS_err below
    its `pool_level(S)` null quantile; only then is the seed term pooled away. (Always pooling a
    truncated seed term makes the far tail anti-conservative when seed variance dominates, which
    breaks Holm: see `experiments.calibration.main`.) S = 1: var(y)/N with N - 1 dof. Constant
    input: 0, inf.
    """
    m, s, n = y_msn.shape
    g = y_msn.mean(axis=(1, 2), keepdims=True)
    r, c = y_msn.mean(axis=2, keepdims=True) - g, y_msn.mean(axis=1, keepdims=True) - g
    ss_row, ss_col = n * (r**2).sum(axis=(1, 2)), s * (c**2).sum(axis=(1, 2))
    ms_col = ss_col / (n - 1)
    if s == 1:
        return ms_col / n, np.full(m, float(n - 1))
    ss_err = np.maximum(((y_msn - g) ** 2).sum(axis=(1, 2)) - ss_row - ss_col, 0.0)
    ms_row, ms_err = ss_row / (s - 1), ss_err / ((s - 1) * (n - 1))
    dofs = np.array([s - 1, n - 1, (s - 1) * (n - 1)], dtype=np.float64)[:, None]
    pool = ms_row < scipy_stats.f.ppf(pool_level(s), s - 1, dofs[2, 0]) * ms_err
    flat = pool & (ms_col <= ms_err)  # pooled and no image excess: Var = MS_err/(SN)
    row = np.where(pool, 0.0, np.maximum(ms_row, ms_err))
    col = np.where(flat, 0.0, np.maximum(ms_col, ms_err))
    err = np.where(pool, np.where(flat, ms_err, 0.0), -ms_err)
    terms = np.stack([row, col, err]) / (s * n)
    v = terms.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = v**2 / (terms**2 / dofs).sum(axis=0)
    return v, np.where(v > 0, nu, np.inf)


def _counts(rng: np.random.Generator, b: int, k: int) -> np.ndarray:
    """[b, k] counts of k indices drawn with replacement per row (resampling index arrays)."""
    idx = rng.integers(0, k, size=(b, k)) + (np.arange(b) * k)[:, None]
    return np.bincount(idx.ravel(), minlength=b * k).reshape(b, k)


def two_level_replicates(y_msn: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """[m, n_boot] grand means of two-level bootstrap samples of each [seeds, images] matrix.

    Per replicate: seeds drawn with replacement, then images drawn with replacement, the same image
    indices for every seed: the crossed design (each seed is scored on the same test set), i.e.
    Owen's (2007, Ann. Appl. Stat. 1:246) pigeonhole bootstrap; a nested per-seed image draw would
    treat a hard image as independent across seeds. One weight draw is shared by all m matrices (a
    valid draw for each). A replicate is a weighted mean of the scores: it stays inside their range.
    """
    m, s, n = y_msn.shape
    rng = np.random.default_rng(seed)
    dtype = y_msn.dtype if y_msn.dtype == np.float32 else np.float64
    y_kn = y_msn.reshape(m * s, n).astype(dtype, copy=False)  # one 2-D BLAS call per chunk
    out, step = [], max(1, _CHUNK // n)
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        w_bs = _counts(rng, b, s).astype(dtype)
        v_bn = _counts(rng, b, n).astype(dtype)
        z_msb = (y_kn @ v_bn.T).reshape(m, s, b)
        out.append(np.einsum("msb,bs->mb", z_msb, w_bs) / (s * n))
    return np.concatenate(out, axis=1)


def _row_quantiles(rep_mb: np.ndarray, q_m: np.ndarray) -> np.ndarray:
    """Per-row quantile at a per-row level q (linear interpolation, numpy's default method)."""
    srt = np.sort(rep_mb, axis=1)
    pos = np.clip(q_m, 0.0, 1.0) * (srt.shape[1] - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, srt.shape[1] - 1)
    rows = np.arange(srt.shape[0])
    frac = pos - lo
    return srt[rows, lo] * (1 - frac) + srt[rows, hi] * frac


def expanded_percentile(
    rep_mb: np.ndarray, v_m: np.ndarray, nu_m: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval with levels widened so its width matches t_nu * sqrt(v).

    Hesterberg (2015, Am. Stat. 69:371, "expanded percentile"): bootstrap percentiles at alpha'/2,
    1 - alpha'/2 with Phi^-1(1 - alpha'/2) = t_{nu, 1-alpha/2} * sqrt(v) / sd*. Bounded by the
    range of the replicates; when alpha'/2 < 1/n_boot it saturates at their extremes (few seeds,
    seed variance dominant): there it under-covers (see `experiments.calibration.main`).
    """
    sd = rep_mb.std(axis=1)
    t = scipy_stats.t.ppf(0.5 + confidence / 2, nu_m)
    z = special.ndtri(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        zlev = np.where(sd > 0, t * np.sqrt(v_m) / sd, z)
    tail = special.ndtr(-zlev)
    return _row_quantiles(rep_mb, tail), _row_quantiles(rep_mb, 1 - tail)


def level_intervals(
    y_msn: np.ndarray, n_boot: int, confidence: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grand mean, low, high) per matrix: two-level bootstrap, expanded-percentile levels."""
    rep = two_level_replicates(y_msn, n_boot, seed)
    v, nu = crossed_variance(y_msn.astype(np.float64))
    low, high = expanded_percentile(rep, v, nu, confidence)
    return y_msn.mean(axis=(1, 2), dtype=np.float64), low, high


def paired_t(d_msn: np.ndarray, confidence: float) -> dict[str, np.ndarray]:
    """Welch-Satterthwaite t on each crossed matrix of paired differences d_si = a_si - b_si.

    delta = mean(d), se = sqrt(crossed_variance), two-sided p = 2 T_nu(-|delta|/se), interval
    delta -+ t_{nu, 1-alpha/2} se (the set of delta0 not rejected at alpha: p < alpha exactly when 0
    is outside it). se = 0 (constant d): interval [delta, delta], p = 1 if delta == 0 else 0.
    """
    v, nu = crossed_variance(d_msn)
    delta, se = d_msn.mean(axis=(1, 2), dtype=np.float64), np.sqrt(v)
    half = scipy_stats.t.ppf(0.5 + confidence / 2, nu) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(se > 0, 2 * scipy_stats.t.sf(np.abs(delta) / se, nu), 1.0 * (delta == 0))
    half = np.where(se > 0, half, 0.0)
    return {"delta": delta, "se": se, "df": nu, "low": delta - half, "high": delta + half, "p": p}


def tost_t(delta, se, nu, margin: float) -> np.ndarray:
    """Schuirmann (1987) two one-sided t-tests of H0 |delta| >= margin: the larger one-sided p.

    The TOST at alpha rejects exactly when the (1 - 2 alpha) t-interval lies inside (-margin,
    margin). se = 0: p = 0 when |delta| < margin, else 1.
    """
    delta, se, nu = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (delta, se, nu)))
    with np.errstate(divide="ignore", invalid="ignore"):
        p_low = scipy_stats.t.sf((delta + margin) / se, nu)  # H0: delta <= -margin
        p_high = scipy_stats.t.sf((margin - delta) / se, nu)  # H0: delta >= +margin
    return np.where(se > 0, np.maximum(p_low, p_high), 1.0 * (np.abs(delta) >= margin))
