"""Compose a stack of linear convolutions into one convolution (the seed's "collapse").

Without an activation, conv(conv(x)) is again a convolution. For two layers (kernel k1,
stride s1, C0 -> C1) then (k2, s2, C1 -> C2), cross-correlation as in `lax.conv`:

    z[j] = sum_v (sum_u x[(j s2 + v) s1 + u] K1[u] + b1) K2[v] + b2
         = sum_w x[j s1 s2 + w] K[w] + b

with K[w] = sum_{u + s1 v = w} K1[u] @ K2[v] (the full convolution of K1 with K2 dilated by
s1, a C0 x C2 matrix per tap), kernel size k1 + s1 (k2 - 1), stride s1 s2, and bias
b = b1 @ sum_v K2[v] + b2. Per spatial axis; stacks compose pairwise.

Padding: exact for VALID everywhere, and for CIRCULAR (wrap) padding when every layer but
the last has an input size divisible by its stride (each intermediate map is then periodic
with period n / s, matching the input's period n); the composed layer wraps with
pad_before = p1 + s1 p2. With SAME
*zero* padding the stack pads its intermediate maps with zeros, whereas the composed
convolution sees the continued input (and no bias) there: the two agree in the interior
and differ in a border of width up to the composed pad_before / pad_after.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.config.checks import check_choice
from cnn_jax.nn import activation_kinds
from cnn_jax.nn.model_spec import ModelSpec

MODES = ("VALID", "CIRCULAR")


@dataclasses.dataclass(frozen=True)
class LinearConv:
    """One convolution: kernel [kh, kw, C_in, C_out], bias [C_out], stride, wrap pads.

    `pad_before` (per axis H, W) is only used in CIRCULAR mode; the pad after is
    k - 1 - pad_before, so a stride-1 circular conv keeps the size.
    """

    kernel_hwio: np.ndarray
    bias_o: np.ndarray
    stride: int = 1
    pad_before: tuple[int, int] = (0, 0)

    @property
    def kernel_size(self) -> tuple[int, int]:
        return int(self.kernel_hwio.shape[0]), int(self.kernel_hwio.shape[1])

    @property
    def pads(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right)) for wrap padding."""
        kh, kw = self.kernel_size
        (ph, pw) = self.pad_before
        return ((ph, kh - 1 - ph), (pw, kw - 1 - pw))


def flax_circular_pad_before(kernel_size: int) -> int:
    """What flax's nn.Conv(padding='CIRCULAR') pads before: (k - 1) // 2."""
    return (kernel_size - 1) // 2


def make_layer(
    kernel_hwio: Any, bias_o: Any | None = None, stride: int = 1, pad_before: Any = None
) -> LinearConv:
    """A LinearConv with flax's circular padding by default and a zero bias if none is given."""
    kernel = np.asarray(kernel_hwio, np.float64)
    if kernel.ndim != 4:
        raise ValueError(f"kernel_hwio: shape {kernel.shape}; allowed: 4-D [kh, kw, C_in, C_out]")
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride: {stride!r} not allowed; allowed: integers >= 1")
    bias = np.zeros(kernel.shape[-1]) if bias_o is None else np.asarray(bias_o, np.float64)
    if bias.shape != (kernel.shape[-1],):
        raise ValueError(f"bias_o: shape {bias.shape}; allowed: ({kernel.shape[-1]},)")
    if pad_before is None:
        pad_before = tuple(flax_circular_pad_before(k) for k in kernel.shape[:2])
    return LinearConv(kernel, bias, int(stride), (int(pad_before[0]), int(pad_before[1])))


def compose_two(first: LinearConv, second: LinearConv) -> LinearConv:
    """The single convolution equal to `second(first(x))` (no activation in between)."""
    k1h, k1w, c0, c1 = first.kernel_hwio.shape
    k2h, k2w, c1b, c2 = second.kernel_hwio.shape
    if c1 != c1b:
        raise ValueError(f"second.kernel_hwio: C_in {c1b}; allowed: first's C_out {c1}")
    s1 = first.stride
    kernel = np.zeros((k1h + s1 * (k2h - 1), k1w + s1 * (k2w - 1), c0, c2))
    for vh in range(k2h):
        for vw in range(k2w):
            tap = np.einsum("hwio,op->hwip", first.kernel_hwio, second.kernel_hwio[vh, vw])
            kernel[s1 * vh : s1 * vh + k1h, s1 * vw : s1 * vw + k1w] += tap
    bias = first.bias_o @ second.kernel_hwio.sum(axis=(0, 1)) + second.bias_o
    pad_before = tuple(p1 + s1 * p2 for p1, p2 in zip(first.pad_before, second.pad_before))
    return LinearConv(kernel, bias, s1 * second.stride, pad_before)  # type: ignore[arg-type]


def compose(stack: Sequence[LinearConv]) -> LinearConv:
    """Collapses a stack (applied first to last) into one LinearConv."""
    if not stack:
        raise ValueError("stack: empty; allowed: at least one LinearConv")
    out = stack[0]
    for layer in stack[1:]:
        out = compose_two(out, layer)
    return out


def apply_conv(layer: LinearConv, x_bhwc: jax.Array, mode: str = "VALID") -> jax.Array:
    """Cross-correlation of `x_bhwc` with the layer, VALID or with wrap (CIRCULAR) padding."""
    mode = check_choice("mode", mode.upper(), MODES)
    x_bhwc = jnp.asarray(x_bhwc)
    if mode == "CIRCULAR":
        x_bhwc = jnp.pad(x_bhwc, ((0, 0), *layer.pads, (0, 0)), mode="wrap")
    y = jax.lax.conv_general_dilated(
        x_bhwc,
        jnp.asarray(layer.kernel_hwio, x_bhwc.dtype),
        window_strides=(layer.stride, layer.stride),
        padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=jax.lax.Precision.HIGHEST,
    )
    return y + jnp.asarray(layer.bias_o, x_bhwc.dtype)


def apply_stack(stack: Sequence[LinearConv], x_bhwc: jax.Array, mode: str = "VALID") -> jax.Array:
    """Applies the layers one after another (identity activation)."""
    for layer in stack:
        x_bhwc = apply_conv(layer, x_bhwc, mode)
    return x_bhwc


def stack_from_params(params: Mapping[str, Any], spec: ModelSpec) -> list[LinearConv]:
    """The conv layers of a trained CNN (`params['block{i}']['conv']`) as LinearConvs.

    Only meaningful for a purely linear conv stack: plain conv blocks with a linear
    activation (`activation_kinds.LINEAR`: identity), no batch norm, no pooling, dilation 1;
    anything else raises ValueError.
    """
    stack = []
    for i, block in enumerate(spec.blocks):
        where = f"model.blocks[{i}]"
        if not activation_kinds.get(block.activation, f"{where}.activation").linear:
            allowed = ", ".join(activation_kinds.LINEAR)
            raise ValueError(
                f"{where}.activation: {block.activation!r}; allowed: {allowed} (linear stack)"
            )
        for field, value, allowed in (
            ("type", block.type, "conv"),
            ("pool", block.pool, "none"),
            ("batch_norm", block.batch_norm, False),
            ("dilation", block.dilation, 1),
        ):
            if value != allowed:
                raise ValueError(f"{where}.{field}: {value!r}; allowed: {allowed!r} (linear stack)")
        conv = params[f"block{i}"]["conv"]
        bias = conv.get("bias", np.zeros(block.features))
        stack.append(make_layer(np.asarray(conv["kernel"]), np.asarray(bias), block.stride))
    return stack
