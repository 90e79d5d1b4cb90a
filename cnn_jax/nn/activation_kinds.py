"""Activations that describe themselves: one entry per function, used everywhere a name matters.

Each entry gives the element-wise function (`layers.Activation` applies it), its forward
FLOPs per element (`cnn_jax.nn.summary`) and whether it is linear
(`cnn_jax.measure.linear_collapse`:
only a linear activation lets a conv stack collapse into one conv). Model specs and configs
accept exactly this registry's keys, and any other name is an error everywhere, so adding an
activation touches this file only.

FLOPs convention (the summary's textbook one): a nonlinearity costs 1 FLOP per element,
whatever it costs in comparisons or transcendental functions (tanh, exp, erf are not
expanded into their polynomial cost); the identity costs 0.

Initialisation is not per activation: every conv and dense layer uses Flax's default
(LeCun normal, variance 1 / fan_in), whichever activation follows it.

Functions are Flax's, with Flax's defaults: leaky_relu slope 0.01 for x < 0, elu alpha 1,
gelu the tanh approximation (`nn.gelu(approximate=True)`), silu x * sigmoid(x).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class ActivationKind:
    """What one activation does, for the modules that need to know."""

    name: str
    apply: Callable[[jax.Array], jax.Array]  # element-wise
    flops_per_element: int  # forward, the convention of this module's docstring
    linear: bool  # f(a x + b y) = a f(x) + b f(y): conv stacks collapse (linear_collapse)


def _identity(x: jax.Array) -> jax.Array:
    return x


ACTIVATION_KINDS: dict[str, ActivationKind] = {
    kind.name: kind
    for kind in (
        ActivationKind("relu", nn.relu, 1, False),
        ActivationKind("sigmoid", nn.sigmoid, 1, False),
        ActivationKind("tanh", jnp.tanh, 1, False),
        ActivationKind("gelu", nn.gelu, 1, False),
        ActivationKind("silu", nn.silu, 1, False),
        ActivationKind("elu", nn.elu, 1, False),
        ActivationKind("leaky_relu", nn.leaky_relu, 1, False),
        ActivationKind("softplus", nn.softplus, 1, False),
        ActivationKind("identity", _identity, 0, True),
    )
}
LINEAR = tuple(name for name, kind in ACTIVATION_KINDS.items() if kind.linear)


def get(name: str, field: str = "activation") -> ActivationKind:
    """The registry entry of `name`; ValueError naming the field for an unknown activation."""
    if name not in ACTIVATION_KINDS:
        allowed = ", ".join(ACTIVATION_KINDS)
        raise ValueError(f"{field}: unknown value {name!r}; allowed: {allowed}")
    return ACTIVATION_KINDS[name]
