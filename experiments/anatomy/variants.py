"""The variants of the conv-hyperparameter study, each built to remove one confound.

- stride: the same 2-layer net at strides 1 and s, with the current flatten head (whose size
  shrinks with the stride), a global-average-pooling head (the same classifier at every
  stride) and a flatten head with a hidden layer sized so the whole net has the stride-1
  flatten net's parameter count; and, at a matched receptive field, the stride-1 GAP net with
  its layers dilated 1, s, ... against the stride-s GAP net (same kernels, same classifier,
  same receptive field: only the stride differs);
- kernels: a shared 3x3 stem, then a stack of n 3x3 convs against one (2n+1)x(2n+1) conv
  with the same receptive field (Simonyan & Zisserman 2015, sec. 2.3), its width chosen to
  match the stack's parameters, or its FLOPs (`cnn_jax.nn.summary`); VALID padding, so both
  end on the same map size;
- depth x padding: k3 SAME / VALID and k_large VALID at each depth that fits the input;
- border: SAME / VALID / CIRCULAR nets trained on digits at random canvas positions.

Settings live in `config.experiment` (see experiments/anatomy/configs/hyperparameters_full.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from cnn_jax.nn.activation_kinds import ACTIVATION_KINDS
from cnn_jax.nn.model_spec import spec_from_config
from cnn_jax.nn.models import CNN
from cnn_jax.nn.receptive_field import receptive_fields
from cnn_jax.nn.summary import summary

MAX_DEPTH = 64  # "unlimited" in the geometry table


def conv(features: int, kernel: int, padding: str, stride: int = 1, **extra: Any) -> dict:
    """One plain conv block (ReLU unless `extra` says otherwise)."""
    return {"features": int(features), "kernel_size": int(kernel), "stride": int(stride),
            "padding": padding, **extra}  # fmt: skip


def with_model(
    config: ml_collections.ConfigDict,
    blocks: Sequence[Mapping[str, Any]],
    head: str,
    hidden: Sequence[int] = (),
    dataset_options: Mapping[str, Any] | None = None,
) -> ml_collections.ConfigDict:
    """A copy of `config` training `blocks` with the given head (and dataset options)."""
    out = config.copy_and_resolve_references()
    bn = bool(config.experiment.get("batch_norm", False))
    with out.unlocked():
        out.model.blocks = [dict(b, batch_norm=bn) for b in blocks]
        out.model.head = head
        out.model.head_hidden = tuple(int(h) for h in hidden)
        if dataset_options:
            out.dataset.options = dict(out.dataset.options or {}, **dict(dataset_options))
    return out


def geometry(config: ml_collections.ConfigDict, image_shape, num_classes: int) -> dict[str, Any]:
    """Layer sides and receptive fields by formula, params and FLOPs traced; or infeasible."""
    spec = spec_from_config(config.model.to_dict(), num_classes)
    try:
        rows = receptive_fields(spec, image_shape[:2])
    except ValueError as e:
        return {"feasible": False, "reason": str(e)}
    model_summary = summary(CNN(spec), tuple(image_shape))
    traced = [r.output_shape[0] for r in model_summary.rows if r.kind == "Conv"]
    formula = [r.output_size[0] for r in rows[1:]]
    if traced != formula:  # the formula and the real network must agree
        raise AssertionError(f"layer sides: formula {formula} != traced model {traced}")
    return {
        "feasible": True,
        "layer_sizes": [r.output_size[0] for r in rows],
        "receptive_field": rows[-1].size[0],
        "params": model_summary.total_params,
        "head_params": sum(r.params for r in model_summary.rows if r.kind == "Dense"),
        "flops": model_summary.total_flops,
    }


def max_depth(kernel: int, stride: int, padding: str, size: int) -> int:
    """How many identical conv layers fit before the map shrinks below 1 pixel (capped)."""
    depth = 0
    while depth < MAX_DEPTH:
        size = (size - kernel) // stride + 1 if padding == "VALID" else -(-size // stride)
        if size < 1:
            break
        depth += 1
        if padding != "VALID" and stride == 1:
            return MAX_DEPTH  # SAME / CIRCULAR at stride 1 never shrink
    return depth


def _match_width(make, target: float, key: str, shape, classes: int) -> int:
    """The width w >= 1 whose traced `key` (params / flops) is closest to `target`.

    Both are affine in the width of the one layer varied (it feeds a global pool or a dense
    output), so two traces give the line; the rounded neighbours are traced to pick.
    """
    v1, v2 = (geometry(make(w), shape, classes)[key] for w in (1, 2))
    guess = 1 + (target - v1) / max(v2 - v1, 1e-9)
    candidates = {max(1, int(guess)), max(1, int(guess) + 1)}
    return min(candidates, key=lambda w: abs(geometry(make(w), shape, classes)[key] - target))


def strided_field(kernel: int, stride: int, depth: int) -> int:
    """The receptive field of `depth` k x k convs, each at `stride`: 1 + (k - 1) * sum s^i
    (Araujo et al., Distill 2019; `cnn_jax.nn.receptive_field` computes it for any net)."""
    return 1 + (int(kernel) - 1) * sum(int(stride) ** i for i in range(int(depth)))


def dilated_blocks(width: int, kernel: int, stride: int, depth: int) -> list[dict]:
    """Stride-1 SAME convs dilated 1, s, s^2, ...: the receptive field of the stride-s stack
    (`strided_field`) with the same kernels, so only the stride (the subsampling) differs;
    the strided net's units are a subsample of this net's (Yu & Koltun 2016, dilated convs)."""
    return [conv(width, kernel, "SAME", 1, dilation=int(stride) ** i) for i in range(int(depth))]


def stride_variants(config, shape, classes) -> dict[str, ml_collections.ConfigDict]:
    """stride<s>_{flatten, gap}, stride<s>_flatten_matched (s > 1), and with
    experiment.stride.match_field (default True) stride<s0>_gap_dilated<s>: the smallest
    stride s0 dilated to stride s's receptive field, the same GAP classifier and parameters."""
    exp, out = config.experiment, {}
    s_cfg = exp.stride
    for s in s_cfg.strides:
        blocks = [conv(exp.width, s_cfg.kernel, "SAME", s) for _ in range(int(s_cfg.depth))]
        out[f"stride{s}_flatten"] = with_model(config, blocks, "flatten")
        out[f"stride{s}_gap"] = with_model(config, blocks, "global_avg")
    s0 = min(s_cfg.strides)
    target = geometry(out[f"stride{s0}_flatten"], shape, classes)["params"]
    for s in s_cfg.strides:
        if s == s0:
            continue
        blocks = out[f"stride{s}_flatten"].model.blocks

        def make(h, blocks=blocks):
            return with_model(config, blocks, "flatten", hidden=(h,))

        h = _match_width(make, target, "params", shape, classes)
        out[f"stride{s}_flatten_matched"] = make(h)
        if s0 == 1 and s_cfg.get("match_field", True):
            dilated = dilated_blocks(exp.width, s_cfg.kernel, s, s_cfg.depth)
            out[f"stride1_gap_dilated{s}"] = with_model(config, dilated, "global_avg")
    return out


