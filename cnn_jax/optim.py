"""Config -> optax chain, learning-rate schedule, and weight penalties.

One chain for every optimizer, built the way optax builds adamw:
    clip_by_global_norm -> {identity | trace (momentum) | scale_by_adam}
    -> add_decayed_weights(weight_decay, mask=kernels) -> scale_by_learning_rate(schedule)
so weight decay is decoupled (Loshchilov & Hutter 2019) for SGD as well as Adam, and only
conv/dense kernels decay (not biases, not batch-norm scale/bias).

L1 and in-loss L2 are penalties added to the loss (`weight_penalty`), masked the same way:
their gradients are l1 * sign(w) and 2 * l2 * w.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax.projections import projection_l2_ball

from cnn_jax.config.checks import as_dict, check_choice, check_keys, is_real, parse

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
OPTIM_KEYS = (
    "name",
    "learning_rate",
    "momentum",
    "b1",
    "b2",
    "eps",
    "schedule",
    "warmup_epochs",
    "end_lr_factor",
    "grad_clip_norm",
    "weight_decay",
    "l1",
    "l2",
    "allow_l2_with_weight_decay",
    "max_norm",
)


def kernel_mask(params: Any) -> Any:
    """Pytree of bools: True for conv/dense kernels (leaves named 'kernel'), else False."""

    def is_kernel(path, _):
        last = path[-1]
        return getattr(last, "key", getattr(last, "name", None)) == "kernel"

    return jax.tree_util.tree_map_with_path(is_kernel, params)


def _active(strength: float | jax.Array) -> bool:
    """A traced strength (a grid member's) is always applied; a number only when nonzero."""
    return isinstance(strength, jax.Array) or bool(strength)


def weight_penalty(
    params: Any, l1: float | jax.Array = 0.0, l2: float | jax.Array = 0.0
) -> jax.Array:
    """l1 * sum|w| + l2 * sum w^2 over kernels only."""
    kernels = [
        p for p, m in zip(jax.tree.leaves(params), jax.tree.leaves(kernel_mask(params))) if m
    ]
    total = jnp.zeros((), jnp.float32)
    if _active(l1):
        total += l1 * sum(jnp.sum(jnp.abs(k)) for k in kernels)
    if _active(l2):
        total += l2 * sum(jnp.sum(jnp.square(k)) for k in kernels)
    return total


def validate_optim_config(cfg: Mapping[str, Any]) -> None:
    """Raises one clear ValueError for a bad optimizer config."""
    unknown = sorted(set(cfg) - set(OPTIM_KEYS))
    if unknown:
        raise ValueError(f"optim: unknown key(s) {unknown}; allowed: {', '.join(OPTIM_KEYS)}")
    check_choice("optim.name", cfg.get("name", "adamw"), OPTIMIZERS)
    check_choice("optim.schedule", cfg.get("schedule", "constant"), SCHEDULES)
    lr = cfg.get("learning_rate", 1e-3)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"optim.learning_rate: {lr!r} not allowed; allowed: finite number > 0")
    for key in (
        "weight_decay", "l1", "l2", "grad_clip_norm", "warmup_epochs", "end_lr_factor", "max_norm"
    ):  # fmt: skip
        value = cfg.get(key, 0.0)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"optim.{key}: {value!r} not allowed; allowed: finite number >= 0")
    momentum = cfg.get("momentum", 0.9)
    if not 0 <= momentum < 1:
        raise ValueError(f"optim.momentum: {momentum!r} not allowed; allowed: 0 <= m < 1")
    both = cfg.get("l2", 0.0) > 0 and cfg.get("weight_decay", 0.0) > 0
    if both and not cfg.get("allow_l2_with_weight_decay", False):
        raise ValueError(
            "optim.l2 and optim.weight_decay: both > 0 (in-loss L2 and decoupled decay); "
            "allowed: one of them, or set optim.allow_l2_with_weight_decay=True"
        )


def optim_spec(cfg: OptimSpec | Mapping[str, Any]) -> OptimSpec:
    """`cfg` itself when parsed already (as `run_setup.build` does); a raw section is checked
    here (`validate_optim_config`'s messages first) and parsed (`OptimSpec.from_config`)."""
    if isinstance(cfg, OptimSpec):
        return cfg
    values = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    validate_optim_config(values)
    return OptimSpec.from_config(values)


def make_schedule(
    cfg: OptimSpec | Mapping[str, Any], steps_per_epoch: int, num_epochs: int
) -> optax.Schedule:
    """Learning rate as a function of the step: constant, cosine or linear warmup + cosine."""
    spec = optim_spec(cfg)
    lr = spec.learning_rate
    total = max(steps_per_epoch * num_epochs, 1)
    end = lr * spec.end_lr_factor
    if spec.schedule == "constant":
        return optax.constant_schedule(lr)
    warmup = int(spec.warmup_epochs * steps_per_epoch) if spec.schedule != "cosine" else 0
    warmup = min(warmup, total - 1)
    return optax.warmup_cosine_decay_schedule(0.0 if warmup else lr, lr, warmup, total, end)


