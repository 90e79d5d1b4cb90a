"""Crossed seeds x images (and draws x seeds x images) designs: variance of a grand mean,
two-level bootstrap, expanded levels.

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


def _two_way_ms(y_msn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(MS_seed, MS_image, MS_err) of each [seeds, images] matrix (balanced two-way ANOVA).

    S = 1: MS_seed and MS_err are NaN (not estimable), MS_image is the variance over images.
    """
    m, s, n = y_msn.shape
    g = y_msn.mean(axis=(1, 2), keepdims=True)
    r, c = y_msn.mean(axis=2, keepdims=True) - g, y_msn.mean(axis=1, keepdims=True) - g
    ss_row, ss_col = n * (r**2).sum(axis=(1, 2)), s * (c**2).sum(axis=(1, 2))
    ms_col = ss_col / (n - 1)
    if s == 1:
        return np.full(m, np.nan), ms_col, np.full(m, np.nan)
    ss_err = np.maximum(((y_msn - g) ** 2).sum(axis=(1, 2)) - ss_row - ss_col, 0.0)
    return ss_row / (s - 1), ms_col, ss_err / ((s - 1) * (n - 1))


def crossed_components(y_msn: np.ndarray) -> dict[str, np.ndarray]:
    """ANOVA of each crossed [seeds, images] matrix, and the variance of its grand mean.

    Two-way random-effects model y_si = mu + a_s + b_i + e_si: Var = s2_a/S + s2_b/N + s2_e/(SN).
    Keys (each an [m] array): ms_seed, ms_image, ms_err; the ANOVA estimates var_seed =
    (MS_seed - MS_err)/N, var_image = (MS_image - MS_err)/S, var_err = MS_err (Searle, Casella &
    McCulloch 1992, ch. 4), each truncated at 0; pooled: the seed component dropped by the
    preliminary F test (Bancroft 1944): MS_seed/MS_err below its `pool_level(S)` null quantile;
    v: the variance of the grand mean; nu: its Satterthwaite (1946) dof.

    v = (max(MS_seed, MS_err) + max(MS_image, MS_err) - MS_err)/(SN), the seed mean square keeping
    its S - 1 dof even when truncated, unless pooled: then the seed term is dropped. (Always
    pooling a truncated seed term makes the far tail anti-conservative when seed variance
    dominates, which breaks Holm: see `experiments.calibration.main`.) S = 1: v = var(y)/N with
    N - 1 dof; ms_seed, ms_err, var_seed, var_err are NaN, var_image is the total per-image
    variance, pooled is False. Constant input: v = 0, nu = inf.
    """
    m, s, n = y_msn.shape
    ms_row, ms_col, ms_err = _two_way_ms(y_msn)
    if s == 1:
        nan = np.full(m, np.nan)
        v, nu, pool = ms_col / n, np.full(m, float(n - 1)), np.zeros(m, dtype=bool)
        return _components(ms_row, ms_col, ms_err, nan, ms_col, nan, pool, v, nu)
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
    nu = np.where(v > 0, nu, np.inf)
    var_seed = np.maximum(ms_row - ms_err, 0.0) / n
    var_image = np.maximum(ms_col - ms_err, 0.0) / s
    return _components(ms_row, ms_col, ms_err, var_seed, var_image, ms_err, pool, v, nu)


def _components(*values: np.ndarray) -> dict[str, np.ndarray]:
    """The dict `crossed_components` returns, from its values in key order."""
    keys = ("ms_seed", "ms_image", "ms_err", "var_seed", "var_image", "var_err", "pooled", "v")
    return dict(zip(keys + ("nu",), values, strict=True))


