"""Stride at a matched receptive field: the dilated stride-1 net and the stride-2 net differ
only in stride (same kernels, parameters, classifier and receptive field), and the claim goes
through the claims engine naming the field it matched."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_jax.nn.model_spec import spec_from_config
from cnn_jax.nn.receptive_field import receptive_fields
from experiments.anatomy import claims, hyperparameters_claims, variants
from experiments.anatomy.configs import hyperparameters_full
from tests.experiments.anatomy.test_anatomy_study import _rows

SHAPE = (16, 16, 1)


def _geo(cfg):
    return variants.geometry(cfg, SHAPE, 10)


def test_the_dilated_stride1_net_matches_stride2_in_everything_but_stride():
    config = hyperparameters_full.get_config()
    v = variants.stride_variants(config, SHAPE, 10)
    dilated, strided = v["stride1_gap_dilated2"], v["stride2_gap"]
    g_d, g_s = _geo(dilated), _geo(strided)
    # Before: stride1_gap (field 5) against stride2_gap (field 7).
    assert _geo(v["stride1_gap"])["receptive_field"] == 5
    assert g_d["receptive_field"] == g_s["receptive_field"] == 7
    assert g_d["params"] == g_s["params"]
    assert g_d["layer_sizes"] == [16, 16, 16] and g_s["layer_sizes"] == [16, 8, 4]
    assert dilated.model.head == strided.model.head == "global_avg"
    for a, b in zip(dilated.model.blocks, strided.model.blocks):
        same = {k: v for k, v in a.items() if k not in ("stride", "dilation")}
        assert same == {k: v for k, v in b.items() if k not in ("stride", "dilation")}
    assert [b["dilation"] for b in dilated.model.blocks] == [1, 2]
    assert [b["stride"] for b in strided.model.blocks] == [2, 2]
    assert variants.describe("stride1_gap_dilated2") == (
        "stride 1, GAP head, dilated to stride 2's receptive field"
    )
    config.experiment.stride.match_field = False
    assert "stride1_gap_dilated2" not in variants.stride_variants(config, SHAPE, 10)


@pytest.mark.parametrize("kernel, stride, depth", [(3, 2, 2), (3, 3, 3), (5, 2, 3)])
def test_the_field_formula_agrees_with_the_receptive_field_module(kernel, stride, depth):
    """`strided_field` (what the claim names) against `cnn_jax.nn.receptive_field` on the
    strided stack and on its dilated stride-1 twin."""
    config = hyperparameters_full.get_config()
    blocks = [variants.conv(4, kernel, "SAME", stride) for _ in range(depth)]
    twin = variants.dilated_blocks(4, kernel, stride, depth)
    expected = variants.strided_field(kernel, stride, depth)
    for b in (blocks, twin):
        cfg = variants.with_model(config, b, "global_avg")
        spec = spec_from_config(cfg.model.to_dict(), 10)
        assert receptive_fields(spec, (64, 64))[-1].size == (expected, expected)


def test_the_matched_field_claim_is_declared_and_judged_by_the_engine(tmp_path):
    exp = hyperparameters_full.get_config().experiment
    declared = {(c.a, c.b): c for c in hyperparameters_claims.declare(exp, 16)}
    claim = declared[("stride1_gap_dilated2", "stride2_gap")]
    assert "receptive field matched at 7 px" in claim.what
    unmatched = declared[("stride1_gap", "stride2_gap")]
    assert "receptive fields 5 vs 7 px (not matched)" in unmatched.what
    rng = np.random.default_rng(0)
    dense = (rng.random((5, 400)) < 0.95).astype(np.uint8)
    sparse = (rng.random((5, 400)) < 0.7).astype(np.uint8)
    groups = {"1x": {"stride1_gap_dilated2": _rows(tmp_path, "stride1_gap_dilated2", dense),
                     "stride2_gap": _rows(tmp_path, "stride2_gap", sparse)}}  # fmt: skip
    (result,) = claims.judge_claims([(claim, claims.fresh_accuracy(groups)(claim))])
    assert result.result == "held" and result.verdicts[0].label == "held"
    assert result.as_dict()["what"].startswith("receptive field matched at 7 px")


def test_budgets_are_ordered_by_factor_not_as_text():
    import ml_collections

    from experiments.anatomy import report

    exp = ml_collections.ConfigDict({"budgets": {"1x": 1.0, "3x": 3.0, "30x": 30.0}})
    assert list(exp.budgets) == ["1x", "30x", "3x"]  # a ConfigDict sorts its keys as text
    assert list(report.budgets_in_order(exp.budgets)) == ["1x", "3x", "30x"]
