"""Tile pooling (reshape + max/mean) equals Flax's reduce_window pooling: values and gradients."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.nn import layers, pooling

# (H, W, window): even sizes, odd sizes that leave rows/columns no window covers, window 3.
SHAPES = [(8, 8, 2), (7, 5, 2), (10, 7, 3), (5, 6, 4)]


def _reference(x_bhwc: jax.Array, window: int, kind: str) -> jax.Array:
    pool = nn.max_pool if kind == "max" else nn.avg_pool
    return pool(x_bhwc, (window, window), (window, window), padding="VALID")


def _inputs(h: int, w: int, ties: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: most windows hold their maximum more than once
        return rng.integers(0, 3, (2, h, w, 3)).astype(np.float32)
    return rng.normal(size=(2, h, w, 3)).astype(np.float32)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("h,w,window", SHAPES)
def test_values_and_gradients_equal_reduce_window(h, w, window, ties, kind):
    x = jnp.asarray(_inputs(h, w, ties))
    cotangent = jnp.asarray(
        np.random.default_rng(1).normal(size=_reference(x, window, kind).shape), jnp.float32
    )
    got, got_vjp = jax.vjp(lambda v: pooling.tile_pool(v, window, kind), x)
    want, want_vjp = jax.vjp(lambda v: _reference(v, window, kind), x)
    assert got.shape == want.shape
    if kind == "max":  # a selected element: exact
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    else:  # a mean: summation order may differ in the last bit
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got_vjp(cotangent)[0], want_vjp(cotangent)[0], rtol=1e-6, atol=1e-6)


def test_max_gradient_goes_to_the_first_maximum_only():
    x = jnp.ones((1, 2, 2, 1))  # one window, four equal maxima
    grad = jax.grad(lambda v: pooling.tile_max_pool(v, 2).sum())(x)
    np.testing.assert_array_equal(np.asarray(grad)[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])
    want = jax.grad(lambda v: _reference(v, 2, "max").sum())(x)
    np.testing.assert_array_equal(np.asarray(grad), np.asarray(want))


def test_nan_and_inf_propagate_like_reduce_window():
    x = np.zeros((1, 4, 4, 1), np.float32)
    x[0, 0, 1, 0], x[0, 2, 2, 0], x[0, 3, 0, 0] = np.nan, np.inf, -np.inf
    got = np.asarray(pooling.tile_max_pool(jnp.asarray(x), 2))
    np.testing.assert_array_equal(got, np.asarray(_reference(jnp.asarray(x), 2, "max")))
    assert np.isnan(got[0, 0, 0, 0]) and got[0, 1, 1, 0] == np.inf


def test_second_order_gradient_matches():
    x = jnp.asarray(_inputs(6, 6, ties=False))

    def hvp(pool):
        def f(v):
            return (pool(v) ** 2).sum()

        return jax.jvp(jax.grad(f), (x,), (jnp.ones_like(x),))[1]

    got = hvp(lambda v: pooling.tile_max_pool(v, 2))
    want = hvp(lambda v: _reference(v, 2, "max"))
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_module_uses_tiles_only_where_they_are_exact(kind):
    x = jnp.asarray(_inputs(7, 7, ties=True))
    tiled = layers.Pool(kind=kind, window=2, stride=2, padding="VALID")
    np.testing.assert_array_equal(tiled.apply({}, x), _reference(x, 2, kind))
    overlapping = layers.Pool(kind=kind, window=3, stride=2, padding="VALID")  # not tiles
    pool = nn.max_pool if kind == "max" else nn.avg_pool
    np.testing.assert_array_equal(overlapping.apply({}, x), pool(x, (3, 3), (2, 2), "VALID"))


def test_jit_and_vmap_compose():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(3, 2, 6, 6, 4)), jnp.float32)
    got = jax.jit(jax.vmap(jax.grad(lambda v: pooling.tile_max_pool(v, 2).sum())))(x)
    want = jax.vmap(jax.grad(lambda v: _reference(v, 2, "max").sum()))(x)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
