"""Flax Linen building blocks for CNNs: activation, pooling, noise, flatten.

Convolution, dense, batch norm and dropout are Flax's own (`nn.Conv`, `nn.Dense`,
`nn.BatchNorm`, `nn.Dropout`); this module adds what Flax lacks and gives every layer a
name-based constructor so models are built from plain configs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.config.checks import check_choice
from cnn_jax.nn import activation_kinds, pool_kinds

Padding = str | int | Sequence[int] | Sequence[tuple[int, int]]

ACTIVATIONS = tuple(
    activation_kinds.ACTIVATION_KINDS
)  # registry keys (cnn_jax.nn.activation_kinds)
POOLINGS = tuple(pool_kinds.POOL_KINDS)  # one registry entry per kind (cnn_jax.nn.pool_kinds)
PADDING_MODES = ("SAME", "VALID", "CIRCULAR")


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Looks up an activation function by name (see `cnn_jax.nn.activation_kinds`)."""
    return activation_kinds.get(name).apply


def canonical_padding(padding: Padding) -> str | tuple[tuple[int, int], tuple[int, int]]:
    """Normalises a padding spec to 'SAME' | 'VALID' | 'CIRCULAR' | ((top, bottom), (left, right)).

    Integers mean symmetric zero padding of that many pixels (the P of the textbook formula).
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


def same_padding_amounts(size: int, window: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Padding (before, after) that XLA's 'SAME' uses: output size ceil(size / stride)."""
    effective = (window - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _explicit_pads(
    x_bhwc: jax.Array, window: int, stride: int, padding: str | tuple
) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(padding, tuple):
        return padding
    if padding == "VALID":
        return ((0, 0), (0, 0))
    return tuple(same_padding_amounts(x_bhwc.shape[i], window, stride) for i in (1, 2))  # type: ignore[return-value]


def pad_spatial(x_bhwc: jax.Array, pads: tuple, mode: str) -> jax.Array:
    """Pads H and W with `mode` ('constant', 'wrap' or 'reflect')."""
    if all(p == (0, 0) for p in pads):
        return x_bhwc
    return jnp.pad(x_bhwc, ((0, 0), pads[0], pads[1], (0, 0)), mode=mode)


def binomial_filter(size: int) -> np.ndarray:
    """Normalised 2-D binomial low-pass filter [size, size] (Zhang 2019), size in 1..7."""
    if not 1 <= size <= 7:
        raise ValueError(f"blur_size: {size} not allowed; allowed: 1..7")
    row = np.array([math.comb(size - 1, k) for k in range(size)], dtype=np.float64)
    kernel = np.outer(row, row)
    return (kernel / kernel.sum()).astype(np.float32)


def blurpool_pads(size: int) -> tuple[int, int]:
    """(before, after) padding of antialiased-cnns' BlurPool for a filter of `size` taps:
    [int((size-1)/2), ceil((size-1)/2)] (Zhang 2019, antialiased_cnns/blurpool.py)."""
    return (size - 1) // 2, -(-(size - 1) // 2)


def blur_downsample(
    x_bhwc: jax.Array, size: int, stride: int, padding: str | tuple = "SAME"
) -> jax.Array:
    """Anti-aliased subsampling (BlurPool): per-channel binomial blur, then keep every stride-th.

    'SAME' pads by reflection with antialiased-cnns' amounts (Zhang 2019, blurpool.py:
    before = (size-1)//2, after = ceil((size-1)/2), the same on every map size), so the blur
    is centred as there; XLA's SAME would put the extra pixel after for odd sizes on even maps.
    Output size ceil(n / stride), as SAME. 'CIRCULAR' wraps by the same amounts, 'VALID' and
    explicit pads are used as given.
    """
    row = binomial_filter(size).sum(axis=1)  # the 2-D filter is the outer product of this row
    if padding in ("SAME", "CIRCULAR"):
        pads = (blurpool_pads(size),) * 2
    else:
        pads = _explicit_pads(x_bhwc, size, stride, padding)
    mode = "wrap" if padding == "CIRCULAR" else "reflect"
    x_bhwc = pad_spatial(x_bhwc, pads, mode)
    # Separable: a strided 1-D pass over H, then over W. Same result as the depthwise conv,
    # whose gradient XLA computes ~50x slower on CPU.
    for axis in (1, 2):
        n_out = (x_bhwc.shape[axis] - size) // stride + 1
        taps = [
            jax.lax.slice_in_dim(x_bhwc, k, k + stride * (n_out - 1) + 1, stride, axis)
            for k in range(size)
        ]
        x_bhwc = sum(float(w) * tap for w, tap in zip(row, taps))
    return x_bhwc


def _tiles(x_bhwc: jax.Array, window: int) -> jax.Array:
    """[B, H, W, C] -> [B, H/k, k, W/k, k, C], dropping rows/columns that fill no window."""
    b, h, w, c = x_bhwc.shape
    h_out, w_out = h // window, w // window
    x_bhwc = x_bhwc[:, : h_out * window, : w_out * window]
    return x_bhwc.reshape(b, h_out, window, w_out, window, c)


def _first_max_mask(tiles: jax.Array, top: jax.Array) -> jax.Array:
    """Bool, shaped like `tiles`: the first maximum of each window in row-major order (a NaN
    counts as the maximum, as XLA's max propagates it)."""
    hit = (tiles == top) | jnp.isnan(tiles)
    window = tiles.shape[2]
    taken = jnp.zeros_like(hit[:, :, :1, :, :1, :])
    rows = []
    for i in range(window):
        cols = []
        for j in range(window):
            first = hit[:, :, i : i + 1, :, j : j + 1, :] & ~taken
            taken = taken | first
            cols.append(first)
        rows.append(jnp.concatenate(cols, axis=4))
    return jnp.concatenate(rows, axis=2)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def tile_max_pool(x_bhwc: jax.Array, window: int) -> jax.Array:
    """VALID max pooling with stride == window, as a reshape + max.

    Same values and same gradient as `nn.max_pool`: the first maximum of each window, in
    row-major order, gets the whole gradient. The derivative is a select of that element
    (a custom JVP, which reverse mode transposes), so the gradient is one fused element-wise
    pass instead of XLA's select-and-scatter (~10x faster on CPU, see benchmarks/REPORT.md),
    and forward mode (jvp, Hessian-vector products) works as well.
    """
    return _tiles(x_bhwc, window).max(axis=(2, 4))


@tile_max_pool.defjvp
def _tile_max_pool_jvp(window: int, primals, tangents):
    (x_bhwc,), (dx_bhwc,) = primals, tangents
    tiles = _tiles(x_bhwc, window)
    y_bhwc = tiles.max(axis=(2, 4))
    first = _first_max_mask(tiles, y_bhwc[:, :, None, :, None, :])
    zero = jnp.zeros((), dx_bhwc.dtype)
    return y_bhwc, jnp.where(first, _tiles(dx_bhwc, window), zero).sum(axis=(2, 4))


def tile_pool(x_bhwc: jax.Array, window: int, kind: str) -> jax.Array:
    """Non-overlapping VALID max/avg pooling (stride == window): values equal `reduce_window`'s,
    gradients are far cheaper on CPU."""
    if kind == "max":
        return tile_max_pool(x_bhwc, window)
    return _tiles(x_bhwc, window).mean(axis=(2, 4))


class Activation(nn.Module):
    """Element-wise nonlinearity chosen by name; a module so summaries list it."""

    function: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return get_activation(self.function)(x)


class Pool(nn.Module):
    """Spatial pooling by name: max, avg, blur (BlurPool), max_blur (MaxBlurPool) or none.

    Pooling has no parameters. `max_blur` is Zhang 2019's anti-aliased max pooling: a dense
    (stride 1) max over the window, then blur + subsample by `stride`.
    """

    kind: str = "max"
    window: int = 2
    stride: int = 2
    padding: Padding = "VALID"
    blur_size: int = 3

    @nn.compact
    def __call__(self, x_bhwc: jax.Array) -> jax.Array:
        kind = check_choice("pool", self.kind, POOLINGS)
        padding = canonical_padding(self.padding)
        if kind == "none":
            return x_bhwc
        if kind == "blur":
            return blur_downsample(x_bhwc, self.blur_size, self.stride, padding)
        window, stride = (self.window,) * 2, (self.stride,) * 2
        pool_stride = (1, 1) if kind == "max_blur" else stride
        pads = _explicit_pads(x_bhwc, self.window, pool_stride[0], padding)
        if padding == "CIRCULAR":
            x_bhwc, pads = pad_spatial(x_bhwc, pads, "wrap"), ((0, 0), (0, 0))
        if kind in ("max", "avg") and self.window == self.stride and pads == ((0, 0), (0, 0)):
            return tile_pool(x_bhwc, self.window, kind)
        if kind == "avg":
            return nn.avg_pool(x_bhwc, window, pool_stride, padding=pads)
        x_bhwc = nn.max_pool(x_bhwc, window, pool_stride, padding=pads)
        if kind == "max_blur":
            blur_padding = "CIRCULAR" if padding == "CIRCULAR" else "SAME"
            x_bhwc = blur_downsample(x_bhwc, self.blur_size, self.stride, blur_padding)
        return x_bhwc


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
