"""CNN-anatomy studies: confound-free variants, border digits, verdicts, tiny end-to-end runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import matplotlib.image
import numpy as np
import pytest

from cnn_jax.outputs import predictions
from cnn_jax.outputs.claims_report import claims_markdown
from cnn_jax.stats.claims import Kind, Margin
from cnn_jax.stats.evidence import estimate_from_record
from experiments.anatomy import (
    activations,
    border,
    claims,
    collapse,
    feature_maps,
    hyperparameters,
    hyperparameters_claims,
    reanalyse,
    report,
    variants,
)
from experiments.anatomy.configs import (
    activations_full,
    activations_smoke,
    hyperparameters_full,
    hyperparameters_smoke,
)
from experiments.anatomy.configs import feature_maps as feature_maps_config
from tests.conftest import run_python

SHAPE = (16, 16, 1)
REPO = Path(__file__).resolve().parents[3]


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


def test_fresh_accuracy_claims_are_judged_per_budget_with_holm(tmp_path):
    rng = np.random.default_rng(0)
    good = (rng.random((3, 400)) < 0.95).astype(np.uint8)
    bad = (rng.random((3, 400)) < 0.6).astype(np.uint8)
    same = good.copy()
    groups = {
        "1x": {"a": _rows(tmp_path / "1", "a", good), "b": _rows(tmp_path / "1", "b", bad)},
        "3x": {"a": _rows(tmp_path / "3", "a", good), "b": _rows(tmp_path / "3", "b", same)},
    }
    claim = claims.accuracy("a beats b", "a", "b", margin=Margin(value=0.02))
    (result,) = claims.judge_claims([(claim, claims.fresh_accuracy(groups)(claim))])
    by_budget = {v.budget: v for v in result.verdicts}
    assert by_budget["1x"].label == "held"
    assert by_budget["3x"].label == "equivalent"  # identical predictions
    assert by_budget["1x"].estimate.reference_error == pytest.approx(1 - bad.mean())
    # The effects differ (a paired interaction over the same seeds and images), not the labels.
    assert result.result == "budget-dependent" and "crossed" in result.interactions[0].method
    reverse = claims.accuracy("b beats a", "b", "a")
    (result,) = claims.judge_claims([(reverse, claims.fresh_accuracy(groups)(reverse))])
    assert result.verdicts[0].label == "contradicted"
    text = claims_markdown([result.as_dict()], ["1x", "3x"])
    assert "contradicted" in text and "Holm" in text


def test_deep_linear_significantly_worse_supports_no_better():
    """The sign case: -2.1 pt (Fashion-MNIST, 3x) was printed 'contradicted' for "no better"."""
    exp = activations_full.get_config().experiment
    (no_better, _) = collapse.declare(exp, reference_known=False)
    assert no_better.kind is Kind.NON_SUPERIORITY
    stored = {"delta": -0.02134, "se": 0.0021094, "df": 11.597, "n_seeds": 5, "n_images": 10000}
    (result,) = claims.judge_claims([(no_better, {"3x": estimate_from_record(stored)})])
    (v,) = result.verdicts
    assert v.label == "held" and v.margin == pytest.approx(0.02) and v.margin_rule == "absolute"
    # With the single conv's error known the margin is relative to it (the table says so).
    (relative, _) = collapse.declare(exp, reference_known=True)
    known = estimate_from_record(stored, reference_error=0.15)
    (v,) = claims.judge_claims([(relative, {"3x": known})])[0].verdicts
    assert v.margin == pytest.approx(0.2 * 0.15) and "of b's error" in v.margin_rule


def _speed(steps, total):
    return {"steps_0.75": steps, "total_steps": [total] * len(steps)}


def test_censored_times_use_one_restriction_not_the_budget():
    """Runs that never reach the target: the old imputed delta grew with the budget."""
    relu = [20, 25, 30, 35]
    sigmoid = [60, None, None, 90]
    speed = {b: {"relu": _speed(relu, t), "sigmoid": _speed(sigmoid, t)}
             for b, t in (("1x", 100), ("3x", 300))}  # fmt: skip
    claim = claims.time_to_target("ReLU trains faster", "relu", "sigmoid", 0.75)
    est = claims.time_estimates(claim, speed, 0.75)
    assert est["1x"].delta == est["3x"].delta == pytest.approx(np.mean([-40, -75, -70, -55]))
    assert est["1x"].extra["restriction"] == est["3x"].extra["restriction"] == 100
    assert est["3x"].extra["reached"] == [4, 2]
    imputed = {b: np.mean(relu) - np.mean([total if s is None else s for s in sigmoid])
               for b, total in (("1x", 100), ("3x", 300))}  # fmt: skip
    assert imputed["3x"] < imputed["1x"] - 50  # the old delta grew by construction
    (result,) = claims.judge_claims([(claim, est)])
    assert result.budget_label == "consistent across budgets"
    assert "reached 4/4 vs 2/4" in result.claim.what and "tau = 100" in result.claim.what


def test_exact_claim_is_exact_without_p_value_and_outside_the_holm_family():
    check = collapse.random_collapse_check()
    identity, est = collapse.identity_evidence(check, [], ["1x"])
    test_claim = claims.accuracy("a beats b", "a", "b")
    e = estimate_from_record({"delta": 0.01, "se": 0.004, "df": 4, "n_seeds": 5, "n_images": 100})
    results = claims.judge_claims([(identity, est), (test_claim, {"1x": e})])
    (exact,) = results[0].verdicts
    assert exact.label == "exact" and exact.p_holm is None and exact.tests == ()
    assert results[1].verdicts[0].family_size == 2  # held and contradicted of the one test only
    cell = claims_markdown([r.as_dict() for r in results], ["1x"])
    assert "tolerance 1e-05): **exact**" in cell


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


def test_collapse_identity_needs_logits_to_1e5():
    check = collapse.random_collapse_check()
    scale = check["output_scale"]
    assert check["max_abs_diff_valid"] < 1e-5 * scale
    assert check["max_abs_diff_same_overall"] > 1e-2 * scale  # the border differs

    def label(trained):
        evidence = collapse.identity_evidence(check, trained, ["1x", "3x"])
        return {v.budget: v.label for v in claims.judge_claims([evidence])[0].verdicts}

    assert label([]) == {"1x": "exact", "3x": "exact"}
    off = {"max_abs_logit_diff": 1e-3, "logit_scale": 10.0, "same_prediction_fraction": 1.0,
           "images": 8, "run_dir": "runs/3x/collapse_deep_linear/seed_0"}  # fmt: skip
    assert label([off]) == {"1x": "exact", "3x": "contradicted"}


def test_formula_claims_are_exact_with_zero_deviation():
    config = hyperparameters_full.get_config()
    exp = config.experiment
    geometries = {n: _geo(c) for n, c in variants.stride_variants(config, SHAPE, 10).items()}
    evidence = hyperparameters_claims.formula_evidence(exp, geometries, 16, "1x")
    assert [e["1x"].deviation for _, e in evidence] == [0, 0, 0]
    assert all(r.result == "exact" for r in claims.judge_claims(evidence))


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
    exact = [c for c in results["claims"] if c["kind"] == "exact"]
    assert exact and all(c["result"] == "exact" for c in exact)
    edge = [c for c in results["claims"] if "border" in c["text"]]
    assert edge and set(edge[0]["budgets"]) == {"1x", "3x"}
    assert edge[0]["result"] in ("held", "contradicted", "equivalent", "inconclusive",
                                 "budget-dependent", "consistent across budgets")  # fmt: skip
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
    assert exact["result"] == "exact", exact["what"]
    (no_better,) = [c for c in results["claims"] if c["kind"] == "non_superiority"]
    assert "of b's error" in no_better["budgets"]["1x"]["margin_rule"]  # relative, error known
    speed = [c for c in results["claims"] if c["quantity"].startswith("steps to")]
    assert speed and "reached" in speed[0]["what"]
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


def test_reanalysis_rejudges_a_copied_record_without_retraining(tmp_path, capsys):
    name = "anatomy_activations_fashion_mnist"
    shutil.copytree(REPO / "results" / name, tmp_path / name)
    path = tmp_path / name / "results.json"
    before = json.loads(path.read_text())
    # The claim as the old logic stored it (a > b with an equivalence margin: "contradicted").
    old = {"a": "collapse_deep_linear", "b": "collapse_single_conv", "claim": "no better",
           "result": "budget-dependent", "budgets": {"3x": {
               "delta": -0.02134, "se": 0.0021094, "df": 11.597, "n_seeds": 5,
               "n_images": 10000, "verdict": "contradicted", "p_adjusted": 3e-6}}}  # fmt: skip
    before["claims"] = [c for c in before["claims"] if c["a"] != old["a"]] + [old]
    path.write_text(json.dumps(before))
    reanalyse.main(["--record", name, "--results-root", str(tmp_path)])
    after = json.loads(path.read_text())
    assert {k: after[k] for k in before if k not in ("claims", "verdicts")} == {
        k: v for k, v in before.items() if k not in ("claims", "verdicts")
    }
    by_pair = {(c["a"], c["b"]): c for c in after["claims"]}
    no_better = by_pair["collapse_deep_linear", "collapse_single_conv"]["budgets"]
    assert no_better["3x"]["label"] == "held"  # -2.1 pt: "no better" holds
    speed = by_pair["relu", "sigmoid"]["budgets"]
    assert speed["1x"]["estimate"]["delta"] == speed["3x"]["estimate"]["delta"]  # one restriction
    assert after["claims"][0]["result"] == "exact"
    claims_md = (tmp_path / name / "claims.md").read_text()
    assert "non-superiority" in claims_md
    assert claims_md in (tmp_path / name / "readme.md").read_text()
    prov = json.loads((tmp_path / name / "provenance.json").read_text())
    assert prov["reanalyses"][-1]["files"] == ["claims.md", "readme.md", "results.json"]
    assert "| 3x | contradicted | held |" in capsys.readouterr().out


def test_a_chosen_learning_rate_at_a_grid_edge_is_flagged(tmp_path):
    assert activations.lr_edge((0.01, 0.05, 0.25), 0.05) == ""
    assert activations.lr_edge((0.05, 0.25), 0.25).startswith("high edge: widen the grid above")
    assert activations.lr_edge((0.01, 0.05, 0.25), 0.01).startswith("low edge")
    assert "not tuned" in activations.lr_edge((0.1,), 0.1)
    ones = np.ones((2, 10), np.uint8)
    groups = {"1x": {
        "sigmoid_lr0.05": _rows(tmp_path, "sigmoid_lr0.05", ones, validation=0.1),
        "sigmoid_lr0.25": _rows(tmp_path, "sigmoid_lr0.25", ones, validation=0.2),
    }}  # fmt: skip
    exp = activations_full.get_config().experiment
    exp.activations = ("sigmoid",)
    chosen = {"sigmoid": activations.choose_lr(groups["1x"], "sigmoid", (0.05, 0.25))}
    headers, rows = activations.grid_table(groups, exp, tmp_path, chosen)
    assert headers[-1] == "chosen (grid edge?)"
    assert [r[-1] for r in rows] == ["", "chosen; high edge: widen the grid above 0.25"]
    edges = activations.lr_edges({"sigmoid": (0.05, 0.25)}, chosen)
    speed = {"1x": {chosen["sigmoid"]: {"steps_0.75": [None, None], "seconds_0.75": [None, None],
                                         "total_steps": [20, 20]}}}  # fmt: skip
    _, speed_rows = activations.speed_table({"1x": chosen}, speed, groups, (0.75,), edges)
    assert speed_rows[0][3] == "0.25 (high edge: widen the grid above 0.25)"
    meta = {"lr_edges": edges}
    assert "sigmoid (high edge" in activations.edge_line(meta)
    old_record = {"learning_rates": {"sigmoid": [0.05, 0.25]}, "chosen": {"1x": chosen}}
    assert activations.edge_line(old_record) == activations.edge_line(meta)
    assert activations.edge_line({"lr_edges": {"relu": ""}}) == ""
