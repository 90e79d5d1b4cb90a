"""Memorization study (Zhang et al. 2017): conditions, censored time to fit, the claims."""

from __future__ import annotations

import json
from pathlib import Path

import ml_collections
import numpy as np
import pytest

from cnn_jax.outputs import predictions
from experiments.memorization import claims, conditions, fit, main, report
from experiments.memorization.configs import mnist, smoke


def test_conditions_corrupt_the_data_and_add_one_regularizer():
    cfgs = conditions.configs(mnist.get_config())
    assert len(cfgs) == 2 * 4 + 1  # true / random labels x 4 regularizers, shuffled pixels x none
    rand = cfgs["random_labels-dropout"]
    assert rand.dataset.options.corrupt == "random_labels" and rand.model.head_dropout == 0.5
    assert cfgs["true_labels-weight_decay"].optim.l2 == 5e-4
    assert cfgs["shuffled_pixels-none"].dataset.options.corrupt == "shuffled_pixels"
    assert cfgs["true_labels-none"].train.log_every_steps == 20  # one window = one epoch
    bad = mnist.get_config()
    bad.experiment.data = ("noise",)
    with pytest.raises(ValueError, match="^experiment.data: \\['noise'\\]; allowed: "):
        conditions.configs(bad)


def test_declared_claims_are_typed_as_the_study_says():
    declared = {c.text: c for c in claims.declare(mnist.get_config().experiment)}
    slow = declared["random labels take longer to fit than true labels (none)"]
    assert slow.kind.value == "superiority" and slow.unit == " epochs" and slow.better == 1
    fits = declared["dropout does not prevent fitting random labels"]
    assert fits.kind.value == "non_inferiority" and fits.margin.value == 0.01
    assert "random labels take longer to fit than shuffled pixels" in declared
    assert "none does not prevent fitting random labels" not in declared


def _write_run(tmp_path, variant, seed, accs, train_correct):
    run_dir = tmp_path / variant / f"seed_{seed}"
    run_dir.mkdir(parents=True)
    lines = [json.dumps({"split": "train", "step": 10 * (i + 1), "accuracy": a})
             for i, a in enumerate(accs)]  # fmt: skip
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    labels = np.zeros(len(train_correct), np.int64)
    predictions.save(predictions.path_of(run_dir, "train"), labels_n=labels,
                     top1_n=np.where(train_correct, 0, 1),
                     p_correct_n=train_correct.astype(np.float32))  # fmt: skip
    results = {"final": {"test": {"accuracy": 0.1}}}
    return {"variant": variant, "seed": seed, "run_dir": str(run_dir), "results": results}


def test_a_run_that_never_fits_is_censored_and_the_engine_judges_the_time(tmp_path):
    """True labels fit at epoch 2, random labels at 8 or never (censored at the cap of 10)."""
    rows, ones = [], np.ones(300, bool)
    for seed in range(4):
        rows.append(_write_run(tmp_path, "true_labels-none", seed, [0.5, 0.995] + [1.0] * 8, ones))
        late = [0.2] * 7 + [0.995, 1.0, 1.0] if seed < 2 else [0.2] * 10
        rows.append(_write_run(tmp_path, "random_labels-none", seed, late, ones))
    per = fit.per_condition(rows, 0.99, steps_per_epoch=10)
    claims.add_horizons(per, 10)
    assert per["random_labels-none"]["epochs"] == [8.0, 8.0, None, None]
    assert per["true_labels-none"]["epochs"] == [2.0] * 4
    exp = ml_collections.ConfigDict({
        "data": ("true_labels", "random_labels"), "regularizers": {"none": ()},
        "fit_threshold": 0.99, "fit_margin": 0.01,
    })  # fmt: skip
    (result,) = [r.as_dict() for r in claims.judge_study(exp, per)]
    cap = result["budgets"]["cap"]
    assert cap["estimate"]["delta"] == pytest.approx(9.0 - 2.0)  # RMST at tau = 10: (8+8+10+10)/4
    assert cap["label"] == "held" and "a 2/4, b 4/4" in result["what"]


def test_fit_claim_is_paired_per_training_image(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(3):
        plain = rng.random(400) < 0.999
        rows.append(_write_run(tmp_path, "random_labels-none", seed, [1.0], plain))
        rows.append(_write_run(tmp_path, "random_labels-dropout", seed, [1.0], plain))
    per = fit.per_condition(rows, 0.99, steps_per_epoch=10)
    claims.add_horizons(per, 10)
    exp = ml_collections.ConfigDict({
        "data": ("random_labels",), "regularizers": {"none": (), "dropout": ()},
        "fit_threshold": 0.99, "fit_margin": 0.01,
    })  # fmt: skip
    (result,) = [r.as_dict() for r in claims.judge_study(exp, per)]
    assert result["kind"] == "non_inferiority" and result["result"] == "held"
    assert result["budgets"]["cap"]["estimate"]["n_images"] == 400


def test_zhang_figures_carry_their_source():
    table = report.zhang_table()
    assert "| Inception | random labels | 100.00 | 9.78 |" in table
    assert (
        "four agree" in report.readme_markdown.__doc__
        or "T x4" in Path(report.__file__).read_text()
    )


@pytest.mark.slow
def test_smoke_study_end_to_end(tmp_path, data_dir):
    config = smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    results = main.run_experiment(config, tmp_path)
    assert set(results["conditions"]) == {
        "true_labels-none", "true_labels-dropout", "random_labels-none",
        "random_labels-dropout", "shuffled_pixels-none",
    }  # fmt: skip
    assert (tmp_path / "runs/random_labels-none/seed_1/predictions/train.npz").exists()
    texts = {c["text"] for c in results["claims"]}
    assert "dropout does not prevent fitting random labels" in texts
    assert "Zhang et al. 2017, Table 1" in (tmp_path / "readme.md").read_text()