def make_optimizer(
    cfg: OptimSpec | Mapping[str, Any],
    steps_per_epoch: int,
    num_epochs: int,
    member: Mapping[str, Any] | None = None,
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """`config.optim` (an `OptimSpec`, or a raw section: see `optim_spec`) -> (optax chain,
    schedule). See the module docstring.

    `member`: a grid member's values (`cnn_jax.config.grid`; numbers or traced scalars), keyed
    `lr_scale` (a factor on the schedule: every schedule is linear in its peak rate) and
    `weight_decay`. A member's weight decay is always in the chain, so every member's
    optimizer state has the same structure."""
    spec = optim_spec(cfg)
    schedule = make_schedule(spec, steps_per_epoch, num_epochs)
    member = dict(member or {})
    if "lr_scale" in member:
        base, scale = schedule, member["lr_scale"]
        schedule = lambda count: scale * base(count)  # noqa: E731
    if "weight_decay" in member:
        spec = dataclasses.replace(spec, weight_decay=member["weight_decay"])
    parts = []
    if spec.grad_clip_norm > 0:
        parts.append(optax.clip_by_global_norm(spec.grad_clip_norm))
    if spec.name in ("momentum", "nesterov"):
        parts.append(optax.trace(decay=spec.momentum, nesterov=spec.name == "nesterov"))
    elif spec.name in ("adam", "adamw"):
        parts.append(optax.scale_by_adam(b1=spec.b1, b2=spec.b2, eps=spec.eps))
    if "weight_decay" in member or spec.weight_decay > 0:
        parts.append(optax.add_decayed_weights(spec.weight_decay, mask=kernel_mask))
    parts.append(optax.scale_by_learning_rate(schedule))
    if spec.max_norm > 0:
        parts.append(max_norm(spec.max_norm))
    return optax.chain(*parts), schedule


def max_norm(max_value: float) -> optax.GradientTransformation:
    """Max-norm constraint (Srivastava et al. 2014, Sec. 5.1): after each update, every unit's
    incoming kernel weights (all axes but the last) are projected onto the L2 ball of radius
    `max_value` (`optax.projections.projection_l2_ball`); biases and norm parameters are free.
    The last transform of the chain: it returns the update that lands on the projection."""

    def project(w, u, is_kernel):
        if not is_kernel:
            return u
        new_ku = (w + u).reshape(-1, w.shape[-1])
        ball = jax.vmap(lambda v: projection_l2_ball(v, max_value), in_axes=1, out_axes=1)
        return ball(new_ku).reshape(w.shape) - w

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("optim.max_norm: the update needs the params; pass them to update")
        return jax.tree.map(project, params, updates, kernel_mask(params)), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


_FLOAT32_MAX = float(np.finfo(np.float32).max)  # the step computes in float32


_OPTIM_STRINGS = ("name", "schedule")


@dataclasses.dataclass(frozen=True)
class OptimSpec:
    """The `optim` section (see cnn_jax/optim.py for the chain these fields build)."""

    name: str = "adamw"
    learning_rate: float = 1e-3
    momentum: float = 0.9  # momentum and nesterov only
    b1: float = 0.9  # adam and adamw only
    b2: float = 0.999
    eps: float = 1e-8
    schedule: str = "constant"
    warmup_epochs: float = 0.0  # warmup_cosine only
    end_lr_factor: float = 0.0  # the final learning rate / learning_rate (cosine schedules)
    grad_clip_norm: float = 0.0  # 0: no clipping
    weight_decay: float = 0.0  # decoupled, kernels only
    l1: float = 0.0  # in-loss penalties, kernels only
    l2: float = 0.0
    allow_l2_with_weight_decay: bool = False
    max_norm: float = 0.0  # 0: no max-norm constraint

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | Any) -> OptimSpec:
        """Validates the section (one ValueError line per bad field) and types it."""
        return parse(cls, as_dict(section), check_optim)


def check_optim(optim: Mapping[str, Any]) -> None:
    check_keys("optim", optim, OPTIM_KEYS)
    for key, value in optim.items():
        if key in _OPTIM_STRINGS or key == "allow_l2_with_weight_decay":
            continue
        if not is_real(value) or not abs(value) <= _FLOAT32_MAX:  # NaN fails too
            raise ValueError(
                f"optim.{key}: {value!r} not allowed; allowed: a finite float32 number"
            )
    for key in _OPTIM_STRINGS:
        if key in optim and not isinstance(optim[key], str):
            raise ValueError(f"optim.{key}: {optim[key]!r} not allowed; allowed: a name")
    validate_optim_config(optim)
    for key in ("b1", "b2"):
        if key in optim and not 0 <= optim[key] < 1:
            raise ValueError(f"optim.{key}: {optim[key]!r} not allowed; allowed: 0 <= {key} < 1")
    if "eps" in optim and not optim["eps"] > 0:
        raise ValueError(f"optim.eps: {optim['eps']!r} not allowed; allowed: > 0")
