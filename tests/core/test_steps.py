"""Train/eval steps: batch norm and dropout modes, determinism, and 8-device data parallelism."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax import steps
from cnn_jax.nn import model_spec as ms
from cnn_jax.nn.models import CNN
from cnn_jax.optim import make_optimizer
from cnn_jax.system import parallel
from tests.conftest import run_python


def _setup(cfg=None):
    spec = ms.spec_from_config(cfg or {"preset": "mnist_cnn", "batch_norm": True}, 10)
    model = CNN(spec)
    tx, _ = make_optimizer({"name": "momentum", "learning_rate": 0.05}, 10, 1)
    state = steps.create_train_state(model, tx, jax.random.key(0), (8, 8, 1))
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8),
        "label": rng.integers(0, 10, 16).astype(np.int32),
        "mask": np.ones(16, bool),
    }
    return model, tx, state, batch


def test_batch_norm_uses_batch_stats_in_training_and_running_stats_in_eval():
    model, _, state, batch = _setup()
    x = steps.normalize(batch["image"], (0.5,), (0.25,))
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    _, inter = model.apply(variables, x, train=True, mutable=["batch_stats"])[0]
    bn_train = inter["block0/bn"]
    np.testing.assert_allclose(jnp.mean(bn_train, axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(jnp.std(bn_train, axis=(0, 1, 2)), 1.0, atol=1e-2)
    _, inter_eval = model.apply(variables, x, train=False)
    # Fresh running stats are mean 0, var 1: eval-mode BN is the identity map on conv outputs.
    np.testing.assert_allclose(
        inter_eval["block0/bn"], inter_eval["block0/conv"], rtol=1e-4, atol=1e-4
    )


def test_dropout_identity_in_eval_random_in_training():
    model, _, state, batch = _setup({"preset": "mnist_cnn", "head_dropout": 0.5})
    x = steps.normalize(batch["image"], (0.5,), (0.25,))
    v = {"params": state.params}
    a, _ = model.apply(v, x, train=False)
    b, _ = model.apply(v, x, train=False)
    np.testing.assert_array_equal(a, b)
    c, _ = model.apply(v, x, train=True, rngs={"dropout": jax.random.key(1)})
    d, _ = model.apply(v, x, train=True, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(c, a) and not np.allclose(c, d)


def test_train_step_is_deterministic_and_learns():
    model, tx, state, batch = _setup()
    step = jax.jit(steps.make_train_step(model, tx, mean=(0.5,), std=(0.25,)))
    s1, s2 = state, state
    losses = []
    for _ in range(5):
        s1, m1 = step(s1, batch)
        s2, _ = step(s2, batch)
        losses.append(float(m1["loss_sum"] / m1["count"]))
    for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params)):
        np.testing.assert_array_equal(a, b)
    assert int(s1.step) == 5 and losses[-1] < losses[0]


SHARDED = r"""
import jax, numpy as np
from cnn_jax import steps
from cnn_jax.nn import model_spec as ms
from cnn_jax.system import parallel
from cnn_jax.nn.models import CNN
from cnn_jax.optim import make_optimizer
assert jax.default_backend() == "cpu" and jax.device_count() == 8, jax.devices()
spec = ms.spec_from_config({"preset": "mnist_cnn", "batch_norm": True}, 10)
model = CNN(spec)
tx, _ = make_optimizer({"name": "adamw", "learning_rate": 1e-3, "weight_decay": 1e-4}, 10, 1)
rng = np.random.default_rng(0)
batches = [{"image": rng.integers(0, 256, (32, 8, 8, 1), dtype=np.uint8),
            "label": rng.integers(0, 10, 32).astype(np.int32)} for _ in range(3)]
def run(devices):
    mesh = parallel.make_mesh(devices)
    train = steps.make_train_step(model, tx, mean=(0.5,), std=(0.25,))
    evaluate = steps.make_eval_step(model, mean=(0.5,), std=(0.25,))
    train, _ = steps.compile_steps(train, evaluate, mesh)
    state = steps.create_train_state(model, tx, jax.random.key(0), (8, 8, 1))
    state = parallel.replicate(state, mesh)
    for b in batches:
        state, metrics = train(state, parallel.shard_batch(b, mesh))
    leaf = state.params["block1"]["conv"]["kernel"]
    state = state.replace(rng=jax.random.key_data(state.rng))
    return jax.device_get(state), len(leaf.sharding.device_set)
multi, n_multi = run(jax.devices())
single, n_single = run(jax.devices()[:1])
assert n_multi == 8 and n_single == 1
for a, b in zip(jax.tree.leaves(multi), jax.tree.leaves(single)):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    # atol 2e-5: 8-way sharded gradient sums round differently; Adam's step on a ~0 gradient
    # magnifies that (1 of 65536 kernel entries differed by 1.4e-5 on scale-only inputs).
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
print("OK")
"""


def test_sharded_step_on_8_devices_equals_single_device():
    """In a child on the CPU backend with 8 fake devices, on any host: a 1-GPU machine has
    one device, and fake devices exist on the CPU backend only."""
    result = run_python(SHARDED, devices=8, env={"JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout


def test_mesh_batch_size_check():
    mesh = parallel.make_mesh()
    parallel.check_batch_size(64, mesh)
    fake = type("M", (), {"devices": np.empty(8)})()
    try:
        parallel.check_batch_size(100, fake)
    except ValueError as e:
        assert "train.batch_size: 100 not divisible by the 8 devices" in str(e)
    else:
        raise AssertionError("expected ValueError")
