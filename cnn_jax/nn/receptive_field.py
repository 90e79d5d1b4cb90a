"""Receptive field size, jump and start of every layer of a ModelSpec, by formula.

Per spatial axis, a layer with effective kernel k (dilation included), stride s and
`p` pixels of padding before maps (Araujo et al., Distill 2019):

    jump_out  = jump_in * s                        (input pixels between adjacent units)
    size_out  = size_in + (k - 1) * jump_in        (input pixels one unit sees)
    start_out = start_in + ((k - 1) / 2 - p) * jump_in   (centre of unit 0, input coords)

so unit i of a layer sees input pixels start + i * jump +- (size - 1) / 2 (clipped at the
image border, or wrapped for circular padding). Pooling counts as a layer (window, stride).
Residual blocks use the conv path (the 1x1 shortcut sees less). SAME padding depends on
the input size, so `receptive_fields` takes it.

`gradient_support` measures the same thing by brute force: the input pixels whose
gradient of one unit is nonzero. It equals the formula when every path is live (smooth
activations such as tanh, avg pooling); ReLU and max pooling cut dead paths, so there the
measured support is a subset (the "effective" receptive field is smaller).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.nn import pool_kinds
from cnn_jax.nn.layers import canonical_padding
from cnn_jax.nn.model_spec import BlockSpec, ModelSpec
from cnn_jax.nn.pooling import same_padding_amounts, symmetric_padding_amounts


@dataclasses.dataclass(frozen=True)
class FieldRow:
    """The receptive field of one layer's output units; tuples are (H axis, W axis)."""

    name: str
    kernel: int
    stride: int
    pad_before: tuple[int, int]
    output_size: tuple[int, int]
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]

    def input_span(self, row: int, col: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """Unclipped input pixel range ((top, bottom), (left, right)) that unit (row, col) sees."""
        spans = []
        for axis, index in enumerate((row, col)):
            centre = self.start[axis] + index * self.jump[axis]
            half = (self.size[axis] - 1) / 2
            spans.append((centre - half, centre + half))
        return spans[0], spans[1]


@dataclasses.dataclass(frozen=True)
class _Op:
    """One sliding window: effective kernel, stride, padding rule."""

    kernel: int
    stride: int
    padding: object  # canonical padding: a mode of `layers.PADDING_MODES` | ((t, b), (l, r))
    circular: str = "same"  # how CIRCULAR pads: 'same' (Pool / blur) or 'flax' (nn.Conv)


def _pads(op: _Op, size: int, axis: int) -> tuple[int, int]:
    pad = op.padding
    if isinstance(pad, tuple):
        return pad[axis]
    if pad == "VALID":
        return (0, 0)
    if pad == "CIRCULAR" and op.circular == "flax":
        return ((op.kernel - 1) // 2, op.kernel // 2)
    if pad == "SYMMETRIC":
        return symmetric_padding_amounts(op.kernel)
    return same_padding_amounts(size, op.kernel, op.stride)


def _pool_ops(b: BlockSpec) -> list[_Op]:
    """The pool's sliding windows, from its registry entry (an unknown kind is an error)."""
    padding = canonical_padding(b.pool_padding)
    windows = pool_kinds.get(b.pool).windows(b.pool_window, b.pool_stride, b.blur_size, padding)
    return [_Op(kernel, stride, pad) for kernel, stride, pad in windows]


def layer_ops(spec: ModelSpec) -> list[tuple[str, list[_Op]]]:
    """(intermediate name, sliding windows it applies) for every spatial layer of the spec."""
    out = []
    for i, b in enumerate(spec.blocks):
        k_eff = (b.kernel_size - 1) * b.dilation + 1
        padding = canonical_padding(b.padding)
        if b.type == "residual":
            out.append((f"block{i}/act1", [_Op(k_eff, b.stride, padding, "flax")]))
            out.append((f"block{i}/act", [_Op(k_eff, 1, padding, "flax")]))
        else:
            out.append((f"block{i}/conv", [_Op(k_eff, b.stride, padding, "flax")]))
        if b.pool != "none":
            out.append((f"block{i}/pool", _pool_ops(b)))
    return out


def receptive_fields(spec: ModelSpec, input_size: int | Sequence[int]) -> list[FieldRow]:
    """One FieldRow per spatial layer ('block{i}/conv', 'block{i}/pool', ...), input first."""
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"input_size: {input_size!r}; allowed: int >= 1 or (H, W)")
    n, size, jump, start = list(hw), [1, 1], [1, 1], [0.0, 0.0]
    rows = [FieldRow("input", 1, 1, (0, 0), tuple(n), (1, 1), (1, 1), (0.0, 0.0))]
    for name, ops in layer_ops(spec):
        pad_first = [0, 0]
        for o, op in enumerate(ops):
            for axis in range(2):
                before, after = _pads(op, n[axis], axis)
                if o == 0:
                    pad_first[axis] = before
                start[axis] += ((op.kernel - 1) / 2 - before) * jump[axis]
                size[axis] += (op.kernel - 1) * jump[axis]
                jump[axis] *= op.stride
                n[axis] = (n[axis] + before + after - op.kernel) // op.stride + 1
        if min(n) < 1:
            raise ValueError(
                f"input_size: {input_size!r} too small; layer {name} would have output size {n}"
            )
        kernel, stride = ops[0].kernel, int(np.prod([op.stride for op in ops]))
        rows.append(
            FieldRow(
                name,
                kernel,
                stride,
                tuple(pad_first),
                tuple(n),
                tuple(size),
                tuple(jump),
                tuple(start),
            )  # type: ignore[arg-type]
        )
    return rows


def field_for(rows: Sequence[FieldRow], name: str) -> FieldRow:
    """The row an intermediate name belongs to ('block1/act' -> 'block1/conv', 'block1')."""
    by_name = {r.name: r for r in rows}
    if name in by_name:
        return by_name[name]
    prefix = name.split("/")[0]
    if "/" in name and name.split("/")[1] in ("bn", "act", "noise"):
        return by_name.get(f"{prefix}/conv") or by_name[f"{prefix}/act"]
    block = [r for r in rows if r.name.split("/")[0] == prefix]
    if not block:
        raise ValueError(f"name: {name!r} has no receptive field; allowed: {sorted(by_name)}")
    return block[-1]


def gradient_supports(
    model: nn.Module,
    variables: dict,
    input_shape: tuple[int, int, int],
    units: Sequence[tuple[str, tuple[int, int], int]],
    seed: int = 0,
) -> np.ndarray:
    """Boolean [N, H, W]: for each (layer, (row, col), channel), the input pixels with a
    nonzero gradient of that unit. One compiled Jacobian for all units.

    The input is random normal (so no activation sits exactly at a kink); the gradient is
    summed in absolute value over input channels.
    """
    x_hwc = jax.random.normal(jax.random.key(seed), input_shape, jnp.float32)
    _, inter = jax.eval_shape(lambda x: model.apply(variables, x[None], train=False), x_hwc)
    for layer, _, _ in units:
        if layer not in inter:
            raise ValueError(f"layer: {layer!r} not an intermediate; allowed: {sorted(inter)}")

    def unit_values(x_hwc):
        _, inter = model.apply(variables, x_hwc[None], train=False)
        return jnp.stack([inter[name][0, r, c, ch] for name, (r, c), ch in units])

    jac_nhwc = jax.jit(jax.jacrev(unit_values))(x_hwc)
    return np.asarray(jnp.sum(jnp.abs(jac_nhwc), axis=-1) > 0)


def gradient_support(
    model: nn.Module,
    variables: dict,
    input_shape: tuple[int, int, int],
    layer: str,
    unit: tuple[int, int],
    channel: int = 0,
    seed: int = 0,
) -> np.ndarray:
    """Boolean [H, W]: input pixels with a nonzero gradient of one unit of `layer`."""
    return gradient_supports(model, variables, input_shape, [(layer, unit, channel)], seed)[0]


def support_extent(mask_hw: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """((first row, last row), (first col, last col)) of the True pixels of a mask."""
    rows, cols = np.nonzero(mask_hw)
    if rows.size == 0:
        raise ValueError("mask_hw: no True pixel; allowed: a mask with a nonzero support")
    return (int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max()))
