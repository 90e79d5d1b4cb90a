"""Config -> ModelSpec: presets, overrides, and clear errors."""

from __future__ import annotations

import pytest

from cnn_jax.nn import model_spec as ms


def test_overrides_apply_to_every_block():
    spec = ms.spec_from_config({"preset": "mnist_cnn", "activation": "tanh", "pool": "avg"}, 10)
    assert [b.activation for b in spec.blocks] == ["tanh", "tanh"]
    assert [b.pool for b in spec.blocks] == ["avg", "avg"]


def test_pool_override_leaves_unpooled_blocks_alone():
    spec = ms.spec_from_config({"preset": "tiny_vgg", "pool": "blur"}, 10)
    assert [b.pool for b in spec.blocks] == ["none", "blur", "none", "blur"]


def test_explicit_blocks_and_head():
    cfg = {"blocks": [{"features": 4, "kernel_size": 5}], "head": "global_avg", "head_hidden": [8]}
    spec = ms.spec_from_config(cfg, 3)
    assert spec.blocks[0].features == 4 and spec.head.kind == "global_avg"
    assert spec.head.hidden == (8,) and spec.num_classes == 3


@pytest.mark.parametrize(
    "cfg,match",
    [
        ({"preset": "vgg19"}, r"model.preset: unknown value 'vgg19'; allowed: seed_example"),
        ({"activation": "swish2"}, r"model.blocks\[0\].activation: unknown value 'swish2'"),
        (
            {"kernel_size": 0},
            r"model.blocks\[0\].kernel_size: 0 not allowed; allowed: integers >= 1",
        ),
        ({"stride": -1}, r"model.blocks\[0\].stride: -1 not allowed"),
        (
            {"conv_dropout": 1.0},
            r"model.blocks\[0\].dropout: 1.0 not allowed; allowed: 0 <= rate < 1",
        ),
        ({"kernal_size": 3}, r"model: unknown key\(s\) \['kernal_size'\]"),
        (
            {"blocks": [{"features": 4, "filters": 3}]},
            r"model.blocks\[0\]: unknown key\(s\) \['filters'\]",
        ),
        ({"head": "attention"}, r"model.head.kind: unknown value 'attention'"),
    ],
)
def test_bad_model_config_is_one_clear_line(cfg, match):
    with pytest.raises(ValueError, match=match) as info:
        ms.spec_from_config(cfg, 10)
    assert "\n" not in str(info.value)
