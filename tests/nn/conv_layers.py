"""Every convolution the presets and the studies of record build, found by tracing their models.

`study_layers()` -> {Layer: where it was first seen}. A Layer is what a convolution call is
(input [H, W, C], kernel [KH, KW, C/G, O] and the `onednn.conv.Window`, or None where the
oneDNN path does not cover the call). Models are traced abstractly (`jax.eval_shape`): no data,
no compilation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any
from unittest import mock

import jax
import jax.numpy as jnp
from jax import lax

from cnn_jax import datasets
from cnn_jax.datasets import options, registry
from cnn_jax.nn import model_spec, models, onednn
from cnn_jax.nn.onednn import conv

# Datasets read from files or TFDS: their image shape without the files.
FILE_SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
PRESET_SHAPES = ((28, 28, 1), (16, 16, 1), (32, 32, 3))  # MNIST, digits, CIFAR-10 / red_green


@dataclasses.dataclass(frozen=True)
class Layer:
    in_hwc: tuple[int, ...]
    kernel: tuple[int, ...]
    window: conv.Window | None


def image_shape(dataset: Any) -> tuple[int, int, int]:
    """The image shape a config's dataset section gives, without reading any file."""
    name, given = dataset.name, dict(dataset.get("options") or {})
    if name not in FILE_SHAPES:
        return tuple(datasets.check(name, **given).image_shape)
    shape = FILE_SHAPES[name]
    canvas = options.parse(name, given).get("canvas_size") if name in registry.BY_NAME else None
    return (canvas, canvas, shape[2]) if canvas else shape


def traced_layers(spec: model_spec.ModelSpec, shape: tuple[int, ...]) -> list[Layer]:
    """The convolutions `models.CNN(spec)` calls on a [2, *shape] input, in order."""
    found: list[Layer] = []

    def record(fallback):
        def conv_fn(lhs, rhs, *args, **kwargs):
            kwargs.pop("precision", None)
            window = conv.window_of(lhs, rhs, *args, **kwargs)
            found.append(Layer(tuple(lhs.shape[1:]), tuple(rhs.shape), window))
            return fallback(lhs, rhs, *args, **kwargs)

        return conv_fn

    with mock.patch.object(onednn, "select", record):
        model = models.CNN(spec)
        x = jnp.zeros((2, *shape), jnp.float32)
        jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    return found


def _preset_models() -> Iterator[tuple[str, Any, tuple]]:
    for name, make in model_spec.PRESETS.items():
        for shape in PRESET_SHAPES:
            yield f"preset {name} {shape}", make(num_classes=10), shape


def _config_models(label: str, config: Any) -> Iterator[tuple[str, Any, tuple]]:
    spec = model_spec.spec_from_config(config.model, 10)
    yield label, spec, image_shape(config.dataset)


def _anatomy() -> Iterator[tuple[str, Any, tuple]]:
    from experiments.anatomy import variants
    from experiments.anatomy.configs import activations_full, hyperparameters_full

    config = hyperparameters_full.get_config()
    shape = image_shape(config.dataset)
    for part, configs in variants.all_variants(config, shape, 10).items():
        for name, cfg in configs.items():
            yield from _config_models(f"anatomy {part}/{name}", cfg)
    yield from _config_models("anatomy activations", activations_full.get_config())


def _invariance() -> Iterator[tuple[str, Any, tuple]]:
    from experiments.invariance import main, variants
    from experiments.invariance.configs import cifar10, digits, fashion_mnist, mnist

    for module in (digits, mnist, fashion_mnist, cifar10):
        config = module.get_config()
        for name in main.study_variants(config.experiment):
            cfg = variants.variant_config(config, name, 10)
            yield from _config_models(f"invariance {module.__name__}/{name}", cfg)


def _regularization() -> Iterator[tuple[str, Any, tuple]]:
    from experiments.config_cli import with_dotted
    from experiments.regularization import tuning, variants
    from experiments.regularization.configs import fashion_mnist, mnist

    for module in (mnist, fashion_mnist):
        config = module.get_config()
        exp = config.experiment
        for name in variants.REGULARIZERS:
            if name == "all" or "_" in name and name not in variants.NO_STRENGTH:
                continue  # combinations of the single regularizers
            strengths = tuning.strengths_for(exp, "adamw", name) or (None,)
            cfg = with_dotted(config, variants.overrides(name, exp, strengths[-1]))
            yield from _config_models(f"regularization {module.__name__}/{name}", cfg)


def study_layers() -> dict[Layer, str]:
    """Every distinct convolution of the presets and the studies -> where it was first seen."""
    out: dict[Layer, str] = {}
    for source in (_preset_models(), _anatomy(), _invariance(), _regularization()):
        for where, spec, shape in source:
            for layer in traced_layers(spec, shape):
                out.setdefault(layer, where)
    return out


def reference(layer: Layer, x: jax.Array, kernel: jax.Array) -> jax.Array:
    """XLA's convolution of `layer` (NHWC/HWIO)."""
    return lax.conv_general_dilated(
        x,
        kernel,
        layer.window.strides,
        layer.window.padding,
        rhs_dilation=layer.window.dilation,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=layer.window.groups,
    )
