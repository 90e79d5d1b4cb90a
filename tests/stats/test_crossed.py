"""cnn_jax.stats.crossed: ANOVA components, and the [draws, seeds, images] variance."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cnn_jax.stats.crossed import (
    EFFECTS,
    crossed_components,
    crossed_variance,
    draws_seeds_components,
    paired_t,
    paired_t_draws,
    pool_level,
)


def _reference_crossed_variance(y_msn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`crossed_variance` as it was before `crossed_components` existed (frozen copy)."""
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
    flat = pool & (ms_col <= ms_err)
    row = np.where(pool, 0.0, np.maximum(ms_row, ms_err))
    col = np.where(flat, 0.0, np.maximum(ms_col, ms_err))
    err = np.where(pool, np.where(flat, ms_err, 0.0), -ms_err)
    terms = np.stack([row, col, err]) / (s * n)
    v = terms.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = v**2 / (terms**2 / dofs).sum(axis=0)
    return v, np.where(v > 0, nu, np.inf)


def _binary_crossed(rng, m: int, s: int, n: int, sd_seed: float) -> np.ndarray:
    """[m, s, n] paired differences of 0/1 scores under a logit-normal crossed model."""
    logit = rng.normal(2.0, 1.5, size=(m, 1, n)) + rng.normal(0, sd_seed, size=(m, s, 1))
    p = 1 / (1 + np.exp(-logit))
    return (rng.random((m, s, n)) < p).astype(float) - (rng.random((m, s, n)) < p)


@pytest.mark.parametrize("s", [1, 2, 3, 4, 5, 10])
def test_crossed_variance_is_bit_identical_to_the_reference(s):
    rng = np.random.default_rng(s)
    for sd_seed in (0.0, 0.3, 1.5):
        y = _binary_crossed(rng, 500, s, 40, sd_seed)
        for got, ref in zip(crossed_variance(y), _reference_crossed_variance(y), strict=True):
            np.testing.assert_array_equal(got, ref)
    const = np.zeros((3, s, 7))
    for got, ref in zip(crossed_variance(const), _reference_crossed_variance(const), strict=True):
        np.testing.assert_array_equal(got, ref)


def test_crossed_components_are_the_anova_estimates():
    rng = np.random.default_rng(0)
    m, s, n = 3000, 6, 30
    y = 2 * rng.normal(size=(m, s, 1)) + rng.normal(size=(m, 1, n)) + rng.normal(size=(m, s, n))
    c = crossed_components(y)
    assert set(c) == {"ms_seed", "ms_image", "ms_err", "var_seed", "var_image", "var_err"} | {
        "pooled",
        "v",
        "nu",
    }
    assert c["var_seed"].mean() == pytest.approx(4.0, rel=0.05)
    assert c["var_image"].mean() == pytest.approx(1.0, rel=0.05)
    assert c["var_err"].mean() == pytest.approx(1.0, rel=0.02)
    assert not c["pooled"].any() and c["pooled"].dtype == bool
    # Without seed variance the F test pools at about its level.
    y0 = rng.normal(size=(m, 1, n)) + rng.normal(size=(m, s, n))
    c0 = crossed_components(y0)
    assert c0["pooled"].mean() == pytest.approx(pool_level(s), abs=0.03)
    assert np.all(c0["var_seed"][c0["pooled"]] == 0)


def test_crossed_components_one_seed():
    y = np.random.default_rng(1).normal(size=(4, 1, 9))
    c = crossed_components(y)
    np.testing.assert_allclose(c["var_image"], y[:, 0].var(axis=1, ddof=1))
    assert np.isnan(c["var_seed"]).all() and np.isnan(c["ms_err"]).all() and not c["pooled"].any()


def _three_way(rng, m: int, shape: tuple[int, int, int], sd: dict) -> np.ndarray:
    """[m, D, S, N] draws from the three-way crossed Gaussian model with component sds `sd`."""
    nd, ns, n = shape
    axes = {"draw": (nd, 1, 1), "seed": (1, ns, 1), "image": (1, 1, n), "draw_seed": (nd, ns, 1)}
    axes |= {"draw_image": (nd, 1, n), "seed_image": (1, ns, n), "err": (nd, ns, n)}
    return sum(sd.get(k, 0.0) * rng.normal(size=(m, *a)) for k, a in axes.items())


_SD = {"draw": 1.0, "seed": 0.7, "image": 1.0, "draw_seed": 0.5}
_SD |= {"draw_image": 0.8, "seed_image": 0.6, "err": 1.0}


def _grand_mean_variance(sd: dict, nd: int, ns: int, n: int) -> float:
    div = {"draw": nd, "seed": ns, "image": n, "draw_seed": nd * ns, "draw_image": nd * n}
    div |= {"seed_image": ns * n, "err": nd * ns * n}
    return sum(sd[k] ** 2 / div[k] for k in div)


def test_draws_seeds_components_are_unbiased_and_match_a_brute_force_variance():
    rng = np.random.default_rng(0)
    y = _three_way(rng, 6000, (3, 4, 20), _SD)
    c = draws_seeds_components(y)
    for k in EFFECTS:
        assert c[f"var_{k}"].mean() == pytest.approx(_SD[k] ** 2, rel=0.06, abs=0.01), k
    truth = _grand_mean_variance(_SD, 3, 4, 20)
    assert y.mean(axis=(1, 2, 3)).var() == pytest.approx(truth, rel=0.05)  # brute force
    assert c["v"].mean() == pytest.approx(truth, rel=0.03)
    r = paired_t_draws(y, 0.95)
    assert ((r["low"] <= 0) & (r["high"] >= 0)).mean() == pytest.approx(0.95, abs=0.015)


