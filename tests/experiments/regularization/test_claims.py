"""The regularizer study on the claims engine: its declarations, the fresh path on a tiny
synthetic study, the margin rule, and budget dependence judged as an interaction."""

from __future__ import annotations

import json

import ml_collections
import numpy as np
import pytest

from cnn_jax.outputs import predictions
from cnn_jax.stats.claims import Claim, Estimate, Kind
from experiments.regularization import analysis, claims, evidence, report, stopping, variants
from experiments.regularization.configs import base as regularization_base

CHOSEN = {"baseline": "baseline_lr0.003", "augment": "augment_s0.5_lr0.003"}
IMAGES = 300


def _exp(**kw) -> ml_collections.ConfigDict:
    exp = regularization_base.get_config().experiment
    exp.variants, exp.sizes, exp.tune_size = ("baseline", "augment"), (100, 400), 100
    exp.controls, exp.control_pairs = (), ()
    exp.update(kw)
    return exp


def test_declarations_put_the_budgets_of_the_tuning_size_in_one_claim():
    declared = claims.declare(_exp(), CHOSEN)
    by_text = {d.claim.text: d for d in declared}
    tune = by_text["augment helps at n=100"]
    assert list(tune.cells) == ["1x", "3x", "converged"]
    assert tune.cells["3x"] == (("augment_s0.5_lr0.003", "100", "3x"),
                                ("baseline_lr0.003", "100", "3x"))  # fmt: skip
    assert list(by_text["augment helps at n=400"].cells) == ["converged"]
    stop = by_text["early stopping helps"]
    assert stop.cells["converged"][1] == ("baseline_lr0.003", "100", "3x")
    assert all(d.claim.kind is Kind.SUPERIORITY and d.claim.margin.relative == 0.2
               for d in declared)  # fmt: skip


def test_controls_and_pairs_name_what_they_compare():
    chosen = dict(
        CHOSEN,
        pooling="pool",
        **{"adamw.strided_wide": "wide", "momentum.baseline": "mb", "momentum.l2": "ml2"},
    )
    exp = _exp(controls=("adamw.pooling", "momentum.l2"),
               control_pairs=(("adamw.pooling", "adamw.strided_wide"),))  # fmt: skip
    declared = {d.claim.text: d.claim for d in claims.declare(exp, chosen)}
    assert (declared["adamw.pooling helps"].a, declared["adamw.pooling helps"].b) == (
        "pool", "baseline_lr0.003")  # fmt: skip
    assert declared["momentum.l2 helps"].b == "mb"
    assert "SGD with momentum" in declared["momentum.l2 helps"].what
    assert "FLOPs" in declared["adamw.pooling beats adamw.strided_wide"].what


def test_margin_rule_is_relative_and_an_old_absolute_margin_is_refused():
    m = claims.margin_of(_exp())
    assert m.resolve(0.05)[0] == pytest.approx(0.01) and m.resolve(0.005)[0] == 0.0025
    old = _exp()
    old.margin = 0.01
    with pytest.raises(ValueError, match="^experiment.margin: .*margin_relative.*margin_floor"):
        claims.margin_of(old)
    with pytest.raises(ValueError, match=r"^experiment.margin_relative: 0(\.0)?; allowed"):
        claims.margin_of(_exp(margin_relative=0))
    with pytest.raises(ValueError, match="^experiment.margin_floor: -0.1; allowed"):
        claims.margin_of(_exp(margin_floor=-0.1))


def _run(tmp_path, setting, n, mode, draw, seed, correct):
    path = tmp_path / f"n{n}_{mode}_d{draw}" / setting.name / f"seed_{seed}"
    predictions.save(
        predictions.path_of(path, "test"),
        labels_n=np.zeros(IMAGES, np.int64),
        top1_n=np.where(correct, 0, 1),
        p_correct_n=correct.astype(np.float32),
    )
    results = {"best_epoch": 3, "epochs": 9, "num_params": 10, "num_seeds": 1,
               "forward_flops_per_example": 20, "train_time_sec": 1.0}  # fmt: skip
    return {"setting": setting, "n": n, "draw": draw, "seed": seed, "mode": mode,
            "run_dir": str(path), "results": results}  # fmt: skip


