"""The regularizer study's design logic without training: variant overrides, the validation-only
tuning protocol (the test split cannot steer a choice), budgets and epochs per size, the paired
analysis on synthetic per-image predictions."""

from __future__ import annotations

import ml_collections
import numpy as np
import pytest

from cnn_jax.outputs import predictions
from experiments.regularization import analysis, runs, tuning, variants
from experiments.regularization.configs import base as regularization_base
from experiments.regularization.configs import smoke


def _exp():
    return regularization_base.get_config().experiment


def test_overrides_set_each_strength_and_refuse_a_missing_one():
    exp = _exp()
    assert variants.overrides("dropout", exp, 0.4) == {
        "model.head_dropout": 0.4,
        "model.conv_dropout": 0.2,
    }
    aug = variants.overrides("augment", exp, 2.0)
    assert aug["augment.rotation_degrees"] == 20.0 and aug["augment.crop_padding"] == 4
    assert aug["augment.scale_min"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="strength"):
        variants.overrides("dropout", exp, None)
    with pytest.raises(ValueError, match="strength"):
        variants.overrides("pooling", exp, 0.5)


def test_all_scales_every_chosen_strength_by_one_factor():
    exp = _exp()
    exp.all_components = ("dropout", "weight_decay", "batch_norm")
    out = variants.all_overrides(exp, {"dropout": 0.6, "weight_decay": 0.3}, 2.0)
    assert out["model.head_dropout"] == 0.9  # 1.2 capped: a rate must stay below 1
    assert out["optim.weight_decay"] == pytest.approx(0.6)
    assert out["model.batch_norm"] is True
    with pytest.raises(ValueError, match="no chosen strength"):
        variants.all_overrides(exp, {"dropout": 0.6}, 1.0)


def test_validation_view_drops_every_test_number():
    results = {
        "final": {"validation": {"accuracy": 0.8, "loss": 0.5}, "test": {"accuracy": 0.9}},
        "test_accuracy": 0.9,
        "best_epoch": 7,
    }
    view = tuning.validation_view(results)
    assert view == {"validation_accuracy": 0.8, "validation_loss": 0.5, "best_epoch": 7.0}
    s = variants.Setting("dropout", 0.5, 1e-3)
    with pytest.raises(ValueError, match="test numbers"):
        tuning.select([s], {s.name: dict(view, test_accuracy=0.9)})


def test_tuning_follows_validation_and_never_sees_test():
    """A fake trainer whose test accuracy is the reverse of validation: the choices must follow
    validation; every grid is strengths x rates; `all` uses the chosen strengths."""
    exp = _exp()
    exp.tune = ("dropout",)
    exp.all_components = ("dropout",)
    exp.controls = ("momentum.l2",)
    exp.controls_tune_lr = False
    seen = []

    def fake_train(settings, strengths):
        seen.append((list(settings), dict(strengths)))
        out = {}
        for s in settings:  # validation peaks at dropout 0.5, lr 3e-3, factor 1
            val = 0.9 - abs((s.strength or 0.5) - 0.5) - abs(np.log10(s.learning_rate / 3e-3))
            val -= 0.0 if s.factor in (None, 1.0) else 0.05
            out[s.name] = {"validation_accuracy": val, "validation_loss": 1 - val, "best_epoch": 3}
        return out

    record = tuning.tune_all(exp, fake_train)
    chosen = tuning.chosen_settings(record)
    assert chosen["dropout"] == variants.Setting("dropout", 0.5, 3e-3)
    assert chosen["all"].factor == 1.0
    assert len(record["grids"]["dropout"]) == len(exp.grids.dropout) * 3
    l2_settings = next(s for s, _ in seen if s[0].regularizer == "l2")
    assert {s.learning_rate for s in l2_settings} == {chosen["momentum.baseline"].learning_rate}
    all_strengths = next(st for s, st in seen if s[0].regularizer == "all")
    assert all_strengths["dropout"] == 0.5


