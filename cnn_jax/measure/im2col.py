"""Convolution as im2col + one matrix product (the seed's "why a dot product").

Each output pixel of a convolution is the dot product of the kernel with the input patch
under it. `im2col` lays every patch out as a row, ordered (u, v, c) like
`kernel_hwio.reshape(-1, C_out)`, so the whole layer becomes one matrix product
[B * H_out * W_out, kh * kw * C_in] @ [kh * kw * C_in, C_out]: the form BLAS / GPU matmul
units run fastest, at the price of copying each input pixel up to kh * kw times.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cnn_jax.nn.layers import Padding, canonical_padding
from cnn_jax.nn.pooling import same_padding_amounts, symmetric_padding_amounts


def explicit_pads(
    size_hw: tuple[int, int], kernel_hw: tuple[int, int], stride: int, padding: Padding
) -> tuple[tuple[int, int], tuple[int, int]]:
    """(before, after) per spatial axis for SAME / VALID / CIRCULAR / SYMMETRIC / ints, as the
    layers pad.

    CIRCULAR uses flax nn.Conv's amounts ((k - 1) // 2, k // 2).
    """
    pad = canonical_padding(padding)
    if isinstance(pad, tuple):
        return pad
    if pad == "VALID":
        return ((0, 0), (0, 0))
    if pad == "CIRCULAR":
        return tuple(((k - 1) // 2, k // 2) for k in kernel_hw)  # type: ignore[return-value]
    if pad == "SYMMETRIC":  # PyTorch's padding=(k - 1) // 2
        return tuple(symmetric_padding_amounts(k) for k in kernel_hw)  # type: ignore[return-value]
    return tuple(same_padding_amounts(n, k, stride) for n, k in zip(size_hw, kernel_hw))  # type: ignore[return-value]


def _pad(x_bhwc: jax.Array, kernel_hw, stride: int, padding: Padding) -> jax.Array:
    pads = explicit_pads(x_bhwc.shape[1:3], kernel_hw, stride, padding)
    mode = "wrap" if canonical_padding(padding) == "CIRCULAR" else "constant"
    return jnp.pad(x_bhwc, ((0, 0), *pads, (0, 0)), mode=mode)


def im2col(
    x_bhwc: jax.Array, kernel_hw: tuple[int, int], stride: int = 1, padding: Padding = "VALID"
) -> jax.Array:
    """Patches [B, H_out, W_out, kh * kw * C], one row per output pixel, (u, v, c) order."""
    kh, kw = kernel_hw
    x_bhwc = _pad(jnp.asarray(x_bhwc), kernel_hw, stride, padding)
    _, h, w, c = x_bhwc.shape
    out_h, out_w = (h - kh) // stride + 1, (w - kw) // stride + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"kernel_hw: {kernel_hw} larger than the padded input ({h}, {w})")
    taps = [
        x_bhwc[
            :, u : u + stride * (out_h - 1) + 1 : stride, v : v + stride * (out_w - 1) + 1 : stride
        ]
        for u in range(kh)
        for v in range(kw)
    ]
    patches = jnp.stack(taps, axis=3)  # [B, H_out, W_out, kh * kw, C]
    return patches.reshape(*patches.shape[:3], kh * kw * c)


def conv_im2col(
    x_bhwc: jax.Array,
    kernel_hwio: jax.Array,
    bias_o: jax.Array | None = None,
    stride: int = 1,
    padding: Padding = "VALID",
) -> jax.Array:
    """The convolution computed as im2col(x) @ kernel.reshape(kh * kw * C_in, C_out) + bias."""
    kh, kw, c_in, c_out = kernel_hwio.shape
    patches = im2col(x_bhwc, (kh, kw), stride, padding)
    y = jnp.matmul(
        patches, kernel_hwio.reshape(kh * kw * c_in, c_out), precision=jax.lax.Precision.HIGHEST
    )
    return y if bias_o is None else y + bias_o


def conv_direct(
    x_bhwc: jax.Array,
    kernel_hwio: jax.Array,
    bias_o: jax.Array | None = None,
    stride: int = 1,
    padding: Padding = "VALID",
) -> jax.Array:
    """The same convolution by XLA's native convolution (what nn.Conv runs)."""
    x_bhwc = _pad(jnp.asarray(x_bhwc), kernel_hwio.shape[:2], stride, padding)
    y = jax.lax.conv_general_dilated(
        x_bhwc,
        kernel_hwio,
        window_strides=(stride, stride),
        padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=jax.lax.Precision.HIGHEST,
    )
    return y if bias_o is None else y + bias_o


def patch_dot(x_hwc: jax.Array, kernel_hwio: jax.Array, row: int, col: int, stride: int = 1):
    """One VALID output pixel [C_out] as the literal dot product of kernel and patch."""
    kh, kw = kernel_hwio.shape[:2]
    patch = x_hwc[row * stride : row * stride + kh, col * stride : col * stride + kw]
    return jnp.einsum("hwc,hwco->o", patch, kernel_hwio, precision=jax.lax.Precision.HIGHEST)