@pytest.fixture
def fresh(tmp_path):
    return _study(tmp_path)


def _study(tmp_path, capped_at_400: bool = False):
    """A tiny synthetic study: augment strictly better than the baseline on the same images
    at every (n, budget); 2 draws x 2 seeds converged, draw 0 x 2 seeds at 1x / 3x.
    capped_at_400: augment's converged runs at n=400 never stopped early (trainer's flag)."""
    rng = np.random.default_rng(0)
    base = variants.Setting("baseline", None, 3e-3)
    aug = variants.Setting("augment", 0.5, 3e-3)
    rows = []
    shared, up = rng.random(IMAGES) < 0.7, rng.random(IMAGES) < 0.4  # hard images, gains
    for n, mode, draws in [(100, "converged", (0, 1)), (400, "converged", (0, 1)),
                           (100, "1x", (0,)), (100, "3x", (0,))]:  # fmt: skip
        for draw in draws:
            for seed in (0, 1):
                b = shared ^ (rng.random(IMAGES) < 0.02)  # a few images differ per run
                rows.append(_run(tmp_path, base, n, mode, draw, seed, b))
                rows.append(_run(tmp_path, aug, n, mode, draw, seed, b | up))
                if mode == "converged":
                    for row in rows[-2:]:
                        capped = capped_at_400 and n == 400 and row["setting"] is aug
                        row["results"]["stopped_early"] = not capped
    config = ml_collections.ConfigDict({"experiment": _exp()})
    tuning = {"chosen": {"baseline": base.as_dict(), "augment": aug.as_dict()}}
    return config, analysis.analyse(config, tuning, rows)


def test_fresh_path_judges_declared_claims_with_draws_and_seeds_crossed(fresh):
    _, out = fresh
    by_text = {c["text"]: c for c in out["claims"]}
    tune = by_text["augment helps at n=100"]
    assert {b: v["label"] for b, v in tune["budgets"].items()} == dict.fromkeys(
        ("1x", "3x", "converged"), "held")  # fmt: skip
    assert tune["budget_label"] in ("consistent across budgets", "budget-dependent")
    conv = tune["budgets"]["converged"]["estimate"]
    assert conv["method"] == evidence.DRAWS_SEEDS and conv["extra"]["draws"] == 2
    assert set(conv["components"]) == {"seed", "image", "residual"}
    assert conv["reference_error"] == pytest.approx(
        1 - out["levels"][0]["test_accuracy"]["estimate"], abs=0.2
    )
    assert out["zhang"]["400"]["held"] == ["augment_s0.5_lr0.003"]
    assert "verdicts" not in out and "comparisons" not in out and "budgets" not in out
    json.dumps(out)
    table = report.helps_table(out["claims"])
    assert "| augment helps at n=100 |" in table and "across budgets" in table
    stop = report.controls_table(out["claims"])  # early stopping: inconclusive, powered
    assert "early stopping helps" in stop and "What would decide" in stop


def test_a_converged_claim_on_capped_runs_says_so_and_the_stops_are_tabled(tmp_path):
    """Runs where early stopping never triggered are marked per run, per cell and per claim."""
    _, out = _study(tmp_path, capped_at_400=True)
    by_text = {c["text"]: c for c in out["claims"]}
    capped = by_text["augment helps at n=400"]
    assert capped["capped"] == "converged rests on capped runs: a 4/4, b 0/4 never stopped early"
    assert capped["capped"] in capped["what"] and out["capped_claims"] == 1
    assert by_text["augment helps at n=100"]["capped"] is None
    assert capped["capped"] in report.helps_table(out["claims"])
    lv = {(x["setting"].split("_")[0], x["n"], x["mode"]): x for x in out["levels"]}
    assert lv[("augment", "400", "converged")]["stopping"]["capped"] == 4
    assert "stopping" not in lv[("augment", "100", "1x")]
    table = stopping.stopping_table(out["levels"])
    capped_row = "| augment_s0.5 | augmentation, strength 0.5 | 400 | 4 | 9 | 5 | 3* 3* 3* 3* |"
    assert capped_row + " 3 [3, 3] | 4/4 |" in table
    assert "| baseline | no regularizer | 400 | 4 | 9 | 5 | 3 3 3 3 | 3 [3, 3] | 0/4 |" in table


