"""A stack of linear convolutions equals one convolution with the composed kernel."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.measure import im2col, linear_collapse
from cnn_jax.nn.model_spec import BlockSpec, ModelSpec
from cnn_jax.nn.models import CNN
from tests.nn.test_receptive_field import random_variables


def _random_stack(rng, kernels, strides, channels):
    return [
        linear_collapse.make_layer(
            rng.normal(size=(k, k, c_in, c_out)) / k, rng.normal(size=c_out), s
        )
        for k, s, c_in, c_out in zip(kernels, strides, channels[:-1], channels[1:])
    ]


def _assert_close(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    scale = max(1.0, float(np.abs(a).max()))
    np.testing.assert_allclose(a, b, atol=2e-5 * scale, rtol=0)


CASES = [
    # kernels, strides, channels, input size (circular: divisible by all strides but the last)
    ((3, 3), (1, 1), (1, 1, 1), 12),
    ((3, 5), (1, 1), (3, 4, 2), 16),
    ((3, 3, 3), (1, 1, 1), (3, 8, 8, 5), 16),
    ((2, 3), (2, 1), (2, 3, 4), 16),
    ((3, 2, 5), (2, 1, 3), (3, 4, 5, 2), 24),
    ((1, 4, 3), (1, 2, 2), (1, 2, 3, 2), 16),
    ((5, 1), (3, 2), (2, 6, 3), 36),
]


@pytest.mark.parametrize("mode", ["VALID", "CIRCULAR"])
@pytest.mark.parametrize("kernels, strides, channels, size", CASES)
def test_composed_conv_equals_stack(kernels, strides, channels, size, mode):
    rng = np.random.default_rng(len(kernels) * 100 + size)
    stack = _random_stack(rng, kernels, strides, channels)
    width = size + int(np.prod(strides))  # not square; still divisible by the strides
    x_bhwc = jnp.asarray(rng.normal(size=(2, size, width, channels[0])), jnp.float32)
    one = linear_collapse.compose(stack)
    _assert_close(
        linear_collapse.apply_conv(one, x_bhwc, mode),
        linear_collapse.apply_stack(stack, x_bhwc, mode),
    )


@pytest.mark.parametrize("k1, s1, k2, s2", [(3, 1, 3, 1), (3, 2, 3, 2), (5, 3, 2, 1), (1, 2, 4, 3)])
def test_composed_size_and_stride(k1, s1, k2, s2):
    rng = np.random.default_rng(0)
    one = linear_collapse.compose(_random_stack(rng, (k1, k2), (s1, s2), (2, 3, 4)))
    assert one.kernel_size == (k1 + s1 * (k2 - 1),) * 2
    assert one.stride == s1 * s2
    assert one.kernel_hwio.shape[2:] == (2, 4)


def test_bias_is_carried_through():
    """With zero kernels in layer 1, the output is b1 @ sum(K2) + b2 everywhere."""
    rng = np.random.default_rng(1)
    first = linear_collapse.make_layer(np.zeros((3, 3, 2, 3)), rng.normal(size=3))
    second = linear_collapse.make_layer(rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4))
    one = linear_collapse.compose([first, second])
    expected = first.bias_o @ second.kernel_hwio.sum(axis=(0, 1)) + second.bias_o
    np.testing.assert_allclose(one.bias_o, expected)
    assert np.all(one.kernel_hwio == 0)


@pytest.mark.parametrize("padding", ["VALID", "CIRCULAR"])
def test_collapse_matches_a_flax_cnn(padding):
    """The conv stack of a real (identity-activation) CNN collapses to one conv."""
    blocks = (
        BlockSpec(4, 3, padding=padding, activation="identity"),
        BlockSpec(5, 3, stride=2, padding=padding, activation="identity"),
        BlockSpec(3, 2, padding=padding, activation="identity"),
    )
    spec = ModelSpec(blocks, num_classes=10)
    model = CNN(spec)
    variables = random_variables(model, (16, 16, 2))  # random biases too
    x_bhwc = jax.random.normal(jax.random.key(1), (3, 16, 16, 2))
    _, inter = model.apply(variables, x_bhwc, train=False)
    one = linear_collapse.compose(linear_collapse.stack_from_params(variables["params"], spec))
    assert one.kernel_size == (3 + 1 * 2 + 2 * 1,) * 2 and one.stride == 2
    _assert_close(linear_collapse.apply_conv(one, x_bhwc, padding), inter["block2/conv"])


def test_same_zero_padding_differs_only_at_the_border():
    """Documented limitation: zero-padded intermediates break equality at the border."""
    rng = np.random.default_rng(2)
    stack = _random_stack(rng, (3, 5), (1, 1), (1, 3, 2))
    x_bhwc = jnp.asarray(rng.normal(size=(1, 16, 16, 1)), jnp.float32)
    y = x_bhwc
    for layer in stack:
        y = im2col.conv_direct(
            y,
            jnp.asarray(layer.kernel_hwio, jnp.float32),
            jnp.asarray(layer.bias_o, jnp.float32),
            1,
            "SAME",
        )
    one = linear_collapse.compose(stack)
    z = im2col.conv_direct(
        x_bhwc,
        jnp.asarray(one.kernel_hwio, jnp.float32),
        jnp.asarray(one.bias_o, jnp.float32),
        1,
        "SAME",
    )
    border = 3  # composed pad before = 1 + 2
    _assert_close(z[:, border:-border, border:-border], y[:, border:-border, border:-border])
    assert float(jnp.max(jnp.abs(z - y))) > 1e-2


def test_bad_input_raises():
    rng = np.random.default_rng(3)
    a = linear_collapse.make_layer(rng.normal(size=(3, 3, 2, 3)))
    b = linear_collapse.make_layer(rng.normal(size=(3, 3, 4, 1)))
    with pytest.raises(ValueError, match="C_in"):
        linear_collapse.compose_two(a, b)
    with pytest.raises(ValueError, match="mode"):
        linear_collapse.apply_conv(a, jnp.zeros((1, 8, 8, 2)), "SAME")
    with pytest.raises(ValueError, match="stride"):
        linear_collapse.make_layer(np.zeros((3, 3, 1, 1)), stride=0)
    relu_spec = ModelSpec((BlockSpec(2, 3),), num_classes=10)
    with pytest.raises(ValueError, match="activation"):
        linear_collapse.stack_from_params({"block0": {"conv": {}}}, relu_spec)
