"""cnn_jax.stats.censored against statsmodels, an independent KM, hand values and a textbook."""

import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cnn_jax.stats.censored import compare_times, kaplan_meier, km_median, logrank_p

# Freireich et al. (1963) 6-MP remission data (Gehan 1965): weeks, 1 = relapse, 0 = censored.
MP = [6, 6, 6, 7, 10, 13, 16, 22, 23, 6, 9, 10, 11, 17, 19, 20, 25, 32, 32, 34, 35]
MP_EVENT = [1] * 9 + [0] * 12
PLACEBO = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]
# A small study: first steps to target per seed, None = not reached by the horizon.
A_STEPS, B_STEPS = [120, 340, None, 90, 410, None], [300, None, None, 260, 700, 510]
HORIZON = 800


def _loop_km(times, events) -> list[tuple[float, float]]:
    """Product-limit by counting, at each event time, the events and the runs still at risk."""
    runs = [(float(t), bool(e)) for t, e in zip(times, events, strict=True)]
    surv, out = 1.0, []
    for t in sorted({t for t, e in runs if e}):
        d = sum(1 for u, e in runs if u == t and e)
        n = sum(1 for u, _ in runs if u >= t)
        surv *= 1 - d / n
        out.append((t, surv))
    return out


def _arm(steps):
    t = np.array([HORIZON if s is None else s for s in steps], dtype=float)
    return t, np.array([s is not None for s in steps])


def test_km_and_logrank_equal_statsmodels():
    survfunc = pytest.importorskip("statsmodels.duration.survfunc")
    (ta, ea), (tb, eb) = _arm(A_STEPS), _arm(B_STEPS)
    for t, e in ((ta, ea), (tb, eb), (np.array(MP, float), np.array(MP_EVENT))):
        sf = survfunc.SurvfuncRight(t, e.astype(float))
        med, (low, high) = km_median(t, e)
        ref_low, ref_high = sf.quantile_ci(0.5)
        assert med == (None if np.isnan(sf.quantile(0.5)) else sf.quantile(0.5))
        assert (low, high) == (ref_low, None if np.isinf(ref_high) else ref_high)
        _, surv, se = kaplan_meier(t, e)
        np.testing.assert_allclose(surv, sf.surv_prob, rtol=1e-12)
        np.testing.assert_allclose(se, sf.surv_prob_se, rtol=1e-12)
    group = np.r_[np.zeros(len(ta)), np.ones(len(tb))]
    _, ref = survfunc.survdiff(np.r_[ta, tb], np.r_[ea, eb].astype(float), group)
    assert logrank_p(ta, ea, tb, eb) == pytest.approx(ref, rel=1e-10)


def test_km_equals_an_independent_product_limit_and_the_textbook():
    for steps in (A_STEPS, B_STEPS):
        t, e = _arm(steps)
        ut, surv, _ = kaplan_meier(t, e)
        np.testing.assert_allclose(np.c_[ut, surv], _loop_km(t, e), rtol=1e-12)
        below = [u for u, s in _loop_km(t, e) if s < 0.5]
        assert km_median(t, e)[0] == (below[0] if below else None)
    # Freireich 6-MP vs placebo: KM medians 23 and 8 weeks, log-rank chi-square 16.79 (1 dof).
    assert km_median(MP, MP_EVENT)[0] == 23.0
    assert km_median(PLACEBO, [1] * 21)[0] == 8.0
    p = logrank_p(MP, MP_EVENT, PLACEBO, [1] * 21)
    assert scipy_stats.chi2.isf(p, 1) == pytest.approx(16.79, abs=0.005)


def test_median_not_reached_and_exact_half_is_not_below():
    # 2 of 4 reach: S falls to exactly 0.5 and stays, never below: not reached.
    assert km_median([100, 200, 800, 800], [1, 1, 0, 0])[0] is None
    assert km_median([800] * 3, [0] * 3) == (None, (None, None))


def test_rmst_delta_equals_the_hand_computation():
    r = compare_times(A_STEPS, B_STEPS, horizons_a=HORIZON, horizons_b=HORIZON, restriction=600)
    xa, xb = [120, 340, 600, 90, 410, 600], [300, 600, 600, 260, 600, 510]
    d = [a - b for a, b in zip(xa, xb, strict=True)]  # -180, -260, 0, -170, -190, 90
    mean = sum(d) / 6
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / 5 / 6)
    assert (r.delta, r.se, r.df, r.n_pairs) == (pytest.approx(mean), pytest.approx(se), 5, 6)
    assert r.p_value == pytest.approx(2 * scipy_stats.t.sf(abs(mean) / se, 5))
    half = scipy_stats.t.ppf(0.975, 5) * se
    assert (r.low, r.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert (r.rmst_a, r.rmst_b) == (pytest.approx(sum(xa) / 6), pytest.approx(sum(xb) / 6))
    assert (r.reached_a, r.reached_b) == (4, 4)
    out = r.as_dict()
    json.dumps(out, allow_nan=False)
    assert out["median_ci_a"][1] is None or isinstance(out["median_ci_a"][1], float)


def test_imputation_grows_with_the_budget_rmst_at_a_fixed_restriction_does_not():
    # The same runs trained for two budgets: arm b reaches the target late or never.
    t_a = [120, 150, 90, 200, 130]
    t_b = [800, 2500, math.inf, 1400, math.inf]
    imputed, rmst = [], []
    for horizon in (1000, 3000):
        reach_b = [t if t <= horizon else None for t in t_b]
        imputed.append(np.mean([a - (horizon if b is None else b) for a, b in zip(t_a, reach_b)]))
        r = compare_times(t_a, reach_b, horizons_a=horizon, horizons_b=horizon, restriction=1000)
        rmst.append(r.delta)
    assert imputed[1] < imputed[0] - 1000  # the imputed delta grows with the budget
    assert rmst[0] == rmst[1]  # the same estimand at both budgets


def test_identical_differences_give_the_exact_sign_test():
    r = compare_times([100] * 5, [150] * 5, horizons_a=500, horizons_b=500, restriction=500)
    assert (r.delta, r.se, r.low, r.high) == (-50.0, 0.0, -50.0, -50.0)
    assert r.p_value == pytest.approx(2 * 0.5**5)
    same = compare_times([None] * 3, [None] * 3, horizons_a=500, horizons_b=500, restriction=400)
    assert (same.delta, same.p_value, same.logrank_p, same.median_a) == (0.0, 1.0, None, None)


def test_per_seed_horizons_and_errors():
    r = compare_times([10, None], [20, 30], horizons_a=[100, 50], horizons_b=60, restriction=50)
    assert r.rmst_a == 30.0 and r.reached_a == 1
    kw = dict(horizons_a=100, horizons_b=100)
    with pytest.raises(ValueError, match=r"^restriction: 150; allowed: \(0, 100\]"):
        compare_times([10, 20], [30, 40], restriction=150, **kw)
    with pytest.raises(ValueError, match="^b_steps: 3 runs but a_steps has 2"):
        compare_times([10, 20], [30, 40, 50], restriction=50, **kw)
    with pytest.raises(ValueError, match="^a_steps: 1 pair"):
        compare_times([10], [30], restriction=50, **kw)
    with pytest.raises(ValueError, match="^a_steps: .*its horizon"):
        compare_times([10, 120], [30, 40], restriction=50, **kw)
    with pytest.raises(ValueError, match="^horizons_b: "):
        compare_times([10, 20], [30, 40], horizons_a=100, horizons_b=[100] * 3, restriction=50)
