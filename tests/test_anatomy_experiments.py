"""The CNN-anatomy experiments: settings, geometry, claim verdicts, and tiny end-to-end runs."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pytest

from experiments import activations, anatomy_report, feature_maps, hyperparameters
from experiments.configs import activations_smoke, hyperparameters_smoke
from experiments.configs import feature_maps as feature_maps_config
from tests.conftest import run_python


def test_settings_are_deduplicated_and_named():
    exp = hyperparameters_smoke.get_config().experiment
    names = [hyperparameters.setting_name(s) for s in hyperparameters.settings(exp)]
    assert names == ["k3_s1_same_d2", "k7_s1_same_d2", "k3_s2_same_d2"]


@pytest.mark.parametrize(
    "kernel, stride, padding, expected",
    [
        (3, 1, "VALID", 7),
        (7, 1, "VALID", 2),
        (5, 2, "VALID", 2),
        (3, 1, "SAME", 64),
        (1, 1, "VALID", 64),
    ],
)
def test_max_depth_formula(kernel, stride, padding, expected):
    assert hyperparameters.max_depth(kernel, stride, padding, 16) == expected


def test_geometry_matches_the_traced_model_or_is_infeasible():
    config = hyperparameters_smoke.get_config()
    setting = {"kernel_size": 3, "stride": 2, "padding": "SAME", "depth": 2}
    g = hyperparameters.geometry(hyperparameters.variant_config(config, setting), (16, 16, 1), 10)
    assert g["feasible"] and g["layer_sizes"] == [16, 8, 4] and g["receptive_fields"] == [3, 7]
    assert g["conv_params"] == (9 * 1 + 1) * 8 + (9 * 8 + 1) * 8
    too_deep = {"kernel_size": 7, "stride": 1, "padding": "VALID", "depth": 3}
    g = hyperparameters.geometry(hyperparameters.variant_config(config, too_deep), (16, 16, 1), 10)
    assert not g["feasible"]


def _entries(exp, accuracies):
    out = {}
    for s in hyperparameters.settings(exp):
        name = hyperparameters.setting_name(s)
        size = 16 if s["stride"] == 1 else 4
        out[name] = {
            "setting": s,
            "geometry": {"feasible": True, "layer_sizes": [16, size]},
            "test_accuracy": accuracies[name],
        }
    return out


def test_claim_verdicts_follow_the_numbers():
    exp = hyperparameters_smoke.get_config().experiment
    acc = {
        "k3_s1_same_d2": [0.95, 0.96, 0.955],
        "k7_s1_same_d2": [0.80, 0.81, 0.805],
        "k3_s2_same_d2": [0.97, 0.98, 0.975],  # the stride claim fails here
    }
    claims = {
        c["claim"]: c["result"] for c in hyperparameters.check_claims(exp, _entries(exp, acc), 16)
    }
    assert claims["a larger stride gives a smaller output"] == "held"
    assert claims["a larger stride extracts less (lower accuracy)"] == "failed"
    assert claims["small kernels perform better than large ones"] == "held"
    assert claims["small kernels shrink the maps less, so allow deeper nets"] == "held"


def test_compare_and_verdict():
    c = anatomy_report.compare([1.0, 1.1, 0.9], [0.0, 0.1, -0.1])
    assert c["diff"] == pytest.approx(1.0) and c["p_value"] < 0.01
    assert anatomy_report.verdict(c, +1) == "held"
    assert anatomy_report.verdict(c, -1) == "failed"
    noisy = anatomy_report.compare([1.0, 0.0, 2.0], [0.9, 1.1, 1.0])
    assert anatomy_report.verdict(noisy, +1) == "not significant"


def test_steps_to_target_reads_the_first_crossing():
    curve = {
        "step": [5, 10, 15, 20],
        "accuracy": [0.2, 0.6, 0.92, 0.95],
        "loss": [2, 1, 0.5, 0.4],
        "time": [100.0, 100.5, 101.0, 101.5],
    }
    hit = anatomy_report.steps_to_target(curve, 0.9)
    assert hit["steps"] == 15
    assert hit["sec_per_step"] == pytest.approx(0.1)
    assert hit["seconds"] == pytest.approx(1.5)
    assert anatomy_report.steps_to_target(curve, 0.99)["steps"] is None


def test_collapse_variants_and_random_check():
    exp = activations_smoke.get_config().experiment
    blocks = activations.collapse_blocks(exp)
    assert len(blocks["deep_linear"]) == 3
    assert blocks["single_conv"][0]["kernel_size"] == 3 * (3 - 1) + 1
    assert {b["activation"] for b in blocks["deep_relu"]} == {"relu"}
    check = activations.random_collapse_check()
    scale = check["output_scale"]
    assert check["max_abs_diff_valid"] < 1e-4 * scale
    assert check["max_abs_diff_circular"] < 1e-4 * scale
    assert check["max_abs_diff_same_interior"] < 1e-4 * scale
    assert check["max_abs_diff_same_overall"] > 1e-2 * scale  # the border differs
    assert activations.collapse_claim(check, [])["result"] == "held"


def _png_ok(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(path).ndim == 3


@pytest.mark.slow
def test_hyperparameters_end_to_end(tmp_path, data_dir):
    config = hyperparameters_smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    config.experiment.strides = (1,)
    config.experiment.kernel_sizes = (3,)
    config.experiment.depths = (1, 3)
    config.experiment.paddings = ("VALID",)
    config.experiment.depth_kernels = (7,)  # VALID 7x7 x 3 layers on 16x16: infeasible
    config.experiment.vmap_seeds = True  # one compile per setting keeps the test short
    results = hyperparameters.run_experiment(config, tmp_path)
    settings = results["settings"]
    assert not settings["k7_s1_valid_d3"]["geometry"]["feasible"]
    assert "test_accuracy" not in settings["k7_s1_valid_d3"]
    assert len(settings["k3_s1_same_d2"]["test_accuracy"]) == 2
    assert 0.0 <= min(settings["k7_s1_valid_d1"]["test_accuracy"]) <= 1.0
    assert "infeasible" in (tmp_path / "table.md").read_text()
    _png_ok(tmp_path / "hyperparameters.png")
    json.loads((tmp_path / "results.json").read_text())


@pytest.mark.slow
def test_activations_end_to_end_collapses_trained_nets(tmp_path, data_dir):
    config = activations_smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    config.train.num_epochs = 1
    config.experiment.activations = ("relu",)
    config.experiment.vmap_seeds = True  # one compile per variant keeps the test short
    results = activations.run_experiment(config, tmp_path)
    assert set(results["variants"]) == {
        "relu_adamw",
        "collapse_deep_linear",
        "collapse_single_conv",
        "collapse_deep_relu",
    }
    assert len(results["trained_collapse_checks"]) == 2  # one per seed
    for check in results["trained_collapse_checks"]:
        assert check["max_abs_logit_diff"] < 1e-4 * max(check["logit_scale"], 1.0)
        assert check["same_prediction_fraction"] == 1.0
    curve = results["curves"]["relu_adamw"][0]
    assert curve["step"] == sorted(curve["step"]) and len(curve["step"]) >= 3
    _png_ok(tmp_path / "activation_curves.png")
    _png_ok(tmp_path / "collapse.png")


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
    assert results["model"] == "tiny_vgg"
    # VALID 3x3 convs and 2x2 pools: 16 -> 14 -> 12 -> 6 -> 4 -> 2 -> 1
    assert results["feature_map_shapes"]["block3/pool"] == [1, 1, 10]
    assert results["feature_map_shapes"]["block1/conv"] == [12, 12, 10]
    assert [r["receptive field"] for r in results["receptive_fields"]] == [1, 3, 5, 6, 10, 14, 16]
    assert len(results["top_activating"][1]["indices"]) == 4
    for name in results["files"]:
        _png_ok(tmp_path / "a" / name)

    config.experiment.run_dir = str(tmp_path / "a" / "model")  # any checkpoint loads
    again = feature_maps.run_experiment(config, tmp_path / "b")
    assert again["source"].startswith("loaded from")
    assert again["top_activating"] == results["top_activating"]
    assert np.isfinite(again["top_activating"][1]["scores"]).all()


@pytest.mark.slow
def test_cli_reports_a_bad_setting_in_one_line(tmp_path):
    code = (
        "import sys; sys.argv = ['hyperparameters', "
        "'--config=experiments/configs/hyperparameters_smoke.py', "
        f"'--workdir={tmp_path}', \"--config.experiment.paddings=('SIDEWAYS',)\"]; "
        "import runpy; runpy.run_module('experiments.hyperparameters', run_name='__main__')"
    )
    result = run_python(code)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: experiment.paddings") and "SIDEWAYS" in last
