"""Per-layer model summary: output shape, parameter count and FLOPs, as a Keras-style table.

Shapes come from an abstract forward pass (`jax.eval_shape`, nothing is computed), layers
are found by intercepting every Flax module call, parameters are counted from the real
variables, and FLOPs use the textbook formulas (a multiply-add counts as 2 FLOPs):

- conv:   2 * K_h * K_w * (C_in / groups) * C_out * H_out * W_out   (bias ignored)
- dense:  2 * N_in * N_out
- pool:   K_h * K_w * C * H_out * W_out  (max / avg: one op per window element)
- blur:   2 * B * B * C * H_out * W_out  (B = blur size; a multiply-add per tap)
- max_blur: K_h * K_w * C * H_in * W_in (the dense max) + the blur's 2 * B * B * C * H_out * W_out
- batch norm: 2 * H * W * C (scale and shift); activation: one op per element (identity: 0).

Pooling and activation FLOPs come from their registries (`PoolKind.flops`,
`ActivationKind.flops_per_element`), so a new kind brings its own count.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnn_jax.nn import activation_kinds, layers, pool_kinds

LEAF_TYPES = (
    nn.Conv,
    nn.Dense,
    nn.BatchNorm,
    nn.Dropout,
    layers.Activation,
    layers.Pool,
    layers.GlobalAvgPool,
    layers.Flatten,
    layers.GaussianNoise,
)


@dataclasses.dataclass(frozen=True)
class LayerSummary:
    """One row of the summary. Shapes exclude the batch dimension."""

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    flops: int


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    """All rows plus totals; `str()` renders the table."""

    rows: tuple[LayerSummary, ...]
    input_shape: tuple[int, ...]

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def total_flops(self) -> int:
        """Forward FLOPs per example."""
        return sum(r.flops for r in self.rows)

    def row(self, name: str) -> LayerSummary:
        return next(r for r in self.rows if r.name == name)

    def __str__(self) -> str:
        header = ("Layer (type)", "Output shape", "Param #", "FLOPs")
        lines = [
            (f"{r.name} ({r.kind})", str(r.output_shape), f"{r.params:,}", f"{r.flops:,}")
            for r in self.rows
        ]
        widths = [max(len(x[i]) for x in [header, *lines]) for i in range(4)]
        w0, w1, w2, w3 = widths
        fmt = f"{{:<{w0}}}  {{:<{w1}}}  {{:>{w2}}}  {{:>{w3}}}"
        rule = "=" * (sum(widths) + 6)
        out = [rule, fmt.format(*header), rule, *(fmt.format(*x) for x in lines), rule]
        out.append(f"Input shape: {self.input_shape}")
        out.append(f"Total params: {self.total_params:,}")
        out.append(
            f"Forward FLOPs per example: {self.total_flops:,} ({self.total_flops / 1e6:.2f} MFLOP)"
        )
        return "\n".join(out)


def layer_flops(module: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """Textbook FLOPs of one layer for one example (shapes without batch)."""
    out_elems = math.prod(out_shape)
    if isinstance(module, nn.Conv):
        k = math.prod(module.kernel_size)
        c_in = in_shape[-1] // module.feature_group_count
        return 2 * k * c_in * out_elems
    if isinstance(module, nn.Dense):
        return 2 * in_shape[-1] * out_shape[-1]
    if isinstance(module, layers.Pool):
        kind = pool_kinds.get(module.kind)
        return kind.flops(module.window, module.blur_size, math.prod(in_shape), out_elems)
    if isinstance(module, layers.GlobalAvgPool):
        return math.prod(in_shape)
    if isinstance(module, nn.BatchNorm):
        return 2 * out_elems
    if isinstance(module, layers.Activation):
        return activation_kinds.get(module.function).flops_per_element * out_elems
    return 0


def summary(model: nn.Module, input_shape: tuple[int, ...]) -> ModelSummary:
    """Summarises `model` for inputs of shape `input_shape` (without batch), e.g. (28, 28, 1)."""
    calls: list[tuple[tuple[str, ...], nn.Module, tuple, tuple]] = []

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name == "__call__" and isinstance(module, LEAF_TYPES):
            in_shape = tuple(args[0].shape[1:])
            calls.append((module.path, module, in_shape, tuple(out.shape[1:])))
        return out

    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)

    def init(x):
        with nn.intercept_methods(interceptor):
            return model.init({"params": jax.random.key(0)}, x, train=False)

    variables = jax.eval_shape(init, x)
    params = variables.get("params", {})
    rows = []
    seen = set()
    for path, module, in_shape, out_shape in calls:
        if path in seen:  # a module called twice is listed once
            continue
        seen.add(path)
        sub = params
        for key in path:
            sub = sub.get(key, {}) if isinstance(sub, dict) else {}
        n_params = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(sub))
        rows.append(
            LayerSummary(
                name="/".join(path),
                kind=type(module).__name__,
                input_shape=in_shape,
                output_shape=out_shape,
                params=n_params,
                flops=layer_flops(module, in_shape, out_shape),
            )
        )
    return ModelSummary(tuple(rows), tuple(input_shape))


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """floor((W - K_eff + 2P) / S) + 1 with K_eff = (K - 1) * dilation + 1."""
    k_eff = (kernel - 1) * dilation + 1
    return (size - k_eff + 2 * padding) // stride + 1


def conv_params(kernel_h: int, kernel_w: int, c_in: int, c_out: int, bias: bool = True) -> int:
    """(K_w * K_h * C_in + 1) * C_out."""
    return (kernel_h * kernel_w * c_in + int(bias)) * c_out
