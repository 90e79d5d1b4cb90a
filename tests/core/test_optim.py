"""The optax chain from config: decay mask, L1/L2 gradients, schedules, clear errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cnn_jax.nn import model_spec as ms
from cnn_jax.nn.models import CNN, init_variables
from cnn_jax.optim import kernel_mask, make_optimizer, make_schedule, weight_penalty


@pytest.fixture
def params():
    spec = ms.spec_from_config({"preset": "mnist_cnn", "batch_norm": True}, 10)
    return init_variables(CNN(spec), jax.random.key(0), (8, 8, 1))["params"]


def test_mask_selects_kernels_not_biases_or_bn_scale(params):
    mask = kernel_mask(params)
    assert mask["block0"]["conv"]["kernel"] is True
    assert mask["block0"]["bn"]["scale"] is False and mask["block0"]["bn"]["bias"] is False
    assert mask["logits"]["kernel"] is True and mask["logits"]["bias"] is False


def test_decoupled_weight_decay_skips_masked_leaves(params):
    cfg = {"name": "sgd", "learning_rate": 0.1, "weight_decay": 0.5}
    tx, _ = make_optimizer(cfg, steps_per_epoch=10, num_epochs=1)
    zero_grads = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero_grads, tx.init(params), params)
    np.testing.assert_allclose(
        updates["logits"]["kernel"], -0.1 * 0.5 * params["logits"]["kernel"], rtol=1e-6
    )
    assert jnp.all(updates["logits"]["bias"] == 0)
    assert jnp.all(updates["block0"]["bn"]["scale"] == 0)


def test_l1_adds_lambda_sign_w_and_l2_adds_2_lambda_w(params):
    g1 = jax.grad(lambda p: weight_penalty(p, l1=0.01))(params)
    w = params["block1"]["conv"]["kernel"]
    np.testing.assert_allclose(g1["block1"]["conv"]["kernel"], 0.01 * jnp.sign(w), rtol=1e-6)
    assert jnp.all(g1["logits"]["bias"] == 0)
    g2 = jax.grad(lambda p: weight_penalty(p, l2=0.01))(params)
    np.testing.assert_allclose(g2["block1"]["conv"]["kernel"], 2 * 0.01 * w, rtol=1e-6)


def test_adamw_chain_matches_optax_adamw(params):
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.3), params)
    ours, _ = make_optimizer({"name": "adamw", "learning_rate": 1e-2, "weight_decay": 0.1}, 10, 1)
    ref = optax.adamw(1e-2, weight_decay=0.1, mask=kernel_mask)
    a, _ = ours.update(grads, ours.init(params), params)
    b, _ = ref.update(grads, ref.init(params), params)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-6)


def test_warmup_cosine_schedule():
    sched = make_schedule(
        {"learning_rate": 1.0, "schedule": "warmup_cosine", "warmup_epochs": 1}, 10, 5
    )
    assert float(sched(0)) == 0.0 and abs(float(sched(10)) - 1.0) < 1e-6
    assert float(sched(50)) < 1e-6


@pytest.mark.parametrize(
    "cfg,match",
    [
        ({"name": "lbfgs"}, r"optim.name: unknown value 'lbfgs'; allowed: sgd"),
        ({"learning_rate": float("nan")}, r"optim.learning_rate: nan not allowed"),
        (
            {"weight_decay": -1.0},
            r"optim.weight_decay: -1.0 not allowed; allowed: finite number >= 0",
        ),
        ({"l2": 1e-4, "weight_decay": 1e-4}, r"optim.l2 and optim.weight_decay: both > 0"),
        ({"lr": 0.1}, r"optim: unknown key\(s\) \['lr'\]"),
    ],
)
def test_bad_optim_config(cfg, match):
    with pytest.raises(ValueError, match=match):
        make_optimizer(cfg, 10, 1)


def test_l2_with_decay_allowed_when_asked():
    make_optimizer({"l2": 1e-4, "weight_decay": 1e-4, "allow_l2_with_weight_decay": True}, 10, 1)
