"""Pooling kinds that describe themselves: one entry per kind, used everywhere a kind matters.

Each entry gives the kind's forward pass (`layers.Pool` calls it), which sliding windows it
applies, in order (for receptive fields, `cnn_jax.nn.receptive_field`), whether its window
must fit the feature map and whether it uses the binomial blur (config validation), and its
forward FLOPs (`cnn_jax.nn.summary`). `POOLINGS` in `layers` is this registry's keys, and
any other name is an error everywhere, instead of being treated as the identity by one
module and refused by another. A new kind is one entry here.

Kinds: max / avg pooling; BlurPool (Zhang 2019, "Making Convolutional Networks
Shift-Invariant Again": binomial blur then subsample); MaxBlurPool (the same paper: dense
stride-1 max, then BlurPool); none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax

from cnn_jax.nn import pooling

Padding = object  # canonical padding: 'SAME' | 'VALID' | 'CIRCULAR' | 'SYMMETRIC' | pads
Window = tuple[int, int, Padding]  # (kernel, stride, padding) of one sliding window


@dataclasses.dataclass(frozen=True)
class PoolKind:
    """What one pooling kind does, for the modules that need to know."""

    name: str
    # (x [B, H, W, C], window, stride, blur, canonical padding) -> the pooled maps
    apply: Callable[[jax.Array, int, int, int, Padding], jax.Array]
    windows: Callable[[int, int, int, Padding], list[Window]]  # (window, stride, blur, pad)
    window_must_fit: bool  # pool_window <= the feature map entering the pool
    uses_blur: bool  # blur_size matters (1..7)
    # (window, blur, input elements, output elements) -> forward FLOPs per example: one op
    # per window element per output; the blur's taps count 2 (multiply-add). max_blur's
    # dense max is counted over the input's elements.
    flops: Callable[[int, int, int, int], int]


def _max(x_bhwc: jax.Array, window: int, stride: int, blur: int, padding: Padding) -> jax.Array:
    return pooling.window_pool(x_bhwc, "max", window, stride, padding)


def _avg(x_bhwc: jax.Array, window: int, stride: int, blur: int, padding: Padding) -> jax.Array:
    return pooling.window_pool(x_bhwc, "avg", window, stride, padding)


def _blur(x_bhwc: jax.Array, window: int, stride: int, blur: int, padding: Padding) -> jax.Array:
    return pooling.blur_downsample(x_bhwc, blur, stride, padding)


def _max_blur(
    x_bhwc: jax.Array, window: int, stride: int, blur: int, padding: Padding
) -> jax.Array:
    dense = pooling.dense_max_pool(x_bhwc, window, padding)
    return pooling.blur_downsample(dense, blur, stride, pooling.blur_padding(padding))


def _none(x_bhwc: jax.Array, window: int, stride: int, blur: int, padding: Padding) -> jax.Array:
    return x_bhwc


def _window_flops(window: int, blur: int, n_in: int, n_out: int) -> int:
    return window * window * n_out


def _blur_flops(window: int, blur: int, n_in: int, n_out: int) -> int:
    return 2 * blur * blur * n_out


POOL_KINDS: dict[str, PoolKind] = {
    kind.name: kind
    for kind in (
        PoolKind("max", _max, lambda w, s, b, p: [(w, s, p)], True, False, _window_flops),
        PoolKind("avg", _avg, lambda w, s, b, p: [(w, s, p)], True, False, _window_flops),
        PoolKind("blur", _blur, lambda w, s, b, p: [(b, s, p)], False, True, _blur_flops),
        PoolKind(
            "max_blur",
            _max_blur,
            lambda w, s, b, p: [(w, 1, p), (b, s, pooling.blur_padding(p))],
            True,
            True,
            lambda w, b, n_in, n_out: w * w * n_in + _blur_flops(w, b, n_in, n_out),
        ),
        PoolKind("none", _none, lambda w, s, b, p: [], False, False, lambda w, b, n_in, n_out: 0),
    )
}


def get(name: str, field: str = "pool") -> PoolKind:
    """The registry entry of `name`; ValueError naming the field for an unknown kind."""
    if name not in POOL_KINDS:
        raise ValueError(f"{field}: unknown value {name!r}; allowed: {', '.join(POOL_KINDS)}")
    return POOL_KINDS[name]
