"""Each regularizer does what it claims, end to end through the train step and the trainer:
L1/L2/decoupled decay change the update by exactly their term, noise and dropout act only in
training and follow the RNG, early stopping stops after `patience` and restores the best
parameters, and K vmapped seeds equal K separate runs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax import steps
from cnn_jax.early_stopping import EarlyStopping
from cnn_jax.nn import model_spec as ms
from cnn_jax.nn.models import CNN
from cnn_jax.optim import kernel_mask, make_optimizer
from cnn_jax.outputs.writers import read_json, read_metrics
from cnn_jax.runs.load import load_run
from cnn_jax.train import train_and_evaluate
from experiments.configs import base

LR = 0.1
TINY_MODEL = {"blocks": [{"features": 4, "stride": 2}], "head_hidden": [8]}


def _state_and_batch(optim_cfg):
    model = CNN(ms.spec_from_config({"preset": "mnist_cnn", "batch_norm": True}, 10))
    tx, _ = make_optimizer(optim_cfg, 10, 1)
    state = steps.create_train_state(model, tx, jax.random.key(0), (8, 8, 1))
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8),
        "label": rng.integers(0, 10, 16).astype(np.int32),
    }
    return model, tx, state, batch


def _update(optim_cfg, **penalties):
    """Parameter change of one SGD train step (from the same state, batch and RNG)."""
    model, tx, state, batch = _state_and_batch(optim_cfg)
    step = jax.jit(steps.make_train_step(model, tx, mean=(0.5,), std=(0.25,), **penalties))
    new_state, _ = step(state, batch)
    return state.params, jax.tree.map(lambda a, b: a - b, new_state.params, state.params)


@pytest.mark.parametrize(
    "name,optim_extra,penalties,expected",
    [
        ("l1", {}, {"l1": 0.01}, lambda w: -LR * 0.01 * jnp.sign(w)),
        ("l2", {}, {"l2": 0.01}, lambda w: -LR * 2 * 0.01 * w),
        ("weight_decay", {"weight_decay": 0.3}, {}, lambda w: -LR * 0.3 * w),
    ],
)
def test_penalty_changes_the_step_by_its_term_on_kernels_only(
    name, optim_extra, penalties, expected
):
    plain_cfg = {"name": "sgd", "learning_rate": LR}
    params, plain = _update(plain_cfg)
    _, regularized = _update({**plain_cfg, **optim_extra}, **penalties)
    mask = kernel_mask(params)
    for w, a, b, is_kernel in zip(
        jax.tree.leaves(params),
        jax.tree.leaves(regularized),
        jax.tree.leaves(plain),
        jax.tree.leaves(mask),
    ):
        want = expected(w) if is_kernel else jnp.zeros_like(w)
        np.testing.assert_allclose(a - b, want, atol=2e-6, err_msg=name)


def test_noise_and_dropout_only_in_training_and_follow_their_rngs():
    cfg = {"preset": "mnist_cnn", "input_noise_std": 0.5, "hidden_noise_std": 0.5}
    noisy = CNN(ms.spec_from_config({**cfg, "conv_dropout": 0.3, "head_dropout": 0.5}, 10))
    clean = CNN(ms.spec_from_config({"preset": "mnist_cnn"}, 10))
    x = jax.random.normal(jax.random.key(1), (4, 8, 8, 1))
    variables = clean.init(jax.random.key(0), x)  # noise and dropout add no parameters
    expected, _ = clean.apply(variables, x)
    evaluated, _ = noisy.apply(variables, x, train=False)
    np.testing.assert_array_equal(evaluated, expected)

    def train(noise_seed, dropout_seed):
        keys = {"noise": jax.random.key(noise_seed), "dropout": jax.random.key(dropout_seed)}
        return noisy.apply(variables, x, train=True, rngs=keys)[0]

    base_out = train(0, 0)
    np.testing.assert_array_equal(base_out, train(0, 0))
    assert not np.allclose(base_out, expected)
    assert not np.allclose(base_out, train(1, 0))  # another noise draw
    assert not np.allclose(base_out, train(0, 1))  # another dropout mask


def test_early_stopping_patience_counts_evaluations_in_a_row():
    early = EarlyStopping("accuracy", patience=2, min_delta=0.0, num_seeds=2)
    # seed 0: bad, improve, bad, improve, bad -> never 2 bad in a row; seed 1: bad, bad.
    history = [(0.5, 0.5), (0.4, 0.4), (0.6, 0.3), (0.55, 0.6), (0.7, 0.7), (0.65, 0.8)]
    stopped = []
    for epoch, values in enumerate(history, start=1):
        early.update(values, epoch)
        stopped.append(early.stopped.tolist())
    assert stopped[2] == [False, True]  # seed 1: epochs 2 and 3 did not improve
    assert not any(s[0] for s in stopped)
    assert early.state["best_epoch"].tolist() == [5, 1]  # seed 1 frozen once stopped


def _tiny_config(data_dir, **train):
    config = base.get_config()
    config.dataset.data_dir = str(data_dir)
    config.model.preset = "mnist_cnn"
    config.model.blocks = TINY_MODEL["blocks"]
    config.model.head_hidden = TINY_MODEL["head_hidden"]
    config.optim.weight_decay = 0.0
    config.train.update(
        dict(batch_size=128, num_epochs=2, log_every_steps=4, tensorboard=False, quiet=True)
    )
    config.train.update(train)
    return config


@pytest.mark.slow
@pytest.mark.parametrize("num_seeds", [1, 2])
def test_early_stopping_stops_after_patience_and_restores_the_best(tmp_path, data_dir, num_seeds):
    config = _tiny_config(data_dir, num_epochs=8, num_seeds=num_seeds)
    # min_delta 1.0: only the first evaluation (over -inf) can improve, so every seed
    # stops after 1 + patience evaluations and must come back with its epoch-1 parameters.
    config.early_stopping.update(enabled=True, metric="accuracy", patience=2, min_delta=1.0)
    results = train_and_evaluate(config, tmp_path)
    per_seed = results["per_seed"] if num_seeds > 1 else [results]
    steps_per_epoch = results["train_examples"] // 128
    assert results["steps"] == 3 * steps_per_epoch  # epochs 1, 2, 3; not 8
    for entry in per_seed:
        assert entry["best_epoch"] == 1 and entry["stopped_early"] is True
        run = tmp_path / f"seed_{entry['seed']}" if num_seeds > 1 else tmp_path
        val = [r for r in read_metrics(run) if r["split"] == "validation"]
        epoch1, epoch3, final = val[0], val[2], val[-1]
        assert epoch1["step"] == steps_per_epoch and epoch3["step"] == 3 * steps_per_epoch
        assert final["loss"] == pytest.approx(epoch1["loss"], rel=1e-5)  # best params back
        assert final["loss"] != pytest.approx(epoch3["loss"], rel=1e-5)
        assert entry["final"]["validation"]["loss"] == pytest.approx(epoch1["loss"], rel=1e-5)


@pytest.mark.slow
def test_vmapped_k_seeds_equal_k_separate_runs(tmp_path, data_dir):
    config = _tiny_config(data_dir, batch_size=64, log_every_steps=2)
    config.dataset.options = {"canvas_size": 16, "train_subset": 256}  # 4 steps per epoch
    # Every random part on: init, data order, dropout, noise, augmentation.
    config.model.conv_dropout, config.model.head_dropout = 0.1, 0.3
    config.model.input_noise_std, config.model.hidden_noise_std = 0.1, 0.1
    config.augment.update(rotation_degrees=10.0, crop_padding=1)
    vm = config.copy_and_resolve_references()
    vm.seed, vm.train.num_seeds = 3, 2
    train_and_evaluate(vm, tmp_path / "vmapped")
    for k, seed in enumerate((3, 4)):
        single = config.copy_and_resolve_references()
        single.seed = seed
        train_and_evaluate(single, tmp_path / f"single_{seed}")
        a = read_json(tmp_path / "vmapped" / f"seed_{seed}" / "results.json")
        b = read_json(tmp_path / f"single_{seed}" / "results.json")
        assert a["seed"] == b["seed"] == seed and a["seed_index"] == k
        for split in ("train", "validation", "test"):
            assert a["final"][split]["loss"] == pytest.approx(b["final"][split]["loss"], rel=1e-4)
        curve_a = [r["loss"] for r in read_metrics(tmp_path / "vmapped" / f"seed_{seed}")]
        curve_b = [r["loss"] for r in read_metrics(tmp_path / f"single_{seed}")]
        np.testing.assert_allclose(curve_a, curve_b, rtol=1e-4)
        pa = load_run(tmp_path / "vmapped" / f"seed_{seed}").variables["params"]
        pb = load_run(tmp_path / f"single_{seed}").variables["params"]
        for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    seeds_differ = read_json(tmp_path / "vmapped" / "seed_3" / "results.json")["final"]
    other = read_json(tmp_path / "vmapped" / "seed_4" / "results.json")["final"]
    assert seeds_differ["test"]["loss"] != other["test"]["loss"]


def test_max_norm_projects_each_units_incoming_kernel_only():
    """Srivastava 2014 max-norm: after the step every output unit's kernel norm is <= c; a unit
    already inside the ball and the biases take the plain update."""
    c = 1.0
    tx, _ = make_optimizer({"name": "sgd", "learning_rate": 0.1, "max_norm": c}, 10, 1)
    kernel = jnp.stack([jnp.full(4, 3.0), jnp.full(4, 0.1)], axis=1)  # norms 6 and 0.2
    params = {"Dense_0": {"kernel": kernel, "bias": jnp.full(2, 5.0)}}
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    new = jax.tree.map(lambda p, u: p + u, params, updates)
    norms = np.linalg.norm(np.asarray(new["Dense_0"]["kernel"]), axis=0)
    np.testing.assert_allclose(norms[0], c, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(new["Dense_0"]["kernel"][:, 1]), 0.1 - 0.1, atol=1e-7)
    np.testing.assert_allclose(np.asarray(new["Dense_0"]["bias"]), 4.9, rtol=1e-6)


def test_subset_seed_draws_a_different_subset_and_keeps_validation(data_dir):
    from cnn_jax import datasets

    def load(**opts):
        return datasets.load("digits", data_dir=data_dir, canvas_size=16, **opts)

    first, a, a_again, b = (load(train_subset=100), load(train_subset=100, subset_seed=1),
                            load(train_subset=100, subset_seed=1), load(train_subset=100,
                                                                        subset_seed=2))  # fmt: skip
    assert len(a.train) == len(b.train) == 100
    np.testing.assert_array_equal(a.train.images, a_again.train.images)
    assert not np.array_equal(a.train.images, b.train.images)
    assert not np.array_equal(a.train.images, first.train.images)
    np.testing.assert_array_equal(a.validation.images, first.validation.images)
