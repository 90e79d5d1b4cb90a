"""CNN-anatomy studies: confound-free variants, border digits, verdicts, tiny end-to-end runs."""

from __future__ import annotations

import json

import jax
import matplotlib.image
import numpy as np
import pytest

from cnn_jax.outputs import predictions
from experiments.anatomy import (
    activations,
    border,
    collapse,
    feature_maps,
    hyperparameters,
    hyperparameters_claims,
    report,
    variants,
)
from experiments.anatomy.configs import (
    activations_smoke,
    hyperparameters_full,
    hyperparameters_smoke,
)
from experiments.anatomy.configs import feature_maps as feature_maps_config
from tests.conftest import run_python

SHAPE = (16, 16, 1)


def _geo(cfg):
    return variants.geometry(cfg, SHAPE, 10)


def test_stride_heads_remove_the_classifier_confound():
    config = hyperparameters_full.get_config()
    v = variants.stride_variants(config, SHAPE, 10)
    g = {n: _geo(c) for n, c in v.items()}
    assert g["stride1_flatten"]["layer_sizes"] == [16, 16, 16]
    assert g["stride2_flatten"]["layer_sizes"] == [16, 8, 4]
    # The flatten head shrinks with the stride (the old confound) ...
    assert g["stride2_flatten"]["head_params"] < g["stride1_flatten"]["head_params"] / 10
    # ... the GAP head is the same classifier at every stride ...
    assert g["stride1_gap"]["params"] == g["stride2_gap"]["params"]
    # ... and the matched flatten net has the stride-1 net's parameter count (within 1%).
    target, matched = g["stride1_flatten"]["params"], g["stride2_flatten_matched"]["params"]
    assert abs(matched - target) / target < 0.01
    assert len(v["stride2_flatten_matched"].model.head_hidden) == 1


@pytest.mark.slow
def test_kernel_variants_share_the_receptive_field_and_match_params_or_flops():
    config = hyperparameters_full.get_config()
    v = variants.kernel_variants(config, SHAPE, 10)
    assert set(v) == {
        "stack2x3x3", "one5x5_params", "one5x5_flops",
        "stack3x3x3", "one7x7_params", "one7x7_flops",
    }  # fmt: skip
    g = {n: _geo(c) for n, c in v.items()}
    for field in (5, 7):
        stack = g[variants.kernel_name(field, "stack")]
        for key in ("params", "flops"):
            one = g[variants.kernel_name(field, key)]
            assert one["receptive_field"] == stack["receptive_field"] == field + 2
            assert one["layer_sizes"][-1] == stack["layer_sizes"][-1]  # VALID: same final map
            width = v[variants.kernel_name(field, key)].model.blocks[-1]["features"]
            # The chosen width is the closest: one filter more or fewer is no closer.
            for w in (width - 1, width + 1):
                if w >= 1:
                    other = variants.with_model(
                        config,
                        [variants.conv(8, 3, "VALID"), variants.conv(w, field, "VALID")],
                        config.experiment.head,
                    )
                    assert abs(_geo(other)[key] - stack[key]) >= abs(one[key] - stack[key])


def test_depth_variants_only_where_the_map_fits():
    config = hyperparameters_full.get_config()
    v = variants.depth_variants(config, SHAPE, 10)
    assert "k3_valid_d7" in v and "k7_valid_d2" in v and "k7_valid_d3" not in v
    assert _geo(v["k3_valid_d7"])["layer_sizes"][-1] == 2
    assert _geo(v["k3_same_d7"])["layer_sizes"][-1] == 16


@pytest.mark.parametrize(
    "kernel, stride, padding, expected",
    [(3, 1, "VALID", 7), (7, 1, "VALID", 2), (5, 2, "VALID", 2), (3, 1, "SAME", 64)],
)
def test_max_depth_formula(kernel, stride, padding, expected):
    assert variants.max_depth(kernel, stride, padding, 16) == expected


def test_edge_digits_touch_the_border_and_keep_their_ink():
    sets = border.test_sets(16)
    edge, labels = sets["test_edge"]
    center, center_labels = sets["test_center"]
    assert edge.shape == center.shape == (len(labels), 16, 16, 1)
    np.testing.assert_array_equal(labels, center_labels)
    assert border.touches_border(edge).all()
    assert not border.touches_border(center).any()
    # Same ink, only moved: per-image pixel sums agree.
    np.testing.assert_array_equal(edge.sum(axis=(1, 2, 3)), center.sum(axis=(1, 2, 3)))


