"""Explicit defaults keep a run's identity; a finished run extends to more epochs as a new run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnn_jax import run_identity
from cnn_jax.config import identity
from cnn_jax.outputs.writers import atomic_write_json, read_json
from cnn_jax.train import train_and_evaluate
from experiments.configs import smoke


def _tiny(data_dir: Path, **train):
    """The smoke run on 256 images (4 steps per epoch), one epoch, a cosine schedule."""
    config = smoke.get_config()
    config.optim.schedule = "cosine"
    config.dataset.data_dir = str(data_dir)
    config.dataset.options = {"canvas_size": 16, "train_subset": 256}
    config.train.update(
        **{"num_epochs": 1, "log_every_steps": 2, "eval_train_at_end": False, **train}
    )
    return config


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_explicit_defaults_keep_the_identity(data_dir: Path):
    config = _tiny(data_dir)
    config.model.update(preset="mnist_cnn", activation=None)
    same = config.copy_and_resolve_references()
    same.model.update(activation="relu", pool="max", kernel_size=3)  # the preset's own
    same.optim.update(b1=0.9, max_norm=0.0)
    same.train.num_seeds = 1
    assert run_identity.of(same) == run_identity.of(config)
    assert run_identity.fields(same) == run_identity.fields(config)
    other = config.copy_and_resolve_references()
    other.model.activation = "tanh"
    assert run_identity.of(other) != run_identity.of(config)
    lenet = _tiny(data_dir)  # lenet5 is tanh: relu there is a setting, not a default
    plain = lenet.copy_and_resolve_references()
    plain.model.activation = None
    assert run_identity.of(lenet) != run_identity.of(plain)


def test_a_rerun_with_an_explicit_default_is_the_same_finished_run(tmp_path, data_dir: Path):
    config = _tiny(data_dir)
    config.model.update(preset="mnist_cnn", activation=None)
    results = train_and_evaluate(config, tmp_path)
    explicit = config.copy_and_resolve_references()
    explicit.model.activation = "relu"
    assert train_and_evaluate(explicit, tmp_path) == results
    # A run recorded before explicit defaults were dropped holds the hash of its fields as
    # written: it is still read as the same run.
    old = identity.of(explicit)
    assert old != results[identity.KEY]
    atomic_write_json(tmp_path / "config.json", dict(explicit.to_dict(), run_identity=old))
    atomic_write_json(tmp_path / "results.json", dict(results, run_identity=old))
    assert train_and_evaluate(explicit, tmp_path)[identity.KEY] == old
    assert train_and_evaluate(config, tmp_path)[identity.KEY] == old


@pytest.fixture(scope="module")
def parent(tmp_path_factory, data_dir: Path) -> Path:
    """A finished one-epoch run."""
    workdir = tmp_path_factory.mktemp("parent")
    train_and_evaluate(_tiny(data_dir), workdir)
    return workdir


def test_an_extension_continues_the_parent_as_a_new_run(parent: Path, tmp_path, data_dir):
    config = _tiny(data_dir, num_epochs=2, extend_from=str(parent))
    results = train_and_evaluate(config, tmp_path / "ext")
    held = read_json(parent / "results.json")
    record = results["extended_from"]
    assert (record["run_dir"], record["step"]) == (os.path.relpath(parent, tmp_path / "ext"), 4)
    assert record["run_identity"] == held[identity.KEY]
    assert results["steps"] == 8 and results["resumed_from_step"] == 4
    fresh = _tiny(data_dir, num_epochs=2)
    assert results[identity.KEY] not in (held[identity.KEY], run_identity.of(fresh))
    # cosine is defined on the total steps: the rate jumps at the parent's step, and
    # the record says by how much.
    assert record["learning_rate"] > record["parent_learning_rate"]
    assert train_and_evaluate(config, tmp_path / "ext") == results  # rerun: finished


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"optim.learning_rate": 0.1}, "optim.learning_rate"),
        ({"train.num_epochs": 1}, "train.num_epochs"),
    ],
)
def test_an_extension_of_other_settings_is_refused(parent, tmp_path, data_dir, change, field):
    config = _tiny(data_dir, num_epochs=2, extend_from=str(parent))
    for key, value in change.items():
        section, name = key.split(".")
        config[section][name] = value
    with pytest.raises(ValueError) as error:
        train_and_evaluate(config, tmp_path / "ext")
    assert field in _one_line(error)
    assert not (tmp_path / "ext" / "config.json").exists()


def test_more_epochs_in_the_same_workdir_point_to_extend(parent: Path, data_dir: Path):
    for extend in (None, str(parent)):
        config = _tiny(data_dir, num_epochs=2, extend_from=extend)
        with pytest.raises(ValueError) as error:
            train_and_evaluate(config, parent)
        line = _one_line(error)
        assert "new --workdir" in line and f"--extend={parent}" in line


def test_a_constant_schedule_extends_to_the_run_trained_from_scratch(tmp_path, data_dir):
    constant = {"schedule": "constant"}
    first = _tiny(data_dir)
    first.optim.update(constant)
    train_and_evaluate(first, tmp_path / "first")
    extended = _tiny(data_dir, num_epochs=2, extend_from=str(tmp_path / "first"))
    extended.optim.update(constant)
    fresh = _tiny(data_dir, num_epochs=2)
    fresh.optim.update(constant)
    a = train_and_evaluate(extended, tmp_path / "extended")
    b = train_and_evaluate(fresh, tmp_path / "fresh")
    assert a["extended_from"]["learning_rate"] == a["extended_from"]["parent_learning_rate"]
    assert a["final"]["test"] == pytest.approx(b["final"]["test"], rel=1e-5)


def test_optional_optim_fields_are_those_the_standard_config_leaves_unset():
    from cnn_jax.optim import OPTIM_KEYS
    from experiments.configs import base

    declared = set(base.get_config().optim)
    assert set(run_identity.OPTIONAL_OPTIM) == set(OPTIM_KEYS) - declared
