"""cnn_jax.stats against scipy and hand-computed references, bounds and determinism."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cnn_jax import stats as st
from cnn_jax.stats.crossed import crossed_variance, pool_level


def test_wilson_hand_computed_and_textbook_values():
    # k = 0: the interval is [0, z^2 / (n + z^2)].
    z2 = 1.959963984540054**2
    iv = st.wilson(0, 10)
    assert (iv.estimate, iv.low) == (0.0, 0.0)
    assert iv.high == pytest.approx(z2 / (10 + z2), abs=1e-12)  # 0.2775
    # Newcombe (1998, Stat. Med. 17:857, Table I): 81/263 -> 0.2553, 0.3662; 0/20 -> 0, 0.1611.
    iv = st.wilson(81, 263)
    assert (round(iv.low, 4), round(iv.high, 4)) == (0.2553, 0.3662)
    assert round(st.wilson(0, 20).high, 4) == 0.1611
    full = st.wilson(10, 10)
    assert full.high == 1.0 and full.low == pytest.approx(1 - z2 / (10 + z2), abs=1e-12)
    assert st.wilson(5, 10).fmt() == "50.0 [23.7, 76.3]"


@pytest.mark.parametrize("k,n", [(-1, 10), (11, 10), (0, 0)])
def test_wilson_rejects_bad_counts(k, n):
    with pytest.raises(ValueError, match="wilson: k="):
        st.wilson(k, n)


def test_mcnemar_exact_matches_scipy_binomtest_and_hand_value():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = rng.random(200) < 0.9, rng.random(200) < 0.85
        n_ab, n_ba = int(np.sum(a & ~b)), int(np.sum(~a & b))
        ref = scipy_stats.binomtest(n_ab, n_ab + n_ba, 0.5).pvalue
        assert st.mcnemar_exact(a, b) == pytest.approx(ref, rel=1e-12)
    # 1 vs 9 discordant: p = 2 * (1 + 10) / 2**10.
    a = np.array([1] + [0] * 9 + [1] * 5, bool)
    b = np.array([0] + [1] * 9 + [1] * 5, bool)
    assert st.mcnemar_exact(a, b) == pytest.approx(22 / 1024, rel=1e-12)
    assert st.mcnemar_exact(a, a) == 1.0


def test_holm_hand_computed_and_monotone():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1 -> max(0.06, 0.04)=0.06
    out = st.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(out, [0.03, 0.06, 0.06, 0.02])
    p = np.random.default_rng(0).random(50) ** 3
    adj = st.holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0) and np.all(adj >= p) and np.all(adj <= 1)
    np.testing.assert_allclose(st.holm([0.2]), [0.2])
    with pytest.raises(ValueError, match="p_values"):
        st.holm([0.1, 1.5])


def _scores(rng, s, n, acc):
    return (rng.random((s, n)) < acc).astype(np.uint8)


def test_intervals_are_deterministic_given_seed():
    rng = np.random.default_rng(1)
    y = _scores(rng, 5, 500, 0.9)
    a = st.hierarchical_bootstrap(y, n_boot=500, seed=7)
    assert a == st.hierarchical_bootstrap(y, n_boot=500, seed=7)
    assert a != st.hierarchical_bootstrap(y, n_boot=500, seed=8)
    v = y.mean(1)
    assert st.percentile_bootstrap(v, seed=3) == st.percentile_bootstrap(v, seed=3)


@pytest.mark.parametrize("fill", [0, 1])
@pytest.mark.parametrize("s", [1, 5])
def test_hierarchical_bootstrap_degenerate_scores_stay_in_range(fill, s):
    iv = st.hierarchical_bootstrap(np.full((s, 300), fill, np.uint8), n_boot=300)
    assert iv.low == iv.high == iv.estimate == fill


@pytest.mark.parametrize("s,acc", [(1, 0.999), (3, 0.995), (5, 0.002), (5, 0.5)])
def test_hierarchical_bootstrap_inside_unit_interval(s, acc):
    rng = np.random.default_rng(s)
    y = _scores(rng, s, 1000, acc)
    iv = st.hierarchical_bootstrap(y, n_boot=1000)
    assert 0.0 <= iv.low <= iv.estimate <= iv.high <= 1.0
    assert iv.estimate == pytest.approx(y.mean())
    one_seed = st.hierarchical_bootstrap(y[:1], n_boot=1000)
    w = st.wilson(int(y[0].sum()), y.shape[1])  # S = 1: an image bootstrap, ~ Wilson's width
    assert one_seed.high - one_seed.low == pytest.approx(w.high - w.low, rel=0.3, abs=2e-3)


def test_percentile_bootstrap_of_a_statistic_that_can_be_infinite():
    # A halving distance is inf when a resample's curve never halves: no inf - inf NaN bounds.
    v = np.array([1.0, 2.0, 3.0, 4.0, 9.0, 9.0])
    never = lambda x, axis: np.where(np.max(x, axis=axis) > 8, np.inf, np.mean(x, axis=axis))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        iv = st.percentile_bootstrap(v, never, n_boot=500)
    assert iv.estimate == np.inf and iv.high == np.inf and np.isfinite(iv.low) and iv.low >= 1
    finite = st.percentile_bootstrap(v, n_boot=500)  # all finite: linear interpolation as before
    reps = finite.low, finite.high
    assert all(np.isfinite(reps)) and reps[0] < reps[1]


def test_percentile_bootstrap_bounds_and_statistic():
    rng = np.random.default_rng(2)
    v = rng.random(8)
    iv = st.percentile_bootstrap(v, np.median, n_boot=1000)
    assert iv.estimate == pytest.approx(np.median(v))
    assert v.min() <= iv.low <= iv.high <= v.max()
    narrow = st.percentile_bootstrap(v, n_boot=1000, expand=False)
    wide = st.percentile_bootstrap(v, n_boot=1000)
    assert wide.low <= narrow.low and wide.high >= narrow.high
    with pytest.raises(ValueError, match="values"):
        st.percentile_bootstrap([1.0])


def test_paired_difference_sign_pairing_and_tost():
    rng = np.random.default_rng(4)
    base = _scores(rng, 5, 2000, 0.9)
    flips = rng.random(base.shape) < 0.3
    better = np.where(flips, 1, base).astype(np.uint8)  # a strictly better copy of base
    c = st.paired_difference(better, base, name="better", margin=0.05)
    assert c.delta == pytest.approx(better.mean() - base.mean())
    assert 0 < c.low < c.delta < c.high and c.p_value < 1e-3
    assert c.p_equivalence < 0.05  # ~ +3 points is inside +-5 points
    assert (c.n_seeds, c.n_images) == (5, 2000)
    same = st.paired_difference(base, base)
    assert (same.delta, same.p_value, same.low, same.high) == (0.0, 1.0, 0.0, 0.0)
    assert st.tost_p(c, 0.01) > 0.5  # cannot show |delta| < 1 point
    assert math.isclose(st.tost_p(c, 0.05), c.p_equivalence)
    with pytest.raises(ValueError, match="b_sn: shape"):
        st.paired_difference(base, base[:3])


def test_paired_difference_interval_stays_in_the_metric_range():
    """Two seeds with opposite, huge seed effects: the t-interval (1 dof) would pass +-100
    points; intersected with [-1, 1] it does not, and the point estimate and p are unchanged."""
    a = np.array([[1] * 50, [0] * 50], np.uint8)
    b = np.array([[0] * 50, [1] * 45 + [0] * 5], np.uint8)
    c = st.paired_difference(a, b)
    free = st.paired_difference(a, b, value_range=None)
    assert free.low < -1 or free.high > 1  # the unbounded interval leaves the range
    assert -1 <= c.low <= c.delta <= c.high <= 1 and c.p_value == free.p_value
    assert (c.low, c.high) == (max(free.low, -1), min(free.high, 1))
    with pytest.raises(ValueError, match="a_sn: scores in \\[0, 2\\] outside value_range"):
        st.paired_difference(a * 2, b)


def test_tost_from_samples():
    x = np.random.default_rng(0).normal(0.0, 0.002, size=999)
    assert st.tost_p(x, 0.01) == pytest.approx(1 / 1000)
    assert st.tost_p(x + 0.01, 0.01) > 0.4
    with pytest.raises(ValueError, match="margin"):
        st.tost_p(x, -1.0)


def test_pool_level_is_smaller_below_five_seeds():
    assert pool_level(3) < pool_level(5) == pool_level(10)


def test_crossed_variance_matches_the_gaussian_crossed_model():
    # y_si = a_s + b_i + e_si, all N(0, 1): Var(grand mean) = 1/S + 1/N + 1/(SN) = 0.224.
    rng = np.random.default_rng(5)
    m, s, n = 4000, 5, 50
    y = rng.normal(size=(m, s, 1)) + rng.normal(size=(m, 1, n)) + rng.normal(size=(m, s, n))
    v, nu = crossed_variance(y)
    assert v.mean() == pytest.approx(0.224, rel=0.03)
    assert y.mean(axis=(1, 2)).var() == pytest.approx(0.224, rel=0.06)
    assert s - 1 <= np.median(nu) <= 2 * (s - 1) and nu.min() > 1  # seed term dominates the dof
    v1, nu1 = crossed_variance(y[:, :1])
    np.testing.assert_allclose(v1, y[:, 0].var(axis=1, ddof=1) / n)
    assert np.all(nu1 == n - 1)