def kernel_variants(config, shape, classes) -> dict[str, ml_collections.ConfigDict]:
    """stack<n>x3x3, one<F>x<F>_params, one<F>x<F>_flops for each body receptive field F.

    Both bodies follow the same 3x3 stem, so the whole net sees F + 2 pixels either way.
    """
    exp, out = config.experiment, {}
    stem = conv(exp.width, 3, "VALID")
    for field in exp.kernels.fields:
        n = (int(field) - 1) // 2
        stack = with_model(config, [stem] + [conv(exp.width, 3, "VALID")] * n, exp.head)
        out[kernel_name(field, "stack")] = stack
        g = geometry(stack, shape, classes)

        def make(w, field=field):
            return with_model(config, [stem, conv(w, field, "VALID")], exp.head)

        for key in exp.kernels.get("match", ("params", "flops")):
            w = _match_width(make, g[key], key, shape, classes)
            out[kernel_name(field, key)] = make(w)
    return out


def kernel_name(field: int, kind: str) -> str:
    """'stack2x3x3' (kind 'stack') or 'one5x5_params' / 'one5x5_flops' for body field 5."""
    if kind == "stack":
        return f"stack{(int(field) - 1) // 2}x3x3"
    return f"one{field}x{field}_{kind}"


def depth_name(kernel: int, padding: str, depth: int) -> str:
    """'k3_same_d5'."""
    return f"k{kernel}_{padding.lower()}_d{depth}"


