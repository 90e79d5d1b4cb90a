"""The benchmark's PyTorch twins compute the same logits as our CNNs with copied weights.

Skipped when PyTorch is absent (CI does not install it: it is a benchmark-only extra). A twin
that differs (a padding off by one pixel, a flatten in CHW order, a batch norm with other
statistics) would make the PyTorch rows of benchmarks/REPORT.md compare different work.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks import torch_model  # noqa: E402
from cnn_jax.nn import model_spec, models  # noqa: E402

SHAPES = {"lenet5": (28, 28, 1), "mnist_cnn": (28, 28, 1), "resnet_small": (32, 32, 3)}


def _random_variables(model: models.CNN, shape: tuple, rng: np.random.Generator) -> dict:
    """Variables of the right shapes drawn with NumPy (Flax's init takes ~30 s to compile on a
    loaded 2-core machine); non-trivial batch statistics, so copying them is tested."""
    abstract = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros((1, *shape)), train=False)
    )

    def draw(path, leaf):
        name = str(path[-1])
        if "var" in name:
            return rng.uniform(0.5, 2.0, leaf.shape).astype(np.float32)
        fan_in = int(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 10
        return rng.normal(0.0, 1.0 / np.sqrt(fan_in), leaf.shape).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, dict(abstract))


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(SHAPES))
def test_twin_logits_equal(preset: str) -> None:
    shape = SHAPES[preset]
    spec = model_spec.PRESETS[preset](num_classes=10)
    flax_model = models.CNN(spec)
    rng = np.random.default_rng(0)
    variables = _random_variables(flax_model, shape, rng)
    x_bhwc = rng.normal(size=(4, *shape)).astype(np.float32)
    twin = torch_model.torch_cnn(spec, shape)
    x_nchw = torch.from_numpy(x_bhwc.transpose(0, 3, 1, 2).copy())

    def logits(train: bool):  # train: batch norm normalises with the batch's statistics
        mutable = ["batch_stats"] if train else False
        out = flax_model.apply(variables, x_bhwc, train=train, mutable=mutable)
        return out[0][0] if train else out[0]  # train: ((logits, inter), updates)

    jax_logits = jax.jit(logits, static_argnums=0)
    for fmt in (torch.contiguous_format, torch.channels_last):
        torch_model.copy_flax_variables(twin, variables)  # train mode moved the statistics
        twin = twin.to(memory_format=fmt)
        for train in (False, True):
            twin.train(train)
            with torch.no_grad():
                got = twin(x_nchw.contiguous(memory_format=fmt)).numpy()
            want = np.asarray(jax_logits(train))
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_twin_rejects_unsupported_block() -> None:
    spec = model_spec.PRESETS["mnist_cnn"](num_classes=10)
    blurred = dataclasses.replace(spec.blocks[0], pool="blur")
    bad = dataclasses.replace(spec, blocks=(blurred, *spec.blocks[1:]))
    with pytest.raises(ValueError, match="no PyTorch twin"):
        torch_model.torch_cnn(bad, (28, 28, 1))