def test_each_optimizer_tunes_decay_over_its_own_grid():
    """Decoupled decay under AdamW and under momentum differ by ~lr in scale: the momentum
    control takes experiment.optimizer_grids.momentum, AdamW keeps experiment.grids."""
    exp = _exp()
    exp.tune, exp.variants = ("weight_decay",), ("baseline", "weight_decay")
    exp.controls = ("momentum.weight_decay",)
    seen = {}

    def fake_train(settings, strengths):
        seen[(settings[0].optimizer, settings[0].regularizer)] = {s.strength for s in settings}
        return {s.name: {"validation_accuracy": 0.5, "validation_loss": 1.0} for s in settings}

    tuning.tune_all(exp, fake_train)
    assert seen[("adamw", "weight_decay")] == set(exp.grids.weight_decay)
    momentum = set(exp.optimizer_grids.momentum.weight_decay)
    assert seen[("momentum", "weight_decay")] == momentum != set(exp.grids.weight_decay)
    assert tuning.strengths_for(exp, "momentum", "l2") == tuple(exp.grids.l2)  # no override


def test_a_regularizer_can_widen_its_own_learning_rate_grid():
    """Decoupled decay trades rate against strength, so its grid may reach past the baseline's
    rates; the baseline and the other regularizers keep experiment.learning_rates."""
    exp = _exp()
    exp.tune, exp.variants = ("dropout", "weight_decay"), ("baseline", "dropout", "weight_decay")
    wider = (*exp.learning_rates.adamw, 10 * max(exp.learning_rates.adamw))
    exp.regularizer_learning_rates = ml_collections.ConfigDict({"adamw": {"weight_decay": wider}})
    seen = {}

    def fake_train(settings, strengths):
        seen[settings[0].regularizer] = {s.learning_rate for s in settings}
        return {s.name: {"validation_accuracy": 0.5, "validation_loss": 1.0} for s in settings}

    tuning.tune_all(exp, fake_train)
    assert seen["weight_decay"] == set(wider)
    assert seen["baseline"] == seen["dropout"] == set(exp.learning_rates.adamw)
    assert tuning.learning_rates_for(exp, "momentum", "weight_decay") == tuple(
        exp.learning_rates.momentum
    )


def test_cells_draw_subsets_and_set_budgets():
    config = smoke.get_config()
    exp = config.experiment
    s = variants.Setting("baseline", None, 1e-2)
    kw = {"strengths": {}, "train_size_all": 1259}
    conv = runs.cell_config(config, s, n=64, draw=1, mode="converged", **kw)
    fixed = runs.cell_config(config, s, n=128, draw=0, mode="3x", **kw)
    assert conv.dataset.options.train_subset == 64 and conv.dataset.options.subset_seed == 1
    assert conv.early_stopping.enabled and not fixed.early_stopping.enabled
    assert fixed.train.budget_factor == 3.0
    assert conv.train.num_epochs == 2 * fixed.train.num_epochs  # epochs x tune_size / n
    assert runs.epochs_at(config, None, 1259) == exp.min_epochs
    with pytest.raises(ValueError, match="mode"):
        runs.cell_config(config, s, n=64, draw=0, mode="5x", **kw)


def _fake_run(tmp_path, name, draw, seed, correct):
    path = tmp_path / name / f"d{draw}" / f"seed_{seed}"
    labels = np.zeros(correct.size, np.int64)
    predictions.save(
        predictions.path_of(path, "test"),
        labels_n=labels,
        top1_n=np.where(correct, 0, 1),
        p_correct_n=correct.astype(np.float32),
    )
    return {"setting": variants.Setting(name, None, 1e-3), "n": 100, "draw": draw,
            "seed": seed, "mode": "converged", "run_dir": str(path)}  # fmt: skip


