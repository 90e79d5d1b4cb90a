"""im2col + one matrix product equals the convolution (native, flax and sliding loops)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.measure import im2col
from tests import naive


@pytest.mark.parametrize(
    "kernel, stride, padding, c_in, c_out",
    [
        (3, 1, "VALID", 1, 4),
        (3, 1, "SAME", 3, 5),
        (5, 2, "SAME", 2, 3),
        (2, 2, "VALID", 3, 2),
        (4, 3, 1, 2, 2),
        (3, 2, "CIRCULAR", 3, 4),
        (1, 1, "VALID", 4, 6),
    ],
)
def test_im2col_matmul_equals_conv(kernel, stride, padding, c_in, c_out):
    rng = np.random.default_rng(kernel * 10 + stride)
    x_bhwc = jnp.asarray(rng.normal(size=(2, 11, 13, c_in)), jnp.float32)
    kernel_hwio = jnp.asarray(rng.normal(size=(kernel, kernel, c_in, c_out)), jnp.float32)
    bias_o = jnp.asarray(rng.normal(size=c_out), jnp.float32)
    via_matmul = im2col.conv_im2col(x_bhwc, kernel_hwio, bias_o, stride, padding)
    direct = im2col.conv_direct(x_bhwc, kernel_hwio, bias_o, stride, padding)
    np.testing.assert_allclose(via_matmul, direct, atol=1e-4)

    pads = im2col.explicit_pads((11, 13), (kernel, kernel), stride, padding)
    mode = "wrap" if padding == "CIRCULAR" else "constant"
    loops = naive.conv2d(
        np.asarray(x_bhwc[1]), np.asarray(kernel_hwio), np.asarray(bias_o), stride, pads, mode=mode
    )
    np.testing.assert_allclose(via_matmul[1], loops, atol=1e-4)


@pytest.mark.parametrize("padding", ["SAME", "VALID", "CIRCULAR"])
def test_matches_flax_conv(padding):
    x_bhwc = jax.random.normal(jax.random.key(0), (2, 9, 9, 3))
    conv = nn.Conv(4, (3, 3), strides=(2, 2), padding=padding)
    variables = conv.init(jax.random.key(1), x_bhwc)
    p = variables["params"]
    via_matmul = im2col.conv_im2col(x_bhwc, p["kernel"], p["bias"], 2, padding)
    np.testing.assert_allclose(via_matmul, conv.apply(variables, x_bhwc), atol=1e-5)


def test_patch_rows_and_single_dot_product():
    x_bhwc = jnp.arange(2 * 5 * 6 * 2, dtype=jnp.float32).reshape(2, 5, 6, 2)
    patches = im2col.im2col(x_bhwc, (2, 3), stride=1)
    assert patches.shape == (2, 4, 4, 2 * 3 * 2)
    # row (1, 2) of image 0 is the 2x3x2 patch starting at pixel (1, 2), flattened (u, v, c)
    np.testing.assert_array_equal(patches[0, 1, 2], x_bhwc[0, 1:3, 2:5].reshape(-1))

    kernel_hwio = jax.random.normal(jax.random.key(2), (2, 3, 2, 3))
    full = im2col.conv_direct(x_bhwc, kernel_hwio)
    np.testing.assert_allclose(
        im2col.patch_dot(x_bhwc[0], kernel_hwio, 1, 2), full[0, 1, 2], rtol=1e-5
    )


def test_kernel_larger_than_input_raises():
    with pytest.raises(ValueError, match="kernel_hw"):
        im2col.im2col(jnp.zeros((1, 3, 3, 1)), (5, 5))
