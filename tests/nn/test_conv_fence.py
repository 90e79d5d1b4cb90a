"""The convolution fence (cnn_jax.nn.conv_fence) changes speed only: values and gradients are
those of `lax.conv_general_dilated`, and of the unfenced model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from cnn_jax.nn import conv_fence, model_spec, models

DN = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("stride, padding", [((1, 1), "SAME"), ((2, 2), ((1, 1), (1, 1)))])
def test_fenced_conv_matches_lax_values_and_gradients(stride, padding):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 7, 7, 3)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 3, 3, 4)), jnp.float32)

    def loss(conv):
        return lambda x, w: jnp.sum(jnp.sin(conv(x, w, stride, padding, dimension_numbers=DN)))

    plain = jax.value_and_grad(loss(lax.conv_general_dilated), (0, 1))(x, w)
    fenced = jax.value_and_grad(loss(conv_fence.fenced_conv_general_dilated), (0, 1))(x, w)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(fenced)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_models_fence_only_convolutions_fed_by_batch_norm():
    spec = model_spec.resnet_small()
    assert not models._ends_in_batch_norm(model_spec.lenet5().blocks[0])
    assert all(models._ends_in_batch_norm(b) for b in spec.blocks)
    assert conv_fence.conv_general_dilated(True) is conv_fence.fenced_conv_general_dilated
    assert conv_fence.conv_general_dilated(False) is lax.conv_general_dilated


def test_fenced_resnet_equals_unfenced(monkeypatch):
    model = models.CNN(model_spec.resnet_small())
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 16, 16, 3)), jnp.float32)
    variables = models.init_variables(model, jax.random.key(0), (16, 16, 3))

    def loss(params):
        v = {**variables, "params": params}
        logits, _ = model.apply(v, x, train=True, mutable=["batch_stats"])[0]
        return jnp.sum(logits**2)

    fenced = jax.jit(jax.value_and_grad(loss))(variables["params"])
    monkeypatch.setattr(conv_fence, "ENABLED", False)
    plain = jax.jit(jax.value_and_grad(loss))(variables["params"])
    for a, b in zip(jax.tree.leaves(fenced), jax.tree.leaves(plain)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
