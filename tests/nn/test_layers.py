"""Conv and pooling against the naive sliding-window reference; layer behaviour in train/eval."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.nn import layers, pooling
from cnn_jax.nn.layers import Pool, canonical_padding
from cnn_jax.nn.pooling import same_padding_amounts
from tests import naive

CONV_CASES = [
    # (H, W, C_in, C_out, K, stride, padding, dilation)
    (7, 7, 1, 1, 3, 1, "VALID", 1),
    (8, 8, 3, 4, 3, 1, "SAME", 1),
    (9, 7, 2, 5, 3, 2, "SAME", 1),
    (10, 10, 3, 2, 5, 2, 1, 1),
    (9, 9, 2, 3, 3, 1, 2, 2),
    (8, 8, 2, 2, 3, 3, "VALID", 1),
    (6, 6, 2, 3, 3, 1, "CIRCULAR", 1),
    (32, 32, 3, 10, 5, 1, "SAME", 1),
]


def _pads(padding, h, w, k, s, d):
    if padding == "VALID":
        return ((0, 0), (0, 0))
    if padding in ("SAME", "CIRCULAR"):
        return (same_padding_amounts(h, k, s, d), same_padding_amounts(w, k, s, d))
    return canonical_padding(padding)


@pytest.mark.parametrize("h,w,c_in,c_out,k,s,padding,d", CONV_CASES)
def test_conv_matches_naive_sliding_window(h, w, c_in, c_out, k, s, padding, d):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, h, w, c_in)).astype(np.float32)
    conv = nn.Conv(c_out, (k, k), (s, s), canonical_padding(padding), kernel_dilation=(d, d))
    variables = conv.init(jax.random.key(1), x)
    variables = jax.tree.map(
        lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), variables
    )
    got = np.asarray(conv.apply(variables, x))[0]
    p = variables["params"]
    mode = "wrap" if padding == "CIRCULAR" else "constant"
    want = naive.conv2d(
        x[0],
        np.asarray(p["kernel"]),
        np.asarray(p["bias"]),
        s,
        _pads(padding, h, w, k, s, d),
        d,
        mode,
    )
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "kind,window,stride,padding",
    [
        ("max", 2, 2, "VALID"),
        ("avg", 2, 2, "VALID"),
        ("max", 3, 2, "SAME"),
        ("avg", 3, 1, "SAME"),
        ("max", 3, 3, "VALID"),
        ("max", 2, 1, "VALID"),
        ("avg", 3, 2, "CIRCULAR"),
    ],
)
def test_pool_matches_naive(kind, window, stride, padding):
    x = np.random.default_rng(0).normal(size=(1, 9, 8, 3)).astype(np.float32)
    pool = Pool(kind, window, stride, padding)
    assert pool.init(jax.random.key(0), x) == {}, "pooling must have no parameters"
    got = np.asarray(pool.apply({}, x))[0]
    pads = _pads(padding, 9, 8, window, stride, 1)
    mode = "wrap" if padding == "CIRCULAR" else "constant"
    want = naive.pool2d(x[0], window, stride, np.max if kind == "max" else np.mean, pads, mode)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_blur_filter_normalised_binomial():
    for size in range(1, 8):
        f = pooling.binomial_filter(size)
        assert f.shape == (size, size)
        np.testing.assert_allclose(f.sum(), 1.0, rtol=1e-6)
        np.testing.assert_allclose(f, f.T)
    np.testing.assert_allclose(pooling.binomial_filter(3)[1], np.array([2, 4, 2]) / 16)
    with pytest.raises(ValueError, match="blur_size"):
        pooling.binomial_filter(8)


def test_blur_pool_shapes_and_constant_preserved():
    x = jnp.ones((2, 8, 8, 4))
    for kind in ("blur", "max_blur"):
        y = Pool(kind, 2, 2, "SAME").apply({}, x)
        assert y.shape == (2, 4, 4, 4)
        np.testing.assert_allclose(y, 1.0, rtol=1e-6)  # a normalised filter keeps a constant


def test_activation_and_pool_names_rejected_clearly():
    with pytest.raises(ValueError, match=r"activation: unknown value 'relu6'; allowed: relu"):
        layers.get_activation("relu6")
    with pytest.raises(ValueError, match=r"pool: unknown value 'min'"):
        Pool("min").apply({}, jnp.ones((1, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"padding: unknown value 'FULL'"):
        canonical_padding("full")


def test_gaussian_noise_only_in_training_and_depends_on_rng():
    x = jnp.zeros((4, 5))
    noise = layers.GaussianNoise(0.5)
    assert jnp.array_equal(noise.apply({}, x, deterministic=True), x)
    a = noise.apply({}, x, deterministic=False, rngs={"noise": jax.random.key(0)})
    b = noise.apply({}, x, deterministic=False, rngs={"noise": jax.random.key(1)})
    assert not jnp.allclose(a, 0) and not jnp.allclose(a, b)
    assert 0.3 < float(jnp.std(a)) < 0.7