def crossed_variance(y_msn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Var of the grand mean of each crossed [seeds, images] matrix, and its Satterthwaite dof.

    The (v, nu) of `crossed_components`, which documents the model and the pooling rule.
    """
    c = crossed_components(y_msn)
    return c["v"], c["nu"]


# [draws, seeds, images]: the effects of the three-way crossed random model, in EMS order.
EFFECTS = ("draw", "seed", "image", "draw_seed", "draw_image", "seed_image", "err")
_ROW_EFFECTS = ("draw", "seed", "draw_seed")  # few dof: the preliminary tests may pool them


def _three_way_ms(y_mdsn: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Mean squares and their dof of each [draws, seeds, images] array (balanced, one per cell)."""
    m, nd, ns, n = y_mdsn.shape
    g = y_mdsn.mean(axis=(1, 2, 3), keepdims=True)
    a, b = y_mdsn.mean(axis=(2, 3), keepdims=True) - g, y_mdsn.mean(axis=(1, 3), keepdims=True) - g
    c = y_mdsn.mean(axis=(1, 2), keepdims=True) - g
    ab = y_mdsn.mean(axis=3, keepdims=True) - g - a - b
    ac = y_mdsn.mean(axis=2, keepdims=True) - g - a - c
    bc = y_mdsn.mean(axis=1, keepdims=True) - g - b - c
    e = y_mdsn - g - a - b - c - ab - ac - bc
    fd, fs, fn = nd - 1, ns - 1, n - 1
    dof = dict(zip(EFFECTS, (fd, fs, fn, fd * fs, fd * fn, fs * fn, fd * fs * fn), strict=True))
    ms = {}
    for name, x in zip(EFFECTS, (a, b, c, ab, ac, bc, e), strict=True):
        cells = nd * ns * n / np.prod(x.shape[1:])
        ms[name] = cells * (x**2).sum(axis=(1, 2, 3)) / dof[name]
    return ms, dof


def _satterthwaite(terms: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """(sum of w * MS, its Satterthwaite 1946 dof) for terms (w, MS, dof); all-zero: least dof."""
    total = sum(w * x for w, x, _ in terms)
    den = sum((w * x) ** 2 / f for w, x, f in terms)
    least = np.min([np.where(w != 0, f, np.inf) for w, _, f in terms], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return total, np.where(den > 0, total**2 / den, least)


def _pooled(num: list[tuple], den: list[tuple], df: int) -> np.ndarray:
    """Preliminary (quasi-)F test: num/den below its `pool_level(df + 1)` null quantile.

    num, den: (w, MS, dof) terms of equal expectation under H0 (the tested mean square plus the
    subtracted part of its EMS denominator, and the added part): Satterthwaite's (1946) quasi-F,
    the exact F when each side is one mean square. df: the tested mean square's dof.
    """
    (top, df_top), (bot, df_bot) = _satterthwaite(num), _satterthwaite(den)
    with np.errstate(invalid="ignore"):
        return top < scipy_stats.f.ppf(pool_level(df + 1), df_top, df_bot) * bot


def _pool_rows(ms: dict, dof: dict) -> dict[str, np.ndarray]:
    """Which row-side components (draw x seed, then draw, seed) the preliminary tests drop.

    Draw x seed: MS_ds / MS_err. Draw: MS_d against its EMS denominator MS_ds + MS_di - MS_err
    (MS_di alone once draw x seed is pooled); seed likewise with MS_si.
    """
    one = np.ones_like(ms["err"])
    term = {k: (one, ms[k], dof[k]) for k in EFFECTS}
    out = {"draw_seed": _pooled([term["draw_seed"]], [term["err"]], dof["draw_seed"])}
    w = (~out["draw_seed"]).astype(np.float64)
    for main, side in (("draw", "draw_image"), ("seed", "seed_image")):
        num = [term[main], (w, ms["err"], dof["err"])]
        out[main] = _pooled(num, [(w, ms["draw_seed"], dof["draw_seed"]), term[side]], dof[main])
    return out


def _truncated_terms(ms: dict, keep: dict) -> dict[str, np.ndarray]:
    """Each component times its coefficient in DSN Var, bottom-up truncated at 0 (see caller)."""
    e = ms["err"]
    t = {k: np.maximum(ms[k], e) - e for k in ("draw_seed", "draw_image", "seed_image")}
    t["draw_seed"] = np.where(keep["draw_seed"], t["draw_seed"], 0.0)
    for main, side in (("draw", "draw_image"), ("seed", "seed_image"), ("image", None)):
        pair = (t["draw_image"], t["seed_image"]) if side is None else (t["draw_seed"], t[side])
        den = e + pair[0] + pair[1]
        t[main] = np.where(keep.get(main, True), np.maximum(ms[main], den) - den, 0.0)
    return t | {"err": e}


def _draws_seeds_nu(ms: dict, dof: dict, keep: dict, v_dsn: np.ndarray) -> np.ndarray:
    """Satterthwaite dof of DSN Var written as a combination of (truncated) mean squares.

    A truncated mean square max(MS, its EMS denominator) keeps its own dof (as in
    `crossed_components`). Coefficients from expanding the bottom-up truncated sum.
    """
    k_d, k_s, k_ds = (keep[k].astype(np.float64) for k in _ROW_EFFECTS)
    e = ms["err"]
    mx = {k: np.maximum(ms[k], e) for k in ("draw_seed", "draw_image", "seed_image")}
    den = {"draw": k_ds * (mx["draw_seed"] - e) + mx["draw_image"]}
    den["seed"] = k_ds * (mx["draw_seed"] - e) + mx["seed_image"]
    den["image"] = mx["draw_image"] + mx["seed_image"] - e
    mx |= {k: np.maximum(ms[k], den[k]) for k in ("draw", "seed", "image")}
    coef = {"draw": k_d, "seed": k_s, "image": 1.0, "draw_seed": k_ds * (1 - k_d - k_s)}
    coef |= {"draw_image": -k_d, "seed_image": -k_s, "err": k_ds * (k_d + k_s - 1)}
    mx["err"] = e
    den_nu = sum((coef[k] * mx[k]) ** 2 / dof[k] for k in EFFECTS)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v_dsn > 0, v_dsn**2 / den_nu, np.inf)


def _from_two_way(c: dict[str, np.ndarray], rows: str) -> dict[str, np.ndarray]:
    """A two-way `crossed_components` result in `draws_seeds_components`' keys (rows: the
    factor that varies); what the two-way design cannot separate is NaN, never pooled."""
    nan, no = np.full_like(c["v"], np.nan), np.zeros(c["v"].shape, dtype=bool)
    out = {f"{p}_{k}": nan for p in ("ms", "var") for k in EFFECTS}
    out |= {f"pooled_{k}": no for k in _ROW_EFFECTS}
    for p in ("ms", "var"):
        out |= {f"{p}_{rows}": c[f"{p}_seed"], f"{p}_image": c[f"{p}_image"]}
        out[f"{p}_err"] = c[f"{p}_err"]
    return out | {f"pooled_{rows}": c["pooled"], "pooled": c["pooled"], "v": c["v"], "nu": c["nu"]}


def draws_seeds_components(y_mdsn: np.ndarray) -> dict[str, np.ndarray]:
    """ANOVA of each [draws, seeds, images] array whose draws and seeds are crossed factors.

    Three-way random model y_dsi = mu + a_d + b_s + c_i + ab_ds + ac_di + bc_si + e_dsi (the
    three-way interaction confounded with e: one score per cell); Var(grand mean) = s2_a/D +
    s2_b/S + s2_c/N + s2_ab/(DS) + s2_ac/(DN) + s2_bc/(SN) + s2_e/(DSN). Components from the
    expected mean squares (Searle, Casella & McCulloch 1992, ch. 4), e.g. s2_a = (MS_d - MS_ds -
    MS_di + MS_err)/(SN), truncated at 0 bottom up (a component's denominator uses the truncated
    interactions), so DSN Var = max-adjusted MS_d + MS_s + MS_i - MS_ds - MS_di - MS_si + MS_err.
    Pooling as in `crossed_components`: a row-side component (draw, seed, draw x seed) that its
    preliminary F test at `pool_level(dof + 1)` finds indistinguishable (`_pool_rows`) is dropped,
    from Var and from the other components' denominators; Satterthwaite (1946) dof, a truncated
    mean square keeping its own dof (the two-way rule; its pooled-and-flat case aside, immaterial
    with N - 1 dof). With 2 draws x 2 seeds each row-side mean square has 1 dof: nu is about 1.

    Keys ([m] arrays): ms_<effect>, var_<effect> for `EFFECTS`; pooled_draw, pooled_seed,
    pooled_draw_seed, pooled (any of them); v; nu. D = 1 or S = 1: exactly `crossed_components`
    of the [seeds, images] or [draws, images] matrix (its err absorbs the confounded interaction;
    what it cannot separate is NaN).
    """
    m, nd, ns, n = y_mdsn.shape
    if nd == 1:
        return _from_two_way(crossed_components(y_mdsn[:, 0]), "seed")
    if ns == 1:
        return _from_two_way(crossed_components(y_mdsn[:, :, 0]), "draw")
    ms, dof = _three_way_ms(y_mdsn)
    pooled = _pool_rows(ms, dof)
    keep = {k: ~pooled[k] for k in _ROW_EFFECTS}
    t = _truncated_terms(ms, keep)
    v_dsn = sum(t.values())
    coef = {"draw": ns * n, "seed": nd * n, "image": nd * ns, "draw_seed": n}
    coef |= {"draw_image": ns, "seed_image": nd, "err": 1}
    out = {f"ms_{k}": ms[k] for k in EFFECTS} | {f"var_{k}": t[k] / coef[k] for k in EFFECTS}
    out |= {f"pooled_{k}": pooled[k] for k in _ROW_EFFECTS}
    out["pooled"] = pooled["draw"] | pooled["seed"] | pooled["draw_seed"]
    nu = _draws_seeds_nu(ms, dof, keep, v_dsn)
    return out | {"v": v_dsn / (nd * ns * n), "nu": nu}


def draws_seeds_variance(y_mdsn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(v, nu) of `draws_seeds_components`: Var of each grand mean and its Satterthwaite dof."""
    c = draws_seeds_components(y_mdsn)
    return c["v"], c["nu"]


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


def _t_result(delta: np.ndarray, v: np.ndarray, nu: np.ndarray, confidence: float) -> dict:
    """The `paired_t` dict from a mean difference, its variance and dof."""
    se = np.sqrt(v)
    half = scipy_stats.t.ppf(0.5 + confidence / 2, nu) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(se > 0, 2 * scipy_stats.t.sf(np.abs(delta) / se, nu), 1.0 * (delta == 0))
    half = np.where(se > 0, half, 0.0)
    return {"delta": delta, "se": se, "df": nu, "low": delta - half, "high": delta + half, "p": p}


def paired_t(d_msn: np.ndarray, confidence: float) -> dict[str, np.ndarray]:
    """Welch-Satterthwaite t on each crossed matrix of paired differences d_si = a_si - b_si.

    delta = mean(d), se = sqrt(crossed_variance), two-sided p = 2 T_nu(-|delta|/se), interval
    delta -+ t_{nu, 1-alpha/2} se (the set of delta0 not rejected at alpha: p < alpha exactly when 0
    is outside it). se = 0 (constant d): interval [delta, delta], p = 1 if delta == 0 else 0.
    """
    v, nu = crossed_variance(d_msn)
    return _t_result(d_msn.mean(axis=(1, 2), dtype=np.float64), v, nu, confidence)


def paired_t_draws(d_mdsn: np.ndarray, confidence: float) -> dict[str, np.ndarray]:
    """`paired_t` on each [draws, seeds, images] array of paired differences, draws and seeds
    crossed random factors (`draws_seeds_variance`). D = 1: `paired_t` of the seeds x images
    matrix; S = 1: of the draws x images matrix."""
    v, nu = draws_seeds_variance(d_mdsn)
    return _t_result(d_mdsn.mean(axis=(1, 2, 3), dtype=np.float64), v, nu, confidence)


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
