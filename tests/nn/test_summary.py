"""The summary's shapes, parameters and FLOPs equal the textbook formulas, for every preset."""

from __future__ import annotations

import math

import pytest

from cnn_jax.nn import model_spec as ms
from cnn_jax.nn.layers import canonical_padding
from cnn_jax.nn.models import CNN
from cnn_jax.nn.pooling import same_padding_amounts
from cnn_jax.nn.summary import conv_output_size, conv_params, summary

PRESET_INPUTS = {
    "seed_example": (32, 32, 3),
    "lenet5": (28, 28, 1),
    "tiny_vgg": (64, 64, 3),
    "mnist_cnn": (28, 28, 1),
    "resnet_small": (32, 32, 3),
}


def test_seed_example_is_32x32x10_with_760_conv_params():
    s = summary(CNN(ms.seed_example()), (32, 32, 3))
    conv = s.row("block0/conv")
    assert conv.output_shape == (32, 32, 10)
    assert conv.params == 760 == conv_params(5, 5, 3, 10)


def _expected_conv(spec: ms.BlockSpec, size: int, stride: int, kernel: int) -> int:
    padding = canonical_padding(spec.padding)
    if padding == "VALID":
        p = 0
    elif isinstance(padding, tuple):
        p = padding[0][0]
    else:  # SAME / CIRCULAR: symmetric when the total is even, which holds for our presets
        before, after = same_padding_amounts(size, kernel, stride, spec.dilation)
        return (size + before + after - ((kernel - 1) * spec.dilation + 1)) // stride + 1
    return conv_output_size(size, kernel, stride, p, spec.dilation)


@pytest.mark.parametrize("preset", list(PRESET_INPUTS))
def test_summary_matches_formulas(preset):
    spec = ms.PRESETS[preset]()
    s = summary(CNN(spec), PRESET_INPUTS[preset])
    size, channels = PRESET_INPUTS[preset][0], PRESET_INPUTS[preset][2]
    for i, block in enumerate(spec.blocks):
        if block.type == "conv":
            row = s.row(f"block{i}/conv")
            out = _expected_conv(block, size, block.stride, block.kernel_size)
            assert row.output_shape == (out, out, block.features), row
            assert row.params == conv_params(
                block.kernel_size, block.kernel_size, channels, block.features, not block.batch_norm
            )
            k2 = block.kernel_size**2
            assert row.flops == 2 * k2 * channels * block.features * out * out
            size, channels = out, block.features
            if block.pool != "none":
                pool = s.row(f"block{i}/pool")
                assert pool.params == 0
                size = conv_output_size(size, block.pool_window, block.pool_stride, 0)
                assert pool.output_shape == (size, size, channels)
        else:
            size = math.ceil(size / block.stride)
            channels = block.features
            assert s.row(f"block{i}/act").output_shape == (size, size, channels)
    dense = [r for r in s.rows if r.kind == "Dense"]
    for r in dense:
        fan_in = r.input_shape[-1]
        assert r.params == (fan_in + 1) * r.output_shape[-1]
        assert r.flops == 2 * fan_in * r.output_shape[-1]
    assert s.rows[-1].output_shape == (spec.num_classes,)
    assert "Total params" in str(s)


def test_known_totals():
    assert summary(CNN(ms.lenet5()), (28, 28, 1)).total_params == 61_706
    s = summary(CNN(ms.mnist_cnn()), (28, 28, 1))
    assert s.total_params == 824_458
    conv_dense = sum(r.flops for r in s.rows if r.kind in ("Conv", "Dense"))
    assert conv_dense == 9_287_680  # x3 for forward+backward = 27.9 MFLOP
