"""The pooling registry drives `layers.Pool`: a kind registered there is pooled as it says."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.nn import pool_kinds, pooling
from cnn_jax.nn.layers import Pool
from tests import naive


def _min_pool(x_bhwc, window, stride, blur, padding):
    """A throwaway kind: min pooling as the negated max of the negated maps."""
    return -pooling.window_pool(-x_bhwc, "max", window, stride, padding)


def _no_flops(window, blur, n_in, n_out):
    return 0


MIN = pool_kinds.PoolKind("min", _min_pool, lambda w, s, b, p: [(w, s, p)], True, False, _no_flops)


def test_a_registered_kind_is_pooled_without_any_other_edit(monkeypatch):
    x = np.random.default_rng(0).normal(size=(1, 9, 8, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"pool: unknown value 'min'"):
        Pool("min").apply({}, x)
    monkeypatch.setitem(pool_kinds.POOL_KINDS, "min", MIN)
    for window, stride in ((2, 2), (3, 2)):
        got = np.asarray(Pool("min", window, stride, "VALID").apply({}, x))[0]
        want = naive.pool2d(x[0], window, stride, np.min)
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_pool_hands_the_kind_its_arguments_with_the_padding_canonical(monkeypatch):
    calls = []

    def record(x_bhwc, window, stride, blur, padding):
        calls.append((window, stride, blur, padding))
        return x_bhwc[:, :1]

    kind = pool_kinds.PoolKind("probe", record, lambda w, s, b, p: [], False, False, _no_flops)
    monkeypatch.setitem(pool_kinds.POOL_KINDS, "probe", kind)
    y = Pool("probe", window=3, stride=2, padding=1, blur_size=5).apply({}, jnp.ones((1, 6, 6, 2)))
    assert y.shape == (1, 1, 6, 2)
    Pool("probe", padding="same").apply({}, jnp.ones((1, 4, 4, 1)))
    assert calls == [(3, 2, 5, ((1, 1), (1, 1))), (2, 2, 3, "SAME")]


@pytest.mark.parametrize("name", sorted(pool_kinds.POOL_KINDS))
@pytest.mark.parametrize("padding", ["VALID", "SAME", "CIRCULAR"])
def test_pool_is_each_kinds_apply(name, padding):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 8, 8, 3)), jnp.float32)
    got = Pool(name, 3, 2, padding, 3).apply({}, x)
    want = pool_kinds.get(name).apply(x, 3, 2, 3, padding)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_window_pool_routes_non_overlapping_windows_through_tiles():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(1, 8, 8, 2)), jnp.float32)
    tiled = jax.make_jaxpr(lambda v: pooling.window_pool(v, "max", 2, 2, "VALID"))(x)
    sliding = jax.make_jaxpr(lambda v: pooling.window_pool(v, "max", 3, 2, "VALID"))(x)
    assert "reduce_window" not in str(tiled) and "reduce_window" in str(sliding)
    want = nn.max_pool(x, (2, 2), (2, 2), "VALID")
    np.testing.assert_array_equal(pooling.window_pool(x, "max", 2, 2, "VALID"), want)


def test_blur_padding_is_one_rule_for_apply_and_receptive_fields():
    kind = pool_kinds.get("max_blur")
    assert kind.windows(2, 2, 3, "CIRCULAR")[1][2] == pooling.blur_padding("CIRCULAR")
    assert [pooling.blur_padding(p) for p in ("VALID", "SAME", ((1, 1), (0, 0)))] == ["SAME"] * 3