def test_capped_reads_the_trainer_flag_else_the_best_epoch_within_patience_of_the_cap():
    assert stopping.capped(3, 9, 4, stopped_early=False) is True
    assert stopping.capped(9, 9, 4, stopped_early=True) is False
    assert stopping.capped(6, 9, 4) is True  # 3 non-improving epochs left: patience 4 unmet
    assert stopping.capped(5, 9, 4) is False  # 4 non-improving evaluations: it stopped
    assert stopping.capped(None, None, 4) is None  # a fixed budget: no early stopping


def test_rows_that_are_no_full_grid_fall_back_to_one_factor():
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 50)) < 0.8, rng.random((3, 50)) < 0.6
    keys = [(0, 0), (0, 1), (1, 0)]  # draw 1 lacks seed 1
    assert evidence.grid_shape(keys) is None and evidence.grid_shape(keys[:2]) == (1, 2)
    e = evidence.fresh_estimate(a, b, keys, 0.2)
    assert e.method == evidence.FLAT and e.n_seeds == 3
    assert set(e.components) == {"seed", "image", "residual"}  # what the power report reads


# MNIST record of record (first analysis): augmentation minus the tuned baseline at n = 1,000;
# (delta, se, dof, rows, baseline test accuracy) per budget, from results.json's comparisons.
AUGMENT_MNIST = {
    "1x": (0.02615, 0.0017347676189822044, 4.146337424721726, 2, 0.9348),
    "3x": (0.0344, 0.003081008481216197, 1.6955251356736236, 2, 0.93565),
    "converged": (0.036225, 0.0030447211646055577, 4.081885869239527, 4, 0.92895),
}


def test_same_effect_at_three_budgets_is_consistent_not_budget_dependent():
    """+2.61 / +3.44 / +3.62 pt: held, inconclusive (the 3x cell has 2 rows), held, in the
    record's family of 140 hypotheses. Comparing labels called this 'budget-dependent'; the
    interaction test finds no difference of effects, so the claim is consistent."""
    exp = _exp(sizes=(1000,), tune_size=1000)
    helps = [d for d in claims.declare(exp, CHOSEN) if d.role == "helps"]
    null = Estimate(0.0, 0.01, 10.0, 2, 10000, "null", reference_error=0.05)
    margin = claims.margin_of(exp)
    fillers = [  # the rest of the record's family: 32 more (claim, budget) cells, 4 tests each
        claims.Declared(Claim(f"null {i}", "x", "y", "acc", margin=margin), "helps", "1",
                        {"converged": (("x", "1", "c"), ("y", "1", "c"))})
        for i in range(32)
    ]  # fmt: skip

    def estimate(a, b):
        if a[0] == "x":
            return null
        d, se, df, rows, acc = AUGMENT_MNIST[a[2]]
        return Estimate(d, se, df, rows, 10000, "stored", reference_error=1 - acc)

    out = claims.judge_study(helps + fillers, estimate)
    augment = out[0]
    assert out[0]["budgets"]["1x"]["family_size"] == 140
    labels = {b: v["label"] for b, v in augment["budgets"].items()}
    assert labels == {"1x": "held", "3x": "inconclusive", "converged": "held"}
    assert all(i["p_holm"] >= 0.05 for i in augment["interactions"])
    assert augment["budget_label"] == "consistent across budgets"
