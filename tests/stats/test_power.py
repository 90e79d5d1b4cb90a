"""cnn_jax.stats.power: MDE vs simulation and the normal limit, components, designs, the CLI."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cnn_jax.stats.__main__ import main
from cnn_jax.stats.crossed import crossed_components
from cnn_jax.stats.power import (
    VarianceComponents,
    components_from_se,
    holm_alpha,
    minimum_detectable_effect,
    plan_claims,
    plan_line,
    power_at,
    required_design,
)
from tests.conftest import REPO, child_pythonpath


@pytest.mark.parametrize("sides", [1, 2])
def test_mde_is_rejected_with_the_stated_power_in_simulation(sides):
    n, alpha, reps = 6, 0.05, 40_000
    mde = minimum_detectable_effect(1 / math.sqrt(n), n - 1, alpha=alpha, power=0.8, sides=sides)
    x = np.random.default_rng(sides).normal(mde, 1.0, size=(reps, n))
    t = x.mean(axis=1) / (x.std(axis=1, ddof=1) / math.sqrt(n))
    crit = scipy_stats.t.isf(alpha / sides, n - 1)
    rate = np.mean(np.abs(t) > crit) if sides == 2 else np.mean(t > crit)
    assert rate == pytest.approx(0.8, abs=0.01)  # binomial sd 0.002


def test_mde_tends_to_the_normal_formula_at_large_df():
    z = scipy_stats.norm.isf(0.05 / 20) + scipy_stats.norm.ppf(0.9)
    assert minimum_detectable_effect(0.3, math.inf, alpha=0.05 / 20, power=0.9) == pytest.approx(
        0.3 * z, rel=1e-9
    )
    assert minimum_detectable_effect(0.3, 1e5, alpha=0.0025, power=0.9) == pytest.approx(
        0.3 * z, rel=1e-3
    )
    small = minimum_detectable_effect(0.3, 4, alpha=0.0025, power=0.9)
    assert small > 1.5 * 0.3 * z  # few dof cost power
    assert power_at(small, 0.3, 4, alpha=0.0025) == pytest.approx(0.9, abs=1e-9)
    assert minimum_detectable_effect(0.0, 4, alpha=0.05) == 0.0


def test_from_matrix_recovers_known_components():
    rng = np.random.default_rng(0)
    s, n, sd = 10, 60, (1.0, 2.0, 3.0)
    est = []
    for _ in range(200):
        d = sd[0] * rng.normal(size=(s, 1)) + sd[1] * rng.normal(size=(1, n))
        est.append(VarianceComponents.from_matrix(d + sd[2] * rng.normal(size=(s, n))))
    mean = [np.mean([getattr(c, f) for c in est]) for f in ("seed", "image", "residual")]
    np.testing.assert_allclose(mean, np.square(sd), rtol=0.1)
    assert (est[0].n_seeds, est[0].n_images) == (s, n)


def test_variance_and_dof_at_the_observed_design_match_crossed_variance():
    rng = np.random.default_rng(1)
    d = 2 * rng.normal(size=(6, 1)) + rng.normal(size=(1, 80)) + rng.normal(size=(6, 80))
    c, ref = VarianceComponents.from_matrix(d), crossed_components(d[None])
    assert not ref["pooled"][0]  # seed variance clear: no pooling, no truncation
    assert c.variance_at(6, 80) == pytest.approx(ref["v"][0], rel=1e-10)
    assert c.df_at(6, 80) == pytest.approx(ref["nu"][0], rel=1e-10)


def test_required_design_is_minimal_monotone_and_none_when_unreachable():
    c = VarianceComponents(seed=0.16, image=9.0, residual=100.0, n_seeds=5, n_images=10_000)
    kw = dict(alpha=0.0025, power=0.8)
    seeds = [required_design(c, e, images=10_000, **kw).seeds for e in (0.4, 0.5, 1.0, 2.0)]
    assert seeds == sorted(seeds, reverse=True) and seeds[0] > seeds[-1]
    d = required_design(c, 0.5, images=10_000, **kw)
    fewer = d.seeds - 1
    assert (
        d.power >= 0.8 > power_at(0.5, c.se_at(fewer, 10**4), c.df_at(fewer, 10**4), alpha=0.0025)
    )
    images = [required_design(c, e, seeds=30, **kw).images for e in (0.5, 1.0, 2.0)]
    assert images == sorted(images, reverse=True)
    # Seed-dominated: at 5 seeds no number of images gets se below sqrt(seed / 5).
    assert required_design(c, 0.5, seeds=5, **kw) is None
    assert required_design(c, 0.01, images=10_000, max_seeds=50, **kw) is None
    with pytest.raises(ValueError, match="exactly one of images"):
        required_design(c, 0.5, **kw)


def test_holm_alpha_and_components_from_se():
    assert holm_alpha(0.05, 20) == 0.0025
    with pytest.raises(ValueError, match="^family_size: 0"):
        holm_alpha(0.05, 0)
    c = components_from_se(0.2, n_seeds=5, n_images=500)
    assert (c.se_at(5, 500), c.se_at(5, 10**6), c.df_at(5, 500)) == (pytest.approx(0.2),) * 2 + (4,)
    assert c.se_at(20, 500) == pytest.approx(0.1)


def _claim(kind="superiority", margin=None, components=True, **est):
    estimate = dict(delta=0.0072, se=0.005, df=4.0, n_seeds=5, n_images=500, **est)
    if components:
        estimate["components"] = {"seed": 1.6e-5, "image": 9e-4, "residual": 1e-2}
    return dict(claim="blur2 - max: consistency", type=kind, label="inconclusive", margin=margin,
                family_size=29, alpha=0.05, estimate=estimate)  # fmt: skip


def test_plan_line_per_claim_type():
    line = plan_line(_claim())
    assert line.startswith(
        "blur2 - max: consistency (inconclusive): superiority: observed +0.72 pt"
    )
    assert "at 5 seeds x 500 images (Holm over 29, 80% power)" in line
    assert line.endswith("seeds x 500 images") and "an effect of +0.72 pt needs" in line
    assert "all variance taken as seed variance" in plan_line(_claim(components=False))
    per_seed = _claim(components=False, unit="steps")  # a time to target: one number per seed
    per_seed["estimate"]["n_images"] = 1
    assert "components not recorded" not in plan_line(per_seed)
    assert "at 5 seeds (Holm over 29" in plan_line(per_seed)
    assert "a distance of 1.7 pt needs" in plan_line(_claim("non_inferiority", 0.01))
    assert "null side of the margin" in plan_line(_claim("non_superiority", 0.005))
    assert "not reached within 1000 seeds" in plan_line(_claim("equivalence", 0.01))
    assert "no power to plan" in plan_line(_claim("exact"))
    with pytest.raises(ValueError, match=r"^claims\[0\]: margin: None"):
        plan_claims([_claim("equivalence")])


def test_plan_line_shows_a_minus_b_as_the_tables_do_and_marks_an_estimate_against_the_claim():
    lowers = dict(_claim(), claim="blur2 - max: drop", direction=-1)  # claimed: a - b < 0
    line = plan_line(lowers)
    assert "observed +0.72 pt (against the claim), minimum" in line
    assert "an effect of -0.72 pt needs" in line
    lowers["estimate"] = dict(lowers["estimate"], delta=-0.0072)
    line = plan_line(lowers)
    assert "observed -0.72 pt, minimum" in line and "an effect of -0.72 pt needs" in line
    assert "(against the claim)" in plan_line(dict(_claim(), estimate=lowers["estimate"]))


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=child_pythonpath())
    cmd = [sys.executable, "-m", "cnn_jax.stats", "plan", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=60)


def test_cli_prints_one_line_per_claim(tmp_path):
    claims = [_claim(), _claim("equivalence", 0.01, components=False), _claim("exact")]
    (tmp_path / "results.json").write_text(json.dumps({"claims": claims}))
    out = _cli("--record", str(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().split("\n")
    assert len(lines) == 3 and lines[0] == plan_line(claims[0])


def test_cli_design_question_and_one_line_errors(tmp_path, capsys):
    args = "plan --effect 0.5 --seed-sd 0.4 --image-sd 3 --residual-sd 10 --seeds 5 --images 10000"
    assert main([*args.split(), "--family", "20"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("to detect +0.5 pt at 80% power")
    assert main(["plan", "--record", str(tmp_path / "nope")]) == 2  # one interpreter is enough
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--record: {tmp_path / 'nope' / 'results.json'} not" in err
    (tmp_path / "results.json").write_text(json.dumps({"analysis": {}}))
    assert main(["plan", "--record", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results.json has no 'claims' list" in err
    assert main(["plan", "--effect", "0.5"]) == 2
    assert capsys.readouterr().err.startswith("python -m cnn_jax.stats plan: --seed-sd: missing")
