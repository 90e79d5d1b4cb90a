"""`lax.conv_general_dilated` for NHWC/HWIO float32 convolutions, run by oneDNN on XLA:CPU.

Three FFI calls (`jax.ffi.ffi_call`): forward, input gradient (oneDNN backward_data) and kernel
gradient (backward_weights), tied together by a `jax.custom_vjp`, so `jit` and `grad` see one
differentiable convolution. Under `vmap` (`jax.custom_batching.custom_vmap`) a vmapped input
with a shared kernel folds into the batch and stays on oneDNN; anything else (a vmapped kernel,
as in the `vmap` seed strategy) runs XLA's own convolution for that call. Anything the handlers
do not cover (other layouts or dtypes, input dilation, batch groups, negative padding, empty
shapes) goes to `fallback`, lax's convolution by default.

`FAST_PARTS` names the parts that run on oneDNN; the others run XLA's convolution (the
benchmarks time each part; benchmarks/REPORT_onednn.md).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap

from cnn_jax.nn.onednn import loader

NHWC_HWIO = lax.ConvDimensionNumbers(
    lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2)
)
PARTS = ("forward", "backward_data", "backward_weights")
FAST_PARTS = frozenset(PARTS)

Pair = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Window:
    """A 2-D convolution's window: strides, (low, high) padding per axis, kernel dilation and
    feature groups. Hashable: it keys the compiled pieces."""

    strides: Pair
    padding: tuple[Pair, Pair]
    dilation: Pair
    groups: int

    def attrs(self) -> dict[str, Any]:
        """The FFI attributes conv_handlers.cc binds."""
        as_array = lambda v: np.asarray(v, np.int64)
        return {
            "strides": as_array(self.strides),
            "padding_lo": as_array([lo for lo, _ in self.padding]),
            "padding_hi": as_array([hi for _, hi in self.padding]),
            "dilation": as_array(self.dilation),
            "groups": np.int64(self.groups),
        }

    def out_hw(self, in_hw: Sequence[int], kernel_hw: Sequence[int]) -> Pair:
        """Output height and width (lax's rule: floor division, partial windows dropped)."""
        sizes = zip(in_hw, kernel_hw, self.strides, self.padding, self.dilation)
        h, w = ((n + lo + hi - (k - 1) * d - 1) // s + 1 for n, k, s, (lo, hi), d in sizes)
        return h, w

    def xla(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
        """The same convolution by XLA (the reference and the fallback)."""
        return lax.conv_general_dilated(
            x,
            kernel,
            self.strides,
            self.padding,
            rhs_dilation=self.dilation,
            dimension_numbers=NHWC_HWIO,
            feature_group_count=self.groups,
        )


def _pairs(values: Sequence[int] | None) -> Pair:
    return (1, 1) if values is None else tuple(int(v) for v in values)  # type: ignore[return-value]


def window_of(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    preferred_element_type: Any = None,
) -> Window | None:
    """The Window when the handlers cover this call (NHWC/HWIO float32, no input dilation, no
    batch groups, padding >= 0, consistent groups, non-empty shapes), else None."""
    if lhs.ndim != 4 or rhs.ndim != 4 or batch_group_count != 1:
        return None
    f32 = jnp.dtype(jnp.float32)
    if lhs.dtype != f32 or rhs.dtype != f32 or preferred_element_type not in (None, f32):
        return None
    if dimension_numbers is None or _pairs(lhs_dilation) != (1, 1):
        return None
    if lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != NHWC_HWIO:
        return None
    strides, dilation = _pairs(window_strides), _pairs(rhs_dilation)
    kernel_hw = rhs.shape[:2]
    if isinstance(padding, str):
        dilated = [(k - 1) * d + 1 for k, d in zip(kernel_hw, dilation)]
        padding = lax.padtype_to_pads(lhs.shape[1:3], dilated, strides, padding)
    pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    if len(pads) != 2 or min(min(p) for p in pads) < 0:
        return None
    window = Window(strides, pads, dilation, int(feature_group_count))  # type: ignore[arg-type]
    groups_fit = rhs.shape[2] * window.groups == lhs.shape[3] and rhs.shape[3] % window.groups == 0
    if not groups_fit or min(lhs.shape) < 1 or min(rhs.shape) < 1:
        return None  # lax's own shape errors, or nothing to compute
    return window if min(window.out_hw(lhs.shape[1:3], kernel_hw)) >= 1 else None


def _ffi(target: str, shape: tuple[int, ...], a: jax.Array, b: jax.Array, window: Window):
    status = loader.load()  # registers the targets on first use
    if not status.ok:
        raise RuntimeError(f"oneDNN convolutions: {status.detail}")
    out = jax.ShapeDtypeStruct(shape, jnp.float32)
    return jax.ffi.ffi_call(target, out)(a, b, **window.attrs())


def _vmap_rule(fast: Callable, xla: Callable, fold: bool) -> Callable:
    """custom_vmap rule: with `fold`, a vmapped first operand and a shared second one become one
    call on a bigger batch; otherwise XLA's convolution under vmap."""

    def rule(axis_size: int, in_batched: Sequence[bool], a: jax.Array, b: jax.Array):
        if fold and in_batched[0] and not in_batched[1]:
            out = fast(a.reshape(-1, *a.shape[2:]), b)
            return out.reshape(axis_size, -1, *out.shape[1:]), True
        in_axes = tuple(0 if batched else None for batched in in_batched)
        return jax.vmap(xla, in_axes)(a, b), True

    return rule


def input_grad_xla(window: Window, in_hwc: tuple[int, ...], dy: jax.Array, kernel: jax.Array):
    """XLA's input gradient (the transposed convolution) for input [N, *in_hwc]."""
    x = jax.ShapeDtypeStruct((dy.shape[0], *in_hwc), dy.dtype)
    return jax.linear_transpose(lambda v: window.xla(v, kernel), x)(dy)[0]


def kernel_grad_xla(window: Window, kernel_shape: tuple[int, ...], x: jax.Array, dy: jax.Array):
    """XLA's kernel gradient."""
    kernel = jax.ShapeDtypeStruct(kernel_shape, dy.dtype)
    return jax.linear_transpose(lambda k: window.xla(x, k), kernel)(dy)[0]


@functools.cache
def forward(window: Window) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """oneDNN's (x [N,H,W,C], kernel [KH,KW,C/G,O]) -> y [N,OH,OW,O]."""

    @custom_vmap
    def fast(x: jax.Array, kernel: jax.Array) -> jax.Array:
        oh, ow = window.out_hw(x.shape[1:3], kernel.shape[:2])
        return _ffi(loader.FORWARD, (x.shape[0], oh, ow, kernel.shape[3]), x, kernel, window)

    fast.def_vmap(_vmap_rule(fast, window.xla, fold=True))
    return fast


@functools.cache
def input_grad(window: Window, in_hwc: tuple[int, ...]) -> Callable:
    """oneDNN's (dy [N,OH,OW,O], kernel) -> dx [N,H,W,C] (backward_data), input [N, *in_hwc]."""

    @custom_vmap
    def fast(dy: jax.Array, kernel: jax.Array) -> jax.Array:
        return _ffi(loader.BACKWARD_DATA, (dy.shape[0], *in_hwc), dy, kernel, window)

    xla = functools.partial(input_grad_xla, window, in_hwc)
    fast.def_vmap(_vmap_rule(fast, xla, fold=True))
    return fast


@functools.cache
def kernel_grad(window: Window, kernel_shape: tuple[int, ...]) -> Callable:
    """oneDNN's (x, dy) -> dkernel [KH,KW,C/G,O] (backward_weights)."""

    @custom_vmap
    def fast(x: jax.Array, dy: jax.Array) -> jax.Array:
        return _ffi(loader.BACKWARD_WEIGHTS, kernel_shape, x, dy, window)

    xla = functools.partial(kernel_grad_xla, window, kernel_shape)
    fast.def_vmap(_vmap_rule(fast, xla, fold=False))
    return fast


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv(x: jax.Array, kernel: jax.Array, window: Window) -> jax.Array:
    """The convolution of `window` (NHWC x, HWIO kernel, float32); oneDNN runs FAST_PARTS."""
    return (forward(window) if "forward" in FAST_PARTS else window.xla)(x, kernel)


def _conv_fwd(x: jax.Array, kernel: jax.Array, window: Window):
    return conv(x, kernel, window), (x, kernel)


def _conv_bwd(window: Window, residuals: tuple[jax.Array, jax.Array], dy: jax.Array):
    x, kernel = residuals
    in_hwc, kernel_shape = tuple(x.shape[1:]), tuple(kernel.shape)
    if "backward_data" in FAST_PARTS:
        dx = input_grad(window, in_hwc)(dy, kernel)
    else:
        dx = input_grad_xla(window, in_hwc, dy, kernel)
    if "backward_weights" in FAST_PARTS:
        dkernel = kernel_grad(window, kernel_shape)(x, dy)
    else:
        dkernel = kernel_grad_xla(window, kernel_shape, x, dy)
    return dx, dkernel


conv.defvjp(_conv_fwd, _conv_bwd)


def conv_general_dilated(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision: Any = None,
    preferred_element_type: Any = None,
    *,
    fallback: Callable[..., jax.Array] = lax.conv_general_dilated,
) -> jax.Array:
    """`lax.conv_general_dilated`'s signature: oneDNN when `window_of` covers the call, else
    `fallback` with the same arguments. `precision` is ignored (float32 on CPU either way)."""
    window = window_of(
        lhs,
        rhs,
        window_strides,
        padding,
        lhs_dilation,
        rhs_dilation,
        dimension_numbers,
        feature_group_count,
        batch_group_count,
        preferred_element_type,
    )
    if window is not None:
        return conv(lhs, rhs, window)
    return fallback(
        lhs,
        rhs,
        window_strides,
        padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count,
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
