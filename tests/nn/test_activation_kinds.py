"""The activation registry: each function equals its formula, unknown names fail in one line
everywhere, and the summary's FLOPs (now from the activation and pool registries) are the
numbers measured before the registries counted them."""

from __future__ import annotations

import contextlib
import dataclasses

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from cnn_jax.measure import linear_collapse
from cnn_jax.nn import activation_kinds, layers
from cnn_jax.nn import model_spec as ms
from cnn_jax.nn.models import CNN
from cnn_jax.nn.summary import summary
from experiments.anatomy import activations as activations_experiment


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# Independent formulas (float64 numpy), one per registered name, Flax's default parameters.
FORMULAS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": _sigmoid,
    "tanh": lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    "silu": lambda x: x * _sigmoid(x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "softplus": lambda x: np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0),
    "identity": lambda x: x,
}
X = np.concatenate([np.linspace(-6.0, 6.0, 97), [-20.0, -1e-3, 0.0, 1e-3, 20.0]])


def test_every_activation_has_a_formula():
    assert set(FORMULAS) == set(activation_kinds.ACTIVATION_KINDS)
    assert tuple(activation_kinds.ACTIVATION_KINDS) == layers.ACTIVATIONS


@pytest.mark.parametrize("name", list(activation_kinds.ACTIVATION_KINDS))
def test_activation_matches_numpy_formula(name):
    expected = FORMULAS[name](X)
    kind = activation_kinds.get(name)
    got = np.asarray(kind.apply(jnp.asarray(X, jnp.float32)), np.float64)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    module = layers.Activation(name).apply({}, jnp.asarray(X, jnp.float32))  # the layer uses it
    np.testing.assert_allclose(np.asarray(module, np.float64), expected, rtol=1e-5, atol=1e-6)
    assert layers.get_activation(name) is kind.apply


@pytest.mark.parametrize("name", list(activation_kinds.ACTIVATION_KINDS))
def test_linear_flag_and_flops_convention(name):
    kind = activation_kinds.get(name)
    f = FORMULAS[name]
    additive = np.allclose(f(2.0 * X - 0.5 * X[::-1]), 2.0 * f(X) - 0.5 * f(X[::-1]))
    assert kind.linear == additive
    assert kind.flops_per_element == (0 if kind.linear else 1)  # the module's convention
    assert (name in activation_kinds.LINEAR) == kind.linear


@contextlib.contextmanager
def _one_line_error(match: str):
    with pytest.raises(ValueError, match=match) as err:
        yield
    assert "\n" not in str(err.value)


def test_unknown_activation_fails_in_one_line_everywhere():
    allowed = ", ".join(activation_kinds.ACTIVATION_KINDS)
    with pytest.raises(ValueError) as err:
        activation_kinds.get("relu6", "model.blocks[0].activation")
    assert str(err.value) == (
        f"model.blocks[0].activation: unknown value 'relu6'; allowed: {allowed}"
    )
    assert "\n" not in str(err.value)
    with _one_line_error(r"^activation: unknown value 'swish'; allowed: relu, "):
        layers.get_activation("swish")
    with _one_line_error(r"^activation: unknown value 'swish'"):
        layers.Activation("swish").apply({}, jnp.ones((1, 3)))
    with _one_line_error(r"^model\.blocks\[0\]\.activation: unknown value 'swish'"):
        ms.ModelSpec((ms.BlockSpec(4, 3, activation="swish"),))
    with _one_line_error(r"^model\.head\.activation: unknown value 'swish'"):
        ms.ModelSpec((ms.BlockSpec(4, 3),), ms.HeadSpec(activation="swish"))
    with _one_line_error(r"^model\.blocks\[0\]\.activation: unknown value 'Relu'"):
        ms.spec_from_config({"activation": "Relu"}, 10)
    exp = ml_collections.ConfigDict(
        {"activations": ("relu", "swish_bn"), "learning_rates": (0.1,), "blocks": []}
    )
    config = ml_collections.ConfigDict({"experiment": exp})
    with _one_line_error(r"^experiment\.activations: unknown value 'swish'"):
        activations_experiment.activation_configs(config)


def test_linear_collapse_asks_the_registry():
    relu = ms.ModelSpec((ms.BlockSpec(2, 3),))
    with _one_line_error(r"model\.blocks\[0\]\.activation: 'relu'; allowed: identity"):
        linear_collapse.stack_from_params({"block0": {"conv": {}}}, relu)
    spec = ms.ModelSpec((ms.BlockSpec(2, 3, activation="identity"),))
    object.__setattr__(spec.blocks[0], "activation", "swish")  # past the spec's validation
    with _one_line_error(r"^model\.blocks\[0\]\.activation: unknown value 'swish'"):
        linear_collapse.stack_from_params({"block0": {"conv": {}}}, spec)


def _with_pool(spec: ms.ModelSpec, pool: str) -> ms.ModelSpec:
    blocks = tuple(dataclasses.replace(b, pool=pool) for b in spec.blocks)
    return dataclasses.replace(spec, blocks=blocks, name=f"{spec.name}_{pool}")


def _with_activation(spec: ms.ModelSpec, act: str) -> ms.ModelSpec:
    blocks = tuple(dataclasses.replace(b, activation=act) for b in spec.blocks)
    head = dataclasses.replace(spec.head, activation=act)
    return dataclasses.replace(spec, blocks=blocks, head=head)


# Measured with the string-matching summary.py before the registries (same numbers for the
# other presets: seed_example 1,751,040; tiny_vgg 11,349,360; resnet_small 25,253,120).
BEFORE = {
    "lenet5": (
        ms.lenet5(),
        845_852,
        {"block0/act": 4704, "block0/pool": 4704, "block1/pool": 1600, "dense1_act": 84},
    ),
    "lenet5_identity": (
        _with_activation(ms.lenet5(), "identity"),
        839_344,
        {"block0/act": 0, "block1/act": 0, "dense0_act": 0, "block0/pool": 4704},
    ),
    "mnist_cnn": (ms.mnist_cnn(), 9_363_200, {"block0/pool": 25088, "block1/pool": 12544}),
    "mnist_cnn_blur": (
        _with_pool(ms.mnist_cnn(), "blur"),
        8_041_344,
        {"block0/act": 25088, "block0/pool": 97344, "block1/pool": 41472},
    ),
    "mnist_cnn_max_blur": (
        _with_pool(ms.mnist_cnn(), "max_blur"),
        9_645_440,
        {"block0/pool": 213248, "block1/pool": 106624},
    ),
}


@pytest.mark.parametrize("name", list(BEFORE))
def test_summary_flops_unchanged(name):
    spec, total, rows = BEFORE[name]
    s = summary(CNN(spec), (28, 28, 1))
    assert s.total_flops == total
    for row, flops in rows.items():
        assert s.row(row).flops == flops, row
