"""A resumed sweep reuses finished runs only when they were trained with the same settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnn_jax.results import atomic_write_json
from cnn_jax.sweep import run_dir, run_sweep
from experiments.configs import smoke


def _finished_run(workdir: Path, variant: str, seed: int, config) -> None:
    """A run dir as the trainer leaves it: config.json and results.json."""
    config = config.copy_and_resolve_references()
    config.seed, config.train.quiet = seed, True
    path = run_dir(workdir, variant, seed)
    path.mkdir(parents=True)
    atomic_write_json(path / "config.json", config.to_dict())
    atomic_write_json(path / "results.json", {"test_accuracy": 0.5})


def test_same_settings_reuse_the_finished_run(tmp_path: Path):
    config = smoke.get_config()
    _finished_run(tmp_path, "base", 0, config)
    config.train.log_every_steps = 1  # logging does not change the result
    config.dataset.data_dir = "/elsewhere"  # nor does where the files live
    rows = run_sweep({"base": config}, tmp_path, [0], verbose=False)
    assert rows[0]["results"] == {"test_accuracy": 0.5}


def test_changed_settings_are_refused_naming_the_section(tmp_path: Path):
    config = smoke.get_config()
    _finished_run(tmp_path, "base", 0, config)
    config.optim.learning_rate = 0.1
    with pytest.raises(ValueError, match=r"^optim: the finished run in .* new --workdir$"):
        run_sweep({"base": config}, tmp_path, [0], verbose=False)