def _rows(tmp_path, name, correct_sn, validation=0.9):
    rows = []
    labels = np.zeros(correct_sn.shape[1], np.int64)
    for s, correct in enumerate(correct_sn):
        run_dir = tmp_path / name / f"seed_{s}"
        top1 = np.where(correct == 1, 0, 1)
        p = correct.astype(np.float32)
        predictions.save(
            predictions.path_of(run_dir, "test"), labels_n=labels, top1_n=top1, p_correct_n=p
        )
        results = {"final": {"validation": {"accuracy": validation}}}
        rows.append({"variant": name, "seed": s, "run_dir": str(run_dir), "results": results})
    return rows


def test_judge_gives_verdicts_per_budget_with_holm(tmp_path):
    rng = np.random.default_rng(0)
    good = (rng.random((3, 400)) < 0.95).astype(np.uint8)
    bad = (rng.random((3, 400)) < 0.6).astype(np.uint8)
    same = good.copy()
    groups = {
        "1x": {"a": _rows(tmp_path / "1", "a", good), "b": _rows(tmp_path / "1", "b", bad)},
        "3x": {"a": _rows(tmp_path / "3", "a", good), "b": _rows(tmp_path / "3", "b", same)},
    }
    spec = report.ClaimSpec("a beats b", "a", "b", +1, margin=0.02)
    (claim,) = report.judge([spec], groups)
    assert claim["budgets"]["1x"]["verdict"] == "held"
    assert claim["budgets"]["3x"]["verdict"] == "equivalent"  # identical predictions
    assert claim["result"] == "budget-dependent"
    assert claim["budgets"]["1x"]["p_adjusted"] >= claim["budgets"]["1x"]["p_value"]
    reverse = report.ClaimSpec("b beats a", "b", "a", +1)
    (claim,) = report.judge([reverse], {"1x": groups["1x"]})
    assert claim["result"] == "contradicted"
    text = report.claims_markdown([claim], ["1x"])
    assert "contradicted" in text and "p_Holm" in text


def test_seed_comparison_is_a_paired_test_over_seeds():
    c = report.seed_comparison([40, 42, 41, 39], [100, 130, 90, 120], "steps")
    assert c.delta < 0 and c.p_value < 0.05 and c.n_images == 1
    tie = report.seed_comparison([50, 50, 50], [60, 60, 60], "steps")
    assert tie.p_value == pytest.approx(0.25)  # exact sign test: 3 of 3 the same sign


def test_depth_choice_is_made_on_validation(tmp_path):
    exp = hyperparameters_full.get_config().experiment
    ones = np.ones((2, 10), np.uint8)
    groups = {
        "k3_valid_d1": _rows(tmp_path, "k3_valid_d1", ones, validation=0.80),
        "k3_valid_d7": _rows(tmp_path, "k3_valid_d7", ones, validation=0.95),
        "k7_valid_d2": _rows(tmp_path, "k7_valid_d2", ones, validation=0.70),
    }
    choices = hyperparameters_claims.depth_choices(exp, groups, 16)
    assert choices["best_k3_valid"] == "k3_valid_d7"
    assert choices["best_k7_valid"] == "k7_valid_d2"
    assert choices["best_k3_same"] is None


def test_steps_to_target_reads_the_first_crossing():
    curve = {
        "step": [5, 10, 15, 20],
        "accuracy": [0.2, 0.6, 0.92, 0.95],
        "loss": [2, 1, 0.5, 0.4],
        "time": [100.0, 100.5, 101.0, 101.5],
    }
    hit = report.steps_to_target(curve, 0.9)
    assert hit["steps"] == 15 and hit["seconds"] == pytest.approx(1.5)
    assert report.steps_to_target(curve, 0.99)["steps"] is None


def test_collapse_exact_claim_needs_logits_to_1e5():
    check = collapse.random_collapse_check()
    scale = check["output_scale"]
    assert check["max_abs_diff_valid"] < 1e-5 * scale
    assert check["max_abs_diff_same_overall"] > 1e-2 * scale  # the border differs
    assert collapse.exact_claim(check, [])["result"] == "held"
    off = {"max_abs_logit_diff": 1e-3, "logit_scale": 10.0, "same_prediction_fraction": 1.0}
    assert collapse.exact_claim(check, [off])["result"] == "contradicted"


