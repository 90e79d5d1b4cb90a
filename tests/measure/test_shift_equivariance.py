"""What shift equivariance rests on: background-zero normalisation, antialiased-cnns' BlurPool
padding, and a trained SAME conv that commutes with shifts."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cnn_jax import datasets, steps
from cnn_jax.measure import invariance as inv
from cnn_jax.nn.layers import Pool
from cnn_jax.nn.model_spec import mnist_cnn
from cnn_jax.nn.models import CNN
from cnn_jax.nn.pooling import binomial_filter, blur_downsample, blurpool_pads


def _reference_blurpool(x_hw: np.ndarray, size: int, stride: int = 2) -> np.ndarray:
    """antialiased_cnns/blurpool.py in numpy: reflect pad [int((k-1)/2), ceil((k-1)/2)] on each
    side, a depthwise conv with the normalised binomial a (x) a, stride 2 (Zhang 2019)."""
    before, after = int(1.0 * (size - 1) / 2), int(np.ceil(1.0 * (size - 1) / 2))
    padded = np.pad(x_hw, ((before, after), (before, after)), mode="reflect")
    a = np.array([math.comb(size - 1, k) for k in range(size)], np.float64)
    kernel = np.outer(a, a) / np.outer(a, a).sum()
    n_out = [(padded.shape[i] - size) // stride + 1 for i in (0, 1)]
    out = np.zeros(n_out)
    for i in range(n_out[0]):
        for j in range(n_out[1]):
            window = padded[i * stride : i * stride + size, j * stride : j * stride + size]
            out[i, j] = (window * kernel).sum()
    return out


def test_blurpool_pads_match_the_reference_formula():
    for size in range(1, 8):
        want = (int(1.0 * (size - 1) / 2), int(np.ceil(1.0 * (size - 1) / 2)))
        assert blurpool_pads(size) == want
    assert blurpool_pads(3) == (1, 1)  # XLA's SAME on an even map would give (0, 1)


@pytest.mark.parametrize("size", [2, 3, 5])  # Rect-2, Tri-3, Bin-5
@pytest.mark.parametrize("side", [8, 9])
def test_blur_downsample_equals_antialiased_cnns(size, side):
    x_hw = np.random.default_rng(size * side).normal(size=(side, side))
    got = blur_downsample(jnp.asarray(x_hw[None, :, :, None], jnp.float32), size, 2, "SAME")
    want = _reference_blurpool(x_hw, size)
    assert got.shape[1:3] == want.shape == (-(-side // 2),) * 2
    np.testing.assert_allclose(np.asarray(got)[0, :, :, 0], want, rtol=1e-5, atol=1e-5)
    assert binomial_filter(size).shape == (size, size)


def test_max_blur_pool_is_max_stride1_then_reference_blurpool():
    x_hw = np.random.default_rng(1).normal(size=(8, 8))
    got = Pool("max_blur", 2, 2, "VALID", blur_size=3).apply({}, jnp.asarray(x_hw)[None, ..., None])
    dense_max = np.maximum.reduce([x_hw[:-1, :-1], x_hw[1:, :-1], x_hw[:-1, 1:], x_hw[1:, 1:]])
    np.testing.assert_allclose(
        np.asarray(got)[0, :, :, 0], _reference_blurpool(dense_max, 3), rtol=1e-5, atol=1e-5
    )


def test_normalize_keeps_the_background_at_zero():
    x = np.zeros((1, 4, 4, 1), np.uint8)
    x[0, 1, 1, 0] = 255
    y = np.asarray(steps.normalize(x, (0.13,), (0.3,)))
    assert y[0, 0, 0, 0] == 0.0
    np.testing.assert_allclose(y[0, 1, 1, 0], 1.0 / 0.3, rtol=1e-6)


def _trained_first_conv(data_dir, normalise):
    """mnist_cnn after 60 Adam steps on the digits (8x8 on 16x16): first conv's apply fn."""
    ds = datasets.load("digits", data_dir=data_dir)
    model = CNN(mnist_cnn(10))
    tx = optax.adam(3e-3)
    state = steps.create_train_state(model, tx, jax.random.key(0), ds.image_shape)
    step = jax.jit(steps.make_train_step(model, tx, mean=ds.mean, std=ds.std))
    for i in range(60):
        sl = slice(64 * i % 1024, 64 * i % 1024 + 64)
        batch = {"image": ds.train.images[sl], "label": ds.train.labels[sl]}
        state, _ = step(state, batch)
    variables = {"params": state.params}

    def first_conv(x_uint8):
        return model.apply(variables, normalise(x_uint8, ds), train=False)[1]["block0/conv"]

    return first_conv, ds.test.images[:32]


@pytest.mark.slow
def test_first_same_conv_of_a_trained_net_is_shift_equivariant(data_dir):
    """Content shifts that keep the digit on the canvas commute with the first SAME conv once
    the background is 0 (zero padding = background); with the mean subtracted first they do
    not (the padded zeros differ from the background near the frame)."""
    scale_only = lambda x, ds: steps.normalize(x, ds.mean, ds.std)
    centred = lambda x, ds: (x.astype(jnp.float32) / 255.0 - ds.mean[0]) / ds.std[0]
    for normalise, bound in ((scale_only, 1e-5), (centred, None)):
        conv, images = _trained_first_conv(data_dir, normalise)
        base = conv(images.astype(np.float32))
        errors = []
        for dy, dx in [(3, 0), (0, -3), (2, 2), (-4, 3)]:  # the 8x8 digit sits in rows 4..11
            shifted = conv(inv.shift_images(images.astype(np.float32), dy, dx, "zero"))
            errors.append(float(jnp.max(inv.equivariance_error(base, shifted, dy, dx, "zero"))))
        if bound is not None:
            assert max(errors) < bound, errors
        else:
            assert min(errors) > 1e-2, errors  # the test can fail: the old normalisation fails it
