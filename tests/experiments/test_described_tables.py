"""Every study table that names a variant spells it out beside the name, with the study's
`describe` (the same words as the figures' legends); the numbers stay as they were."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.anatomy import activations, hyperparameters
from experiments.anatomy import variants as anatomy_variants
from experiments.anatomy.configs import activations_smoke
from experiments.invariance import tables as invariance_tables
from experiments.memorization import conditions
from experiments.memorization import report as memorization_report
from experiments.regularization import report as regularization_report
from experiments.regularization import stopping

IV = {"estimate": 0.9, "low": 0.85, "high": 0.95}


def _curve() -> dict:
    return {"distances": [0, 1, 4], "accuracy": [IV] * 3, "consistency": [IV] * 3}


def test_invariance_tables_describe_each_variant():
    summary = {v: {"accuracy_unshifted": IV, "similar": IV, "dissimilar": IV}
               for v in ("blur3", "max_noaug", "kv_same_zero")}  # fmt: skip
    table = invariance_tables.variant_table(summary, ["blur3", "max_noaug"], ["accuracy_unshifted"])
    assert "| variant | description | acc. unshifted |" in table
    assert "| `blur3` | MaxBlurPool Tri-3, shift-augmented | 90.0 [85.0, 95.0] |" in table
    assert "| `max_noaug` | max pooling, no augmentation |" in table
    kayhan = invariance_tables._kayhan_table(summary, ["kv_same_zero"], None)
    assert "| `kv_same_zero` | zero SAME padding (Kayhan) | 90.0 [85.0, 95.0] |" in kayhan
    halving = {"d2_max": {"estimate": 3.0, "low": 2.0, "high": 4.0}}
    depth = {"curves": {"d2_max": _curve()}, "halving_distance": halving}
    assert "| `d2_max` | 2 max-pool downsamplings |" in invariance_tables._depth_table(
        depth, ["d2_max"]
    )
    learned = invariance_tables._curve_table({"max_shift3": _curve()}, None)
    row = "| `max_shift3` | max pooling, trained with random shifts up to 3 px | 90.0 / 90.0 |"
    assert row in learned
    both = invariance_tables.both_correct_table(
        [{"a": "blur3", "b": "max", "budget": "1x", "n_images": 7, "a_level": IV, "b_level": IV}]
    )
    assert "| MaxBlurPool Tri-3, shift-augmented - max pooling, shift-augmented | 1x | 7 |" in both
    dots = {"raw": [{"kind": "max", "distance": 1, "mean": 1.0}],
            "learned": {"d3_max": [{"distance": 1, "mean": None}]}}  # fmt: skip
    dots_table = invariance_tables._two_dots_table(dots)
    assert "| raw max | raw pixels, 2x2 max pooling | 1.00 |" in dots_table
    assert "| learned `d3_max` | trained layers of 3 max-pool downsamplings | never |" in dots_table


def _level(setting: str) -> dict:
    return {
        "setting": setting, "n": "400", "mode": "converged", "rows": 4, "test_accuracy": IV,
        "best_epoch_mean": 3.0, "epochs_max": 9, "num_params": 1000,
        "forward_flops_per_example": 2000, "train_time_sec_mean": 1.5,
        "stopping": {"best_epochs": [3, 3], "capped_runs": [False, True], "cap": 9,
                     "patience": 5, "capped": 1},
    }  # fmt: skip


def test_regularization_tables_describe_each_setting():
    chosen = {"regularizer": "l2", "strength": 0.0005, "learning_rate": 0.03,
              "optimizer": "momentum", "factor": None}  # fmt: skip
    grid = [dict(chosen, validation_accuracy=0.98, best_epoch=4.0)]
    table = regularization_report.chosen_table(
        {"chosen": {"momentum.l2": chosen}, "grids": {"momentum.l2": grid}}
    )
    assert "| momentum.l2 | L2 penalty, SGD momentum | 0.0005 | - | 0.03 | momentum | 98.00 |" in (
        table
    )
    levels = [_level("dropout_s0.4_lr0.003"), _level("all_x1_lr0.01")]
    table = regularization_report.levels_table(levels)
    row = "| dropout_s0.4 | dropout, strength 0.4 | 400 | converged | 4 | 90.00 [85.00, 95.00] |"
    assert row in table
    assert "| all_x1 | all regularizers, strength x1 | 400 |" in table
    stops = stopping.stopping_table(levels)
    assert "| dropout_s0.4 | dropout, strength 0.4 | 400 | 2 | 9 | 5 | 3 3* | 3 [3, 3] | 1/2 |" in (
        stops
    )


def test_anatomy_tables_describe_each_variant(tmp_path: Path):
    geometry = {"layer_sizes": [16, 8], "receptive_field": 3, "params": 10, "head_params": 5,
                "flops": 2e6}  # fmt: skip
    headers, rows = hyperparameters.part_table(["stride2_gap"], {"stride2_gap": geometry},
                                               {"1x": {}})  # fmt: skip
    assert headers[:3] == ["variant", "description", "layer sides"]
    assert rows[0][:4] == ["stride2_gap", "stride 2, GAP head", "16→8", 3]
    exp = activations_smoke.get_config().experiment
    headers, rows = activations.grid_table({"1x": {}}, exp, tmp_path)
    assert headers[:3] == ["activation", "description", "learning rate"]
    assert [r[:3] for r in rows] == [["relu", "ReLU", "0.1"], ["tanh", "tanh", "0.1"]]
    headers, _ = activations.speed_table({}, {}, {}, (0.5,))
    assert headers[:4] == ["budget", "activation", "description", "chosen lr"]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("sigmoid_bn", "sigmoid with batch norm"),
        ("relu_lr0.05", "ReLU, lr 0.05"),
        ("leaky_relu_bn_lr0.25", "leaky ReLU with batch norm, lr 0.25"),
        ("collapse_deep_linear", "stacked VALID convs, no activation (linear end to end)"),
        ("k3_valid_d5", "5 3x3 VALID convs"),
    ],
)
def test_anatomy_describe_spells_out_activation_and_collapse_names(name, words):
    assert anatomy_variants.describe(name) == words


def test_anatomy_describe_refuses_an_unknown_name_in_one_line():
    with pytest.raises(ValueError, match=r"^variant: unknown 'swish_lr0.1'; allowed: .*"):
        anatomy_variants.describe("swish_lr0.1")


def test_memorization_conditions_table_describes_each_condition():
    results = {
        "fit_threshold": 0.99,
        "conditions": {"random_labels-dropout": {
            "horizon_epochs": [60, 60], "epochs": [None, 40], "km_median": None,
            "train_accuracy": [0.7, 0.8], "test_accuracy": [0.1, 0.1]}},
        "config": {"experiment": {"regularizers": {
            "dropout": [["model.head_dropout", 0.5], ["model.conv_dropout", 0.25]]}}},
    }  # fmt: skip
    table = memorization_report.conditions_table(results)
    assert (
        "| random labels | dropout | random labels, dropout (model.head_dropout = 0.5, "
        "model.conv_dropout = 0.25) | >60 40 | 1/2 |" in table
    )
    assert conditions.describe("true_labels-none") == "true labels, no explicit regularizer"
    with pytest.raises(ValueError, match="^variant: unknown 'cats-none'"):
        conditions.describe("cats-none")
