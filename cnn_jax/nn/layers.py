"""Flax Linen building blocks for CNNs: activation, pooling, noise, flatten.

Convolution, dense, batch norm and dropout are Flax's own (`nn.Conv`, `nn.Dense`,
`nn.BatchNorm`, `nn.Dropout`); this module adds what Flax lacks and gives every layer a
name-based constructor so models are built from plain configs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.config.checks import check_choice
from cnn_jax.nn import activation_kinds, pool_kinds, pooling

Padding = str | int | Sequence[int] | Sequence[tuple[int, int]]

ACTIVATIONS = tuple(
    activation_kinds.ACTIVATION_KINDS
)  # registry keys (cnn_jax.nn.activation_kinds)
POOLINGS = tuple(pool_kinds.POOL_KINDS)  # one registry entry per kind (cnn_jax.nn.pool_kinds)
PADDING_MODES = ("SAME", "VALID", "CIRCULAR", "SYMMETRIC")


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Looks up an activation function by name (see `cnn_jax.nn.activation_kinds`)."""
    return activation_kinds.get(name).apply


def canonical_padding(padding: Padding) -> str | tuple[tuple[int, int], tuple[int, int]]:
    """Normalises a padding spec to 'SAME' | 'VALID' | 'CIRCULAR' | 'SYMMETRIC' or explicit
    ((top, bottom), (left, right)).

    Integers mean symmetric zero padding of that many pixels (the P of the textbook formula).
    'SAME' is XLA's: (total // 2, rest), so a stride-2 window on an even map pads only after;
    'SYMMETRIC' is PyTorch's padding=(k - 1) // 2 on both sides, whatever the map and stride
    (`conv_padding`, `pooling.symmetric_padding_amounts`).
    """
    if isinstance(padding, str):
        return check_choice("padding", padding.upper(), PADDING_MODES)
    if isinstance(padding, (int, np.integer)):
        p = int(padding)
        return ((p, p), (p, p))
    values = list(padding)
    if len(values) == 2 and all(isinstance(v, (int, np.integer)) for v in values):
        return ((int(values[0]),) * 2, (int(values[1]),) * 2)
    if len(values) == 2 and all(len(v) == 2 for v in values):
        return tuple((int(a), int(b)) for a, b in values)  # type: ignore[return-value]
    raise ValueError(f"padding: cannot interpret {padding!r}; allowed: SAME, VALID, CIRCULAR, int")


def conv_padding(padding: Padding, kernel_size: int, dilation: int = 1) -> str | tuple:
    """What `nn.Conv` takes for a block's padding: 'SYMMETRIC' becomes explicit pads of
    (k_eff - 1) // 2 on every side (PyTorch's Conv2d(padding=(k - 1) // 2)); others as given."""
    padding = canonical_padding(padding)
    if padding != "SYMMETRIC":
        return padding
    return (pooling.symmetric_padding_amounts(kernel_size, dilation),) * 2


class Activation(nn.Module):
    """Element-wise nonlinearity chosen by name; a module so summaries list it."""

    function: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return get_activation(self.function)(x)


class Pool(nn.Module):
    """Spatial pooling by name: max, avg, blur (BlurPool), max_blur (MaxBlurPool) or none.

    Pooling has no parameters. Each kind's forward pass is its `cnn_jax.nn.pool_kinds` entry,
    so a kind registered there is usable here as is. `max_blur` is Zhang 2019's anti-aliased
    max pooling: a dense (stride 1) max over the window, then blur + subsample by `stride`.
    """

    kind: str = "max"
    window: int = 2
    stride: int = 2
    padding: Padding = "VALID"
    blur_size: int = 3

    @nn.compact
    def __call__(self, x_bhwc: jax.Array) -> jax.Array:
        kind = pool_kinds.get(self.kind)
        padding = canonical_padding(self.padding)
        return kind.apply(x_bhwc, self.window, self.stride, self.blur_size, padding)


class GlobalAvgPool(nn.Module):
    """Mean over H and W: [B, H, W, C] -> [B, C]."""

    @nn.compact
    def __call__(self, x_bhwc: jax.Array) -> jax.Array:
        return jnp.mean(x_bhwc, axis=(1, 2))


class GlobalMaxPool(nn.Module):
    """Max over H and W: [B, H, W, C] -> [B, C] (the head of Kayhan & van Gemert 2020's net)."""

    @nn.compact
    def __call__(self, x_bhwc: jax.Array) -> jax.Array:
        return jnp.max(x_bhwc, axis=(1, 2))


class Flatten(nn.Module):
    """[B, H, W, C] -> [B, H*W*C]."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return x.reshape((x.shape[0], -1))


class GaussianNoise(nn.Module):
    """Adds N(0, std^2) noise in training only (noise injection); identity in eval.

    Draws from the 'noise' RNG stream so it is reproducible from the step's key.
    """

    std: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
        if deterministic or self.std == 0.0:
            return x
        noise = jax.random.normal(self.make_rng("noise"), x.shape, x.dtype)
        return x + self.std * noise
