"""Pooling primitives: padding amounts, the binomial blur (BlurPool), tile and window pooling.

The pooling kinds (`cnn_jax.nn.pool_kinds`) are built from these, and `layers.Pool` applies
the kinds, so this module sits below both and imports neither.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

NO_PADS = ((0, 0), (0, 0))


def same_padding_amounts(size: int, window: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Padding (before, after) that XLA's 'SAME' uses: output size ceil(size / stride)."""
    effective = (window - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def symmetric_padding_amounts(window: int, dilation: int = 1) -> tuple[int, int]:
    """Padding (before, after) of the 'SYMMETRIC' mode: (k_eff - 1) // 2 on both sides, on
    every map size and stride, as PyTorch's Conv2d / MaxPool2d(padding=(k - 1) // 2) pad."""
    p = (window - 1) * dilation // 2
    return p, p


def _explicit_pads(
    x_bhwc: jax.Array, window: int, stride: int, padding: str | tuple
) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(padding, tuple):
        return padding
    if padding == "VALID":
        return ((0, 0), (0, 0))
    if padding == "SYMMETRIC":
        return (symmetric_padding_amounts(window),) * 2
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


def blur_padding(padding: str | tuple) -> str:
    """The padding of the blur that follows a pooling window: circular stays circular, any
    other padding becomes 'SAME' (the window already chose the map's border)."""
    return "CIRCULAR" if padding == "CIRCULAR" else "SAME"


def blur_downsample(
    x_bhwc: jax.Array, size: int, stride: int, padding: str | tuple = "SAME"
) -> jax.Array:
    """Anti-aliased subsampling (BlurPool): per-channel binomial blur, then keep every stride-th.

    'SAME' pads by reflection with antialiased-cnns' amounts (Zhang 2019, blurpool.py:
    before = (size-1)//2, after = ceil((size-1)/2), the same on every map size), so the blur
    is centred as there; XLA's SAME would put the extra pixel after for odd sizes on even maps.
    Output size ceil(n / stride), as SAME. 'CIRCULAR' wraps by the same amounts; 'SYMMETRIC'
    reflects (size - 1) // 2 on both sides (the same as 'SAME' for odd sizes); 'VALID' and
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


def _wrap_circular(
    x_bhwc: jax.Array, window: int, stride: int, padding: str | tuple
) -> tuple[jax.Array, tuple]:
    """The input and the zero padding left for the window: a circular map is wrapped here."""
    pads = _explicit_pads(x_bhwc, window, stride, padding)
    if padding == "CIRCULAR":
        return pad_spatial(x_bhwc, pads, "wrap"), NO_PADS
    return x_bhwc, pads


def window_pool(
    x_bhwc: jax.Array, reduce: str, window: int, stride: int, padding: str | tuple
) -> jax.Array:
    """Max or avg pooling (`reduce` 'max' | 'avg') over window x window, canonical padding.

    Non-overlapping windows without padding go through `tile_pool` (far cheaper gradients on
    CPU), the others through Flax's reduce_window pooling.
    """
    x_bhwc, pads = _wrap_circular(x_bhwc, window, stride, padding)
    if window == stride and pads == NO_PADS:
        return tile_pool(x_bhwc, window, reduce)
    pool = nn.max_pool if reduce == "max" else nn.avg_pool
    return pool(x_bhwc, (window, window), (stride, stride), padding=pads)


def dense_max_pool(x_bhwc: jax.Array, window: int, padding: str | tuple) -> jax.Array:
    """Stride-1 max pooling over window x window (MaxBlurPool's first step), canonical padding."""
    x_bhwc, pads = _wrap_circular(x_bhwc, window, 1, padding)
    return nn.max_pool(x_bhwc, (window, window), (1, 1), padding=pads)