def test_paired_comparison_uses_matched_rows(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for draw in (0, 1):
        for seed in (0, 1):
            base = rng.random(400) < 0.7
            better = base | (rng.random(400) < 0.5)  # a strict improvement on the same images
            rows.append(_fake_run(tmp_path, "baseline", draw, seed, base))
            rows.append(_fake_run(tmp_path, "pooling", draw, seed, better))
    rows.append(_fake_run(tmp_path, "pooling", 2, 0, np.ones(400, bool)))  # unmatched: left out
    cells = analysis.Cells(rows)
    a = ("pooling_lr0.001", "100", "converged")
    b = ("baseline_lr0.001", "100", "converged")
    out = cells.estimate(a, b, 0.3)
    assert out.extra["rows"] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert (out.extra["draws"], out.extra["seeds"]) == (2, 2)  # crossed factors, not one
    assert out.delta > 0.1 and out.delta / out.se > 5 and out.reference_error == 0.3
    with pytest.raises(ValueError, match="share no"):
        cells.estimate(a, ("other", "100", "converged"), 0.3)


def test_the_whole_train_split_is_trained_once_not_once_per_draw(monkeypatch, tmp_path):
    """n = 'all' has no subset to draw: the size curve trains it on the first draw only."""
    from experiments.regularization import main as reg

    exp = _exp()
    exp.variants, exp.sizes, exp.draws = ("baseline",), (1000, "all"), (0, 1)
    config = regularization_base.get_config()
    config.experiment = exp
    calls = []
    monkeypatch.setattr(reg, "train_cells", lambda *a, **kw: calls.append(kw) or [])
    record = {"chosen": {"baseline": variants.Setting("baseline", None, 3e-3).as_dict()}}
    exp.controls, exp.literature.variants = (), ()
    reg.evaluation_phase(config, tmp_path, record, size_all=59000)
    draws = {kw["n"]: list(kw["draws"]) for kw in calls if kw["mode"] == "converged"}
    assert draws == {1000: [0, 1], None: [0]}


def test_a_weakest_strength_choice_names_the_baseline_it_tends_to():
    """At the grid's weakest strength the regularizer is nearly off: the table says so and
    shows the tuned baseline's validation accuracy, the strength-0 end of that axis."""
    from experiments.regularization.report import chosen_table

    def entry(reg, strength, lr, acc, opt="momentum"):
        return {"regularizer": reg, "strength": strength, "learning_rate": lr, "optimizer": opt,
                "validation_accuracy": acc, "validation_loss": 0.2, "best_epoch": 9.0}  # fmt: skip

    base = [entry("baseline", None, lr, acc) for lr, acc in ((0.01, 0.92), (0.03, 0.9375))]
    l2 = [entry("l2", s, 0.03, acc) for s, acc in ((1e-5, 0.9387), (1e-4, 0.93), (1e-3, 0.91))]
    keys = {"momentum.baseline": (base, base[1]), "momentum.l2": (l2, l2[0])}
    fields = ("regularizer", "strength", "learning_rate", "optimizer")
    tuning = {
        "grids": {k: g for k, (g, _) in keys.items()},
        "chosen": {k: {f: c[f] for f in fields} for k, (_, c) in keys.items()},
    }
    table = chosen_table(tuning)
    assert (
        "strength low: the weakest tried; strength 0 is the tuned momentum.baseline (93.75)"
        in table
    )
    assert table.count("strength low") == 1


def test_grid_edges_flag_a_choice_at_the_end_of_a_grid():
    """A strength chosen at the largest of 3 values, or a rate at the lowest, is flagged;
    the middle of a grid, or an axis with fewer than 3 values, is not."""
    from experiments.regularization.report import grid_edges

    grid = [{"strength": s, "learning_rate": lr} for s in (0.1, 0.3, 0.7) for lr in (1e-3, 1e-2)]
    assert grid_edges(grid, {"strength": 0.7, "learning_rate": 1e-3}) == ["strength high"]
    assert grid_edges(grid, {"strength": 0.3, "learning_rate": 1e-2}) == []
    grid3 = [dict(g, learning_rate=lr) for g in grid[:1] for lr in (1e-3, 3e-3, 1e-2)]
    assert grid_edges(grid3, {"strength": 0.1, "learning_rate": 1e-3}) == ["lr low"]
