"""The statistics calibration study: simulated seeds x images studies with a known truth."""

import numpy as np
import pytest

from cnn_jax import stats as st
from cnn_jax.stats.crossed import (
    EFFECTS,
    draws_seeds_components,
    level_intervals,
    paired_t,
)
from experiments.calibration import main as cal

# Calibration on simulated studies with a known truth (experiments/calibration/main.py), in the
# configuration the experiments use: 5 seeds x 1,000-10,000 test images at ~99% accuracy.
# `python -m experiments.calibration.main` prints the full table (3, 10 seeds, seed-heavy, ...).


@pytest.mark.slow
def test_hierarchical_bootstrap_covers_the_population_accuracy():
    sc = cal.SCENARIOS["mnist"]
    r = cal.level_coverage(sc, 5, 1000, sims=2000, n_boot=1000)
    assert 0.93 <= r["coverage"] <= 0.97, r
    # The batched path the calibration measures is the public function's.
    y = cal.simulate(np.random.default_rng(0), sc, 1, 5, 1000, [0.0])[0]
    iv = st.hierarchical_bootstrap(y[0], n_boot=1000, seed=1)
    _, low, high = level_intervals(y, 1000, 0.95, 1)
    assert (iv.low, iv.high) == pytest.approx((low[0], high[0]), abs=1e-6)


@pytest.mark.slow
def test_paired_difference_covers_the_true_difference():
    # Seed variance dominant (Fashion-like): calibrated. Little seed variance (MNIST-like): 5 seeds
    # cannot rule a seed component out, so the interval is conservative (~98%), never below 93%.
    r = cal.paired_coverage(cal.SCENARIOS["fashion"], 5, 1000, delta=0.002, sims=2000)
    assert 0.93 <= r["coverage"] <= 0.97, r
    r = cal.paired_coverage(cal.SCENARIOS["mnist"], 5, 1000, delta=0.002, sims=2000)
    assert 0.93 <= r["coverage"] <= 0.99, r
    sc = cal.SCENARIOS["mnist"]
    a, b = cal.simulate(np.random.default_rng(1), sc, 1, 5, 2000, [0.1, 0.0])
    c = st.paired_difference(a[0], b[0])
    ref = paired_t(a.astype(np.float64) - b, 0.95)
    assert (c.low, c.high, c.p_value) == pytest.approx((ref["low"][0], ref["high"][0], ref["p"][0]))


@pytest.mark.slow
def test_holm_keeps_family_wise_error_under_global_null():
    # 10 variants vs one shared baseline, all identical, seed variance dominant; Holm needs valid
    # far tails (alpha / 10): pooling every truncated seed component away gave 0.065 here.
    r = cal.family_error(cal.SCENARIOS["fashion"], 5, 1000, k=10, sims=2000)
    assert r["fwer_holm"] <= 0.05, r
    assert r["fwer_unadjusted"] > 0.1, r  # without Holm 10 tests at 5% err far more often


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [2, 3, 4])
def test_holm_keeps_family_wise_error_with_few_seeds(seeds):
    # The hardest regime: seed variance dominant near 99% accuracy with 2-4 seeds, where the F test
    # rarely detects the seed component; pooling at the 5-seed level (0.25) gave 0.107 / 0.066 /
    # 0.045 here, hence `pool_level`.
    r = cal.family_error(cal.SCENARIOS["mnist-seed-heavy"], seeds, 2000, k=10, sims=2000)
    assert r["fwer_holm"] <= 0.05, r


def test_calibration_record_needs_the_full_table():
    with pytest.raises(SystemExit):
        cal.main(["--quick", "--record"])


def test_calibration_readme_tables_one_row_per_scenario():
    rows = [
        {"what": "fwer", "scenario": "mnist", "seeds": 3, "images": 2000, "fwer_holm": 0.029},
        {"what": "fwer", "scenario": "mnist", "seeds": 5, "images": 2000, "fwer_holm": 0.035},
        {"what": "fwer", "scenario": "fashion", "seeds": 5, "images": 2000, "fwer_holm": 0.041},
    ]
    text = cal.readme(rows, 2000)
    assert "| scenario | S=3, N=2000 | S=5, N=2000 |" in text
    assert "| mnist | 0.029 | 0.035 |" in text and "| fashion | - | 0.041 |" in text
    assert "coverage" not in text.split("**")[1]  # only the tables that have rows