def test_learning_rate_is_chosen_on_validation_and_speedup_is_per_seed(tmp_path):
    ones = np.ones((2, 10), np.uint8)
    groups = {
        "relu_lr0.01": _rows(tmp_path, "relu_lr0.01", ones, validation=0.7),
        "relu_lr0.1": _rows(tmp_path, "relu_lr0.1", ones, validation=0.9),
    }
    assert activations.choose_lr(groups, "relu", (0.01, 0.1)) == "relu_lr0.1"
    relu = {"censored_steps_0.75": [10, 20], "steps_0.75": [10, 20]}
    tanh = {"censored_steps_0.75": [60, 100], "steps_0.75": [60, None]}
    s = activations.speedup(relu, tanh, 0.75)
    assert s["ratio_per_seed"] == [6.0, 5.0] and s["lower_bound"]


def test_init_note_matches_flax_default():
    import flax.linen as nn

    assert activations.INIT.startswith("LeCun normal")
    kernel = nn.Conv(32, (3, 3)).init(jax.random.key(0), np.zeros((1, 4, 4, 16)))["params"]
    var = float(np.var(np.asarray(kernel["kernel"])))
    assert var == pytest.approx(1 / (9 * 16), rel=0.1)  # LeCun: 1 / fan_in, not He's 2 / fan_in


def _png_ok(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(path).ndim == 3


@pytest.mark.slow
def test_hyperparameters_end_to_end(tmp_path, data_dir):
    config = hyperparameters_smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    config.experiment.parts = ("border",)
    config.experiment.budgets = {"1x": 1.0, "3x": 2.0}
    results = hyperparameters.run_experiment(config, tmp_path)
    claims = {(c["claim"], c.get("what", "")): c for c in results["claims"]}
    assert any(c["result"] == "held" for c in results["claims"] if not c["budgets"])
    edge = [c for (text, _), c in claims.items() if "border" in text]
    assert edge and set(edge[0]["budgets"]) == {"1x", "3x"}
    assert edge[0]["result"] in ("held", "contradicted", "equivalent", "inconclusive",
                                 "budget-dependent")  # fmt: skip
    assert (tmp_path / "runs/3x/border_valid/seed_1/predictions/test_edge.npz").exists()
    assert "test_edge acc % 3x" in (tmp_path / "table_border.md").read_text()
    _png_ok(tmp_path / "hyperparameters.png")
    json.loads((tmp_path / "results.json").read_text())


@pytest.mark.slow
def test_activations_end_to_end_collapses_trained_nets(tmp_path, data_dir):
    config = activations_smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    results = activations.run_experiment(config, tmp_path)
    assert set(results["chosen"]["1x"]) == {"relu", "tanh"}
    assert len(results["trained_collapse_checks"]) == 2  # one per seed
    exact = results["claims"][0]
    assert exact["result"] == "held", exact["evidence"]
    assert any("equivalent within" in c["claim"] for c in results["claims"])
    _png_ok(tmp_path / "activation_curves.png")


@pytest.mark.slow
def test_feature_maps_trains_then_loads_any_run(tmp_path, data_dir):
    config = feature_maps_config.get_config()
    config.dataset.data_dir = str(data_dir)
    config.model.preset = "tiny_vgg"
    config.train.num_epochs = 1
    config.train.eval_every_epochs = 1
    config.experiment.top_channels = (1,)
    config.experiment.top_k = 4
    results = feature_maps.run_experiment(config, tmp_path / "a")
    assert results["model"] == "tiny_vgg" and "label" in results["top_title"]
    assert results["feature_map_shapes"]["block3/pool"] == [1, 1, 10]
    assert [r["receptive field"] for r in results["receptive_fields"]] == [1, 3, 5, 6, 10, 14, 16]
    for name in results["files"]:
        _png_ok(tmp_path / "a" / name)
    config.experiment.run_dir = str(tmp_path / "a" / "model" / "seed_0")  # any run loads
    again = feature_maps.run_experiment(config, tmp_path / "b")
    assert again["source"].startswith("loaded from")
    assert again["top_activating"] == results["top_activating"]


@pytest.mark.slow
def test_cli_reports_a_bad_part_in_one_line(tmp_path):
    code = (
        "import sys; sys.argv = ['hyperparameters', "
        "'--config=experiments/anatomy/configs/hyperparameters_smoke.py', "
        f"'--workdir={tmp_path}', \"--config.experiment.parts=('SIDEWAYS',)\"]; "
        "import runpy; runpy.run_module('experiments.anatomy.hyperparameters', run_name='__main__')"
    )
    result = run_python(code)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: experiment.parts") and "SIDEWAYS" in last
