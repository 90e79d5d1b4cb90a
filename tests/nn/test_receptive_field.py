"""Receptive-field formula against brute force: the gradient support of one unit."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from cnn_jax.nn import receptive_field
from cnn_jax.nn.model_spec import BlockSpec, ModelSpec, lenet5, resnet_small, tiny_vgg
from cnn_jax.nn.models import CNN, init_variables


def random_variables(model: CNN, input_shape, seed: int = 0) -> dict:
    """Random weights without compiling the initialiser (XLA compiles of init are slow here)."""
    shapes = jax.eval_shape(lambda: init_variables(model, jax.random.key(0), input_shape))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = path[-1].key
        if name == "var":
            return np.ones(leaf.shape, np.float32)
        if name == "mean":
            return np.zeros(leaf.shape, np.float32)
        fan_in = int(np.prod(leaf.shape[:-1])) if leaf.ndim > 1 else 1
        return (rng.normal(size=leaf.shape) / np.sqrt(fan_in)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def _smooth(spec: ModelSpec) -> ModelSpec:
    """tanh and avg pooling: every path from input to unit is live, so support = field."""
    blocks = tuple(
        dataclasses.replace(b, activation="tanh", pool="avg" if b.pool == "max" else b.pool)
        for b in spec.blocks
    )
    return dataclasses.replace(spec, blocks=blocks)


CUSTOM = ModelSpec(
    (
        BlockSpec(3, 3, stride=2, padding="SAME", activation="tanh"),
        BlockSpec(4, 3, dilation=2, padding="VALID", activation="tanh"),
        BlockSpec(
            3,
            2,
            padding="VALID",
            activation="tanh",
            pool="avg",
            pool_window=3,
            pool_stride=2,
            pool_padding="SAME",
        ),
        BlockSpec(2, 4, padding=(1, 2), activation="tanh", pool="blur", pool_stride=2),
    ),
    num_classes=10,
)

SPECS = {
    "tiny_vgg": (_smooth(tiny_vgg()), 40),
    "lenet5": (_smooth(lenet5()), 36),
    "custom": (CUSTOM, 61),
    "resnet_small": (_smooth(resnet_small()), 33),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_formula_matches_gradient_support(name):
    spec, size = SPECS[name]
    model = CNN(spec)
    variables = random_variables(model, (size, size, 1))
    rows = receptive_field.receptive_fields(spec, size)
    _, inter = jax.eval_shape(
        lambda x: model.apply(variables, x, train=False), np.zeros((1, size, size, 1), np.float32)
    )
    inside = []
    for row in rows[1:]:
        assert inter[row.name].shape[1:3] == row.output_size, row.name
        unit = (row.output_size[0] // 2, (row.output_size[1] - 1) // 2)
        (top, bottom), (left, right) = row.input_span(*unit)
        if top >= 0 and left >= 0 and bottom <= size - 1 and right <= size - 1:
            inside.append((row, unit))  # a span clipped by the border is not checked
    assert len(inside) >= 3
    masks = receptive_field.gradient_supports(
        model, variables, (size, size, 1), [(row.name, unit, 0) for row, unit in inside]
    )
    dense = all(b.dilation == 1 for b in spec.blocks)  # dilation leaves holes in the field
    for (row, unit), mask in zip(inside, masks):
        (top, bottom), (left, right) = row.input_span(*unit)
        assert receptive_field.support_extent(mask) == ((top, bottom), (left, right)), row.name
        if dense:
            assert mask.sum() == row.size[0] * row.size[1], row.name


def test_known_values_for_tiny_vgg():
    """CNN Explainer's Tiny VGG on 64x64: fields 3, 5, 6, 10, 14, 16 and jumps 1, 1, 2, 2, 2, 4."""
    rows = receptive_field.receptive_fields(tiny_vgg(), 64)
    assert [r.name for r in rows] == [
        "input",
        "block0/conv",
        "block1/conv",
        "block1/pool",
        "block2/conv",
        "block3/conv",
        "block3/pool",
    ]
    assert [r.size[0] for r in rows] == [1, 3, 5, 6, 10, 14, 16]
    assert [r.jump[0] for r in rows] == [1, 1, 1, 2, 2, 2, 4]
    assert [r.output_size[0] for r in rows] == [64, 62, 60, 30, 28, 26, 13]
    assert rows[-1].start == (7.5, 7.5)


def test_relu_and_max_pool_support_is_a_subset():
    spec, size = tiny_vgg(), 24
    model = CNN(spec)
    variables = random_variables(model, (size, size, 1), seed=1)
    row = receptive_field.field_for(receptive_field.receptive_fields(spec, size), "block3/act")
    x_hwc = jax.random.normal(jax.random.key(0), (size, size, 1))  # gradient_support's input
    _, inter = model.apply(variables, x_hwc[None], train=False)
    act_hwc = np.asarray(inter["block3/act"][0])
    assert act_hwc.max() > 0
    r, c, ch = np.unravel_index(np.argmax(act_hwc), act_hwc.shape)  # a live unit
    unit = (int(r), int(c))
    mask = receptive_field.gradient_support(
        model, variables, (size, size, 1), "block3/act", unit, int(ch)
    )
    (top, bottom), (left, right) = row.input_span(*unit)
    inside = np.zeros_like(mask)
    inside[max(int(top), 0) : int(bottom) + 1, max(int(left), 0) : int(right) + 1] = True
    assert mask.any() and not (mask & ~inside).any()
    assert mask.sum() < inside.sum()  # max pooling passes gradient to one pixel per window


def test_field_for_intermediate_names():
    rows = receptive_field.receptive_fields(tiny_vgg(), 64)
    assert receptive_field.field_for(rows, "block1/act").name == "block1/conv"
    assert receptive_field.field_for(rows, "block1").name == "block1/pool"
    with pytest.raises(ValueError, match="name"):
        receptive_field.field_for(rows, "head/features")


def test_too_small_input_raises():
    with pytest.raises(ValueError, match="input_size"):
        receptive_field.receptive_fields(tiny_vgg(), 8)