def _anova_by_least_squares(y_dsn: np.ndarray) -> dict[str, float]:
    """Mean squares as the residual-SS reduction of each term's indicator columns (lstsq)."""
    nd, ns, n = y_dsn.shape
    eye = {"d": np.eye(nd), "s": np.eye(ns), "i": np.eye(n)}
    one = {k: np.ones((len(v), 1)) for k, v in eye.items()}

    def cols(term: str) -> np.ndarray:  # indicator columns of a term, cells in (d, s, i) order
        a, b, c = (eye[k] if k in term else one[k] for k in "dsi")
        return np.kron(np.kron(a, b), c)

    def rss(terms: list[str]) -> float:
        x = np.hstack([cols(t) for t in terms])
        beta = np.linalg.lstsq(x, y_dsn.ravel(), rcond=None)[0]
        return float(((y_dsn.ravel() - x @ beta) ** 2).sum())

    names = dict(zip(("d", "s", "i", "ds", "di", "si"), EFFECTS, strict=False))
    full = ["", *names]
    below = {t: ["", *t] if len(t) == 2 else [""] for t in names}  # the margins under a term
    out = {names[t]: rss(below[t]) - rss([*below[t], t]) for t in names}
    out["err"] = rss(full)
    fd, fs, fn = nd - 1, ns - 1, n - 1
    dof = (fd, fs, fn, fd * fs, fd * fn, fs * fn, fd * fs * fn)
    return {k: out[k] / f for k, f in zip(EFFECTS, dof, strict=True)}


def test_draws_seeds_mean_squares_match_least_squares_and_the_ems_solution():
    rng = np.random.default_rng(1)
    y = _three_way(rng, 3, (2, 3, 6), _SD)
    c = draws_seeds_components(y)
    for j in range(3):
        ref = _anova_by_least_squares(y[j])
        for k in EFFECTS:
            assert c[f"ms_{k}"][j] == pytest.approx(ref[k], rel=1e-9), k
    # Large components: nothing truncated or pooled, so v is the plain EMS solution and nu the
    # Satterthwaite dof of MS_d + MS_s + MS_i - MS_ds - MS_di - MS_si + MS_err (+-1 each).
    y = _three_way(rng, 200, (4, 5, 30), dict(_SD, draw=3.0, seed=3.0, draw_seed=2.0))
    c = draws_seeds_components(y)
    sign = {k: (1.0 if k in ("draw", "seed", "image", "err") else -1.0) for k in EFFECTS}
    dof = {"draw": 3, "seed": 4, "image": 29, "draw_seed": 12}
    dof |= {"draw_image": 87, "seed_image": 116, "err": 348}
    v_dsn = sum(sign[k] * c[f"ms_{k}"] for k in EFFECTS)
    ok = ~c["pooled"] & np.all([c[f"var_{k}"] > 0 for k in EFFECTS], axis=0)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(c["v"][ok], v_dsn[ok] / 600, rtol=1e-10)
    nu = v_dsn**2 / sum(c[f"ms_{k}"] ** 2 / dof[k] for k in EFFECTS)
    np.testing.assert_allclose(c["nu"][ok], nu[ok], rtol=1e-10)


def test_draws_seeds_reduces_to_the_two_way_design():
    rng = np.random.default_rng(2)
    y = _binary_crossed(rng, 400, 4, 50, 0.8)
    for y4, rows in ((y[:, None], "seed"), (y[:, :, None], "draw")):  # 1 x 4 and 4 x 1
        c2, c3 = crossed_components(y), draws_seeds_components(y4)
        for k in ("v", "nu"):
            np.testing.assert_array_equal(c3[k], c2[k])
        np.testing.assert_array_equal(c3[f"var_{rows}"], c2["var_seed"])
        np.testing.assert_array_equal(c3[f"pooled_{rows}"], c2["pooled"])
        np.testing.assert_array_equal(c3["var_image"], c2["var_image"])
        assert np.isnan(c3["var_draw_seed"]).all() and not c3["pooled_draw_seed"].any()
        r2, r3 = paired_t(y, 0.95), paired_t_draws(y4, 0.95)
        for k in ("se", "df", "p", "low", "high"):
            np.testing.assert_allclose(r3[k], r2[k], rtol=1e-12, atol=1e-15)


def test_draws_seeds_pooling_follows_the_preliminary_tests():
    rng = np.random.default_rng(3)
    # No row-side variance: each component pooled at about its test's level (dof 1: 0.10).
    c = draws_seeds_components(_three_way(rng, 4000, (2, 2, 40), dict(_SD, draw=0, seed=0,
                                                                        draw_seed=0)))  # fmt: skip
    assert c["pooled_draw_seed"].mean() == pytest.approx(pool_level(2), abs=0.02)
    # Once draw x seed is pooled the main-effect tests are exact F tests (MS_d / MS_di), at level;
    # otherwise quasi-F tests with 1-dof terms, only roughly at level (they pool more often).
    for k in ("draw", "seed"):
        given = c[f"pooled_{k}"][c["pooled_draw_seed"]].mean()
        assert given == pytest.approx(pool_level(2), abs=0.05), k
        assert 0.05 < c[f"pooled_{k}"].mean() < 0.4, k
    for k in ("draw", "seed", "draw_seed"):
        assert np.all(c[f"var_{k}"][c[f"pooled_{k}"]] == 0)
    assert np.array_equal(c["pooled"], c["pooled_draw"] | c["pooled_seed"] | c["pooled_draw_seed"])
    assert np.all(c["v"] > 0) and np.all(c["nu"] > 0)
    const = draws_seeds_components(np.zeros((2, 2, 2, 5)))
    assert np.all(const["v"] == 0) and np.all(np.isinf(const["nu"]))