def depth_variants(config, shape, classes) -> dict[str, ml_collections.ConfigDict]:
    """k3 {SAME, VALID} and k_large VALID at every configured depth that fits the input."""
    exp, out = config.experiment, {}
    d_cfg = exp.depth
    grid = [(3, p, d) for p in ("SAME", "VALID") for d in d_cfg.depths]
    grid += [(3, "SAME", d) for d in d_cfg.get("same_only_depths", ())]
    grid += [(int(d_cfg.large_kernel), "VALID", d) for d in d_cfg.large_depths]
    for k, padding, depth in grid:
        if depth > max_depth(k, 1, padding, int(shape[0])):
            continue
        blocks = [conv(exp.width, k, padding) for _ in range(int(depth))]
        out[depth_name(k, padding, depth)] = with_model(config, blocks, exp.head)
    return out


def border_variants(config) -> dict[str, ml_collections.ConfigDict]:
    """border_<padding>: the same net per padding mode, trained on randomly placed digits."""
    exp, out = config.experiment, {}
    b_cfg = exp.border
    for padding in b_cfg.paddings:
        blocks = [conv(exp.width, 3, padding) for _ in range(int(b_cfg.depth))]
        options = {"position": "random"}
        out[f"border_{padding.lower()}"] = with_model(config, blocks, exp.head, (), options)
    return out


def all_variants(config, shape, classes) -> dict[str, dict[str, ml_collections.ConfigDict]]:
    """{part: {variant: config}} for the parts listed in experiment.parts."""
    makers = {
        "stride": lambda: stride_variants(config, shape, classes),
        "kernels": lambda: kernel_variants(config, shape, classes),
        "depth": lambda: depth_variants(config, shape, classes),
        "border": lambda: border_variants(config),
    }
    return {part: makers[part]() for part in config.experiment.parts}


_STRIDE = re.compile(r"^stride(\d+)_(flatten|gap)(_matched|_dilated\d+)?$")
_STACK = re.compile(r"^stack(\d+)x3x3$")
_ONE = re.compile(r"^one(\d+)x\d+_(params|flops)$")
_DEPTH = re.compile(r"^k(\d+)_(same|valid)_d(\d+)$")
_HEADS = {"flatten": "flatten head", "gap": "GAP head"}
# The activation study: "<activation>[_bn][_lr<rate>]" and the collapse nets "collapse_<kind>".
_ACTIVATION = re.compile(r"^([a-z_]+?)(_bn)?(?:_lr([^_]+))?$")
_ACTIVATION_WORDS = {
    "relu": "ReLU",
    "gelu": "GELU",
    "silu": "SiLU",
    "elu": "ELU",
    "leaky_relu": "leaky ReLU",
    "identity": "no activation (identity)",
}
_COLLAPSE = {
    "collapse_deep_linear": "stacked VALID convs, no activation (linear end to end)",
    "collapse_single_conv": "one VALID conv of the linear stack's receptive field",
    "collapse_deep_relu": "stacked VALID convs with ReLU",
}


def describe(name: str) -> str:
    """One line for a variant name: 'stack2x3x3' -> 'stem + 2 stacked 3x3 convs', ...."""
    if m := _STRIDE.match(name):
        s, head, suffix = m.groups()
        if suffix and suffix.startswith("_dilated"):
            other = suffix.removeprefix("_dilated")
            return f"stride {s}, {_HEADS[head]}, dilated to stride {other}'s receptive field"
        return f"stride {s}, {_HEADS[head]}" + (", params matched" if suffix else "")
    if m := _STACK.match(name):
        return f"stem + {m.group(1)} stacked 3x3 convs"
    if m := _ONE.match(name):
        return f"stem + one {m.group(1)}x{m.group(1)} conv, {m.group(2)} matched"
    if m := _DEPTH.match(name):
        k, padding, depth = m.groups()
        return f"{depth} {k}x{k} {padding.upper()} convs"
    if name.startswith("border_"):
        return f"{name.removeprefix('border_').upper()} padding, digits placed at random"
    if name in _COLLAPSE:
        return _COLLAPSE[name]
    if (m := _ACTIVATION.match(name)) and m.group(1) in ACTIVATION_KINDS:
        act, bn, lr = m.groups()
        out = _ACTIVATION_WORDS.get(act, act) + (" with batch norm" if bn else "")
        return out + (f", lr {lr}" if lr else "")
    allowed = "stride<s>_<head>[_matched], stack<n>x3x3, one<F>x<F>_<match>, k<k>_<pad>_d<n>"
    allowed += ", border_<padding>, <activation>[_bn][_lr<rate>], collapse_<kind>"
    raise ValueError(f"variant: unknown {name!r}; allowed: {allowed}")
