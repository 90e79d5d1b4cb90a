"""The claims engine: claim types, Holm family, compatible intervals, budgets, identities.

Each case the old per-study logic got wrong has a test built from the numbers of record.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cnn_jax.stats.budgets import across_budgets, interaction
from cnn_jax.stats.claims import Claim, Estimate, Kind, Margin
from cnn_jax.stats.evidence import estimate_from_record, paired_estimate, pooled_from_dof
from cnn_jax.stats.judge import judge


def est(delta, se, df=9.0, n_seeds=5, n_images=10_000, **kw) -> Estimate:
    return Estimate(delta, se, df, n_seeds, n_images, "test", **kw)


def test_no_better_claim_is_held_when_a_is_significantly_worse():
    """'A deep linear CNN is no better than one conv' (Fashion, 3x: -2.13 pt) was coded a > b
    and printed 'contradicted'; significantly worse supports 'no better'."""
    claim = Claim("deep linear no better", "deep", "one", "accuracy",
                  Kind.NON_SUPERIORITY, margin=Margin(value=0.02))  # fmt: skip
    [v] = judge([(claim, {"3x": est(-0.0213, 0.0021, 11.6)})])
    assert v.label == "held"
    better = Claim("deep linear better", "deep", "one", "accuracy",
                   Kind.NON_SUPERIORITY, margin=Margin(value=0.02))  # fmt: skip
    [w] = judge([(better, {"3x": est(+0.05, 0.002, 11.6)})])
    assert w.label == "contradicted"  # better by more than the margin


def test_superiority_labels_and_one_family():
    claim = Claim("a beats b", "a", "b", "accuracy")
    [held] = judge([(claim, {"1x": est(0.02, 0.002)})])
    [contra] = judge([(claim, {"1x": est(-0.02, 0.002)})])
    [unsure] = judge([(claim, {"1x": est(0.001, 0.002)})])
    assert (held.label, contra.label, unsure.label) == ("held", "contradicted", "inconclusive")
    # Ten claims in one family: each has 2 hypotheses, Holm over 20.
    vs = judge([(Claim(f"c{i}", "a", "b", "accuracy"), {"1x": est(0.001, 0.002)})
                for i in range(10)])  # fmt: skip
    assert {v.family_size for v in vs} == {20}


def test_better_minus_one_means_lower_is_better():
    faster = Claim("fewer steps", "relu", "tanh", "steps", better=-1, scale=1, unit=" steps")
    [v] = judge([(faster, {"1x": est(-30.0, 5.0, 4.0)})])
    assert v.label == "held"


def test_relative_margin_cannot_excuse_doubling_the_error():
    """blur - max on shifted accuracy: max's error 2.3%. The old 2-point margin let a delta of
    -1.5 pt pass as 'equivalent'; 20% of the error (0.46 pt) does not."""
    margin = Margin(relative=0.2, floor=0.002)
    assert margin.resolve(0.023)[0] == pytest.approx(0.0046)
    assert margin.resolve(0.001) == (0.002, "absolute floor (above 20% of b's error 0.1%)")
    capped = Margin(relative=0.2, floor=0.002, cap=0.01)
    assert capped.resolve(0.88) == (0.01, "absolute cap (below 20% of b's error 88.0%)")
    claim = Claim("blur helps", "blur", "max", "accuracy_shifted", margin=margin)
    e = est(-0.015, 0.002, 499.0, reference_error=0.023)
    [v] = judge([(claim, {"1x": e})])
    assert v.label == "contradicted"
    [w] = judge([(claim, {"1x": est(-0.0005, 0.0008, 499.0, reference_error=0.023)})])
    assert w.label == "equivalent" and w.margin == pytest.approx(0.0046)
    assert "20% of b's error" in w.margin_rule


def test_exact_claims_are_checked_not_tested():
    """Kayhan circular padding: similar = dissimilar by construction; +0.0 [+0.0, +0.0] with
    p_TOST 0 was a test of an identity. Now: 'exact', no p-value, outside the family."""
    ident = Claim("circular padding cannot tell", "similar", "dissimilar", "accuracy",
                  Kind.EXACT, tolerance=1e-6)  # fmt: skip
    other = Claim("a beats b", "a", "b", "accuracy")
    record = {"delta": 0.0, "se": 0.0, "df": None, "n_seeds": 5, "n_images": 500}
    vs = judge([(ident, {"1x": estimate_from_record(record)}), (other, {"1x": est(0.02, 0.01)})])
    assert vs[0].label == "exact" and vs[0].tests == () and vs[0].p_holm is None
    assert vs[1].family_size == 2  # only the superiority claim's two hypotheses
    broken = estimate_from_record({**record, "delta": 0.01})
    assert judge([(ident, {"1x": broken})])[0].label == "contradicted"
    with pytest.raises(ValueError, match="tolerance"):
        Claim("x", "a", "b", "q", Kind.EXACT)


def test_simultaneous_interval_agrees_with_the_label():
    """d2_max - d0 consistency@2: +4.2 [+1.4, +7.0] per comparison read 'inconclusive' beside
    28 other comparisons; the simultaneous interval now says why (it includes 0)."""
    target = Claim("d2 helps", "d2_max", "d0", "consistency@2")
    others = [(Claim(f"c{i}", "x", "y", "q"), {"1x": est(0.003, 0.01, 5.0)}) for i in range(28)]
    vs = judge([(target, {"1x": est(0.042, 0.0115, 5.9, n_images=500)}), *others])
    v = vs[0]
    assert v.low > 0 and v.label == "inconclusive"
    assert v.sim_low < 0 < v.sim_high


def test_compatible_bounds_match_labels_on_random_families():
    rng = np.random.default_rng(0)
    for _ in range(20):
        claims = [
            (Claim(f"c{i}", "a", "b", "q", better=int(rng.choice([-1, 1]))),
             {"1x": est(rng.normal(0, 0.02), 0.005, 6.0)})
            for i in range(8)
        ]  # fmt: skip
        for v in judge(claims):
            s = v.claim.better
            low, high = (v.sim_low, v.sim_high) if s > 0 else (-v.sim_high, -v.sim_low)
            assert (v.label == "held") == (low >= 0), v
            assert (v.label == "contradicted") == (high <= 0), v


def test_holm_compatible_bound_when_all_rejected_is_bonferroni_or_null():
    claims = [(Claim(f"c{i}", "a", "b", "q"), {"1x": est(0.1, 0.001, 50.0)}) for i in range(3)]
    vs = judge(claims)
    # All 'held' hypotheses rejected, the 'contradicted' ones kept (|A| = 3).
    t = scipy_stats.t.ppf(1 - 0.05 / 3, 50.0)
    assert vs[0].label == "held" and vs[0].sim_low == 0.0
    assert vs[0].sim_high == pytest.approx(0.1 + t * 0.001)


def test_budget_dependence_is_an_interaction_not_a_label_change():
    """MNIST augmentation +2.61 / +3.44 / +3.62 pt across 1x / 3x / converged: held, then
    inconclusive on 2 rows at 3x, then held. Comparing labels said 'budget-dependent'."""
    claim = Claim("augmentation helps", "augment", "baseline", "accuracy")
    by_budget = {
        "1x": est(0.0261, 0.0017, 4.1, 2),
        "3x": est(0.0344, 0.0031, 1.7, 2),
        "converged": est(0.0362, 0.0030, 4.1, 4),
    }
    others = [(Claim(f"c{i}", "x", "y", "q"), {"1x": est(0.0, 0.002, 3.0)}) for i in range(31)]
    [r, *_] = across_budgets(judge([(claim, by_budget), *others]))  # the study's 35 comparisons
    assert [v.label for v in r.verdicts] == ["held", "inconclusive", "held"]
    assert r.budget_label == "consistent across budgets"
    assert r.result == "consistent across budgets"
    assert all(i.p_holm >= 0.05 for i in r.interactions)


def test_budget_dependent_needs_a_significant_interaction_or_sign_change():
    claim = Claim("x helps", "x", "base", "accuracy")
    grows = {"1x": est(0.001, 0.001, 50.0), "3x": est(0.03, 0.001, 50.0)}
    [r] = across_budgets(judge([(claim, grows)]))
    assert r.budget_label == "budget-dependent" and r.interactions[0].p_holm < 1e-6
    flips = {"1x": est(0.02, 0.002, 50.0), "3x": est(-0.02, 0.002, 50.0)}
    [f] = across_budgets(judge([(claim, flips)]))
    assert {v.label for v in f.verdicts} == {"held", "contradicted"}
    assert f.result == "budget-dependent"


def test_interaction_pairs_seeds_and_images_when_both_budgets_kept_them():
    rng = np.random.default_rng(1)
    shared = rng.normal(0, 1, (5, 400))  # seed x image effects both budgets share
    a1, a3 = shared + rng.normal(0, 0.1, (5, 400)), shared + rng.normal(0, 0.1, (5, 400))
    b = np.zeros((5, 400))
    e1 = paired_estimate(a1, b, reference_error=None)
    e3 = paired_estimate(a3, b, reference_error=None)
    paired = interaction(("1x", "3x"), e1, e3)
    unpaired = interaction(("1x", "3x"), est(e1.delta, e1.se, e1.df), est(e3.delta, e3.se, e3.df))
    assert "paired" in paired.method and paired.se < 0.5 * unpaired.se
    assert paired.difference == pytest.approx(e3.delta - e1.delta)


def test_paired_estimate_marks_pooled_seed_variance():
    rng = np.random.default_rng(2)
    no_seed = (rng.random((5, 2000)) < 0.9).astype(float)
    ref = (rng.random((5, 2000)) < 0.9).astype(float)
    e = paired_estimate(no_seed, ref)
    assert e.pooled is True and e.df in (1999.0, 4 * 1999.0)
    seeds = no_seed * (rng.random((5, 1)) < 0.7)  # whole seeds fail: a large seed component
    assert paired_estimate(seeds, ref).pooled is False
    assert pooled_from_dof(499.0, 5, 500) and pooled_from_dof(4.7, 5, 500) is False


def test_claim_and_margin_errors_are_one_line():
    for bad in (
        lambda: Margin(),
        lambda: Margin(value=0.01, relative=0.2),
        lambda: Margin(relative=-1),
        lambda: Claim("x", "a", "b", "q", Kind.EQUIVALENCE),
        lambda: Claim("x", "a", "b", "q", better=0),
    ):
        with pytest.raises(ValueError) as e:
            bad()
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="alpha"):
        judge([], alpha=1.5)
    with pytest.raises(ValueError, match="reference_error"):
        Margin(relative=0.2).resolve(None)


def test_verdict_dicts_are_json_safe():
    import json

    claim = Claim("eq", "a", "b", "q", Kind.EQUIVALENCE, margin=Margin(value=0.01))
    [r] = across_budgets(judge([(claim, {"1x": est(0.0, 0.001, math.inf)})]))
    d = json.loads(json.dumps(r.as_dict(), allow_nan=False))
    entry = d["budgets"]["1x"]
    assert entry["label"] == "equivalent" and entry["estimate"]["df"] is None


def test_zero_se_is_a_sign_flip_bound_not_a_zero_p():
    """Identical differences over 3 seeds (a seeds-only quantity) cannot give p below 1/8."""
    claim = Claim("fewer steps", "a", "b", "steps", better=-1, scale=1, unit=" steps")
    [v] = judge([(claim, {"1x": est(-10.0, 0.0, 2.0, n_seeds=3, n_images=1)})])
    held = next(t for t in v.tests if t["label"] == "held")
    assert held["p"] == pytest.approx(0.125) and v.label == "inconclusive"
    [w] = judge([(claim, {"1x": est(-10.0, 0.0, 2.0, n_seeds=5, n_images=500)})])
    assert w.label == "held"