def test_truth_without_draws_is_unchanged():
    sc = cal.SCENARIOS["fashion"]
    x, w = np.polynomial.hermite_e.hermegauss(96)
    sd = np.sqrt(sc.sd_img**2 + sc.kappa**2 + sc.tau**2)
    ref = float((1 / (1 + np.exp(-(sc.mu + sd * x))) * w).sum() / w.sum())
    assert cal.truth(sc) == pytest.approx(ref, rel=1e-14)


def test_simulate_draws_crosses_seeds_with_draws():
    # Only a seed shift: rows of one seed agree across draws, rows of different seeds do not.
    sc = cal.Scenario("seed-only", mu=0.0, sd_img=0.5, tau=2.0, kappa=0.0)
    y = cal.simulate_draws(np.random.default_rng(0), sc, 300, 2, 2, 400, [0.0])[0]
    rows = y.mean(axis=3)  # [m, draw, seed]
    same = np.corrcoef(rows[:, 0, 0], rows[:, 1, 0])[0, 1]
    other = np.corrcoef(rows[:, 0, 0], rows[:, 1, 1])[0, 1]
    assert same > 0.9 and abs(other) < 0.2
    assert cal._analyses(1, 4).keys() == cal._analyses(4, 1).keys() == {"one factor"}


def test_draws_x_seeds_variance_matches_the_simulated_grand_mean_variance():
    # 2 draws x 2 seeds, draw effect dominant: the expected-mean-squares combination is unbiased
    # for the grand mean's variance (its truncation at 0 only adds); flattening the rows to one
    # factor misses about 2/3 of the draw and seed main effects' variance (it treats rows that
    # share a draw or a seed as independent).
    sc = cal.DESIGN_SCENARIOS["mnist-draw-heavy"]
    a, b = cal.simulate_draws(np.random.default_rng(1), sc, 3000, 2, 2, 500, [0.0, 0.0])
    d = a.astype(np.float64) - b
    brute = d.mean(axis=(1, 2, 3)).var()
    c = draws_seeds_components(d)
    sign = {k: 1.0 if k in ("draw", "seed", "image", "err") else -1.0 for k in EFFECTS}
    ems = sum(sign[k] * c[f"ms_{k}"] for k in EFFECTS) / (4 * 500)
    assert ems.mean() == pytest.approx(brute, rel=0.08)
    assert c["v"].mean() > 0.95 * brute
    flat = paired_t(d.reshape(3000, 4, 500), 0.95)["se"] ** 2
    assert flat.mean() < 0.8 * brute


def test_designs_of_record_flattened_rows_break_holm_and_the_crossed_analysis_does_not():
    sc = cal.DESIGN_SCENARIOS["mnist-draw-heavy"]
    cov = cal.design_coverage(sc, 2, 2, 2000, sims=600)
    assert cov["draws x seeds"]["coverage"] >= 0.95 and cov["one factor"]["coverage"] < 0.93
    fwer = cal.design_family_error(sc, 2, 2, 1000, sims=500)
    assert fwer["draws x seeds"]["fwer_holm"] <= 0.05 < fwer["one factor"]["fwer_holm"]


def test_calibration_readme_tables_the_designs_of_record():
    base = {"what": "fwer_design", "scenario": "mnist-draw-heavy", "images": 2000}
    rows = [
        base | {"draws": 2, "seeds": 2, "analysis": "one factor", "fwer_holm": 0.118},
        base | {"draws": 2, "seeds": 2, "analysis": "draws x seeds", "fwer_holm": 0.002},
        base | {"draws": 1, "seeds": 2, "analysis": "one factor", "fwer_holm": 0.03},
    ]
    text = cal.readme(rows, 2000)
    head = "| scenario | 1x2 both, N=2000 | 2x2 one factor, N=2000 | 2x2 draws x seeds, N=2000 |"
    assert head in text and "| mnist-draw-heavy | 0.030 | 0.118 | 0.002 |" in text
