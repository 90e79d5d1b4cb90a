"""Resuming a run: one killed at its last step reports the whole run's time and logs each record
once, and a workdir whose config.json was lost or replaced is resumed only when its checkpoints
and results prove the run is this config's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnn_jax.config import identity
from cnn_jax.outputs.writers import read_json, read_metrics
from cnn_jax.train import train_and_evaluate
from experiments.configs import smoke


def small_config(data_dir: Path, **optim):
    config = smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    config.dataset.options = {"canvas_size": 16, "train_subset": 128}
    config.optim.update(**optim)
    return config


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_dir: Path) -> Path:
    """A finished smoke run (trained once; each test works on a copy)."""
    workdir = tmp_path_factory.mktemp("finished") / "run"
    train_and_evaluate(small_config(data_dir), workdir)
    return workdir


@pytest.fixture
def run_copy(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


def without_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


def test_a_run_resumed_at_its_last_step_keeps_its_time_and_logs_each_record_once(
    run_copy: Path, data_dir: Path
):
    before = read_json(run_copy / "results.json")
    records = read_metrics(run_copy)
    (run_copy / "results.json").unlink()  # killed after the last checkpoint, before this
    after = train_and_evaluate(small_config(data_dir), run_copy)
    assert after["resumed_from_step"] == after["steps"] == before["steps"]
    assert after["train_time_sec"] == before["train_time_sec"] > 0
    assert after["train_images_per_sec"] == before["train_images_per_sec"] > 0
    assert after["wall_time_sec"] > before["wall_time_sec"]
    assert after["final"] == before["final"]
    assert without_time(read_metrics(run_copy)) == without_time(records)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and "delete" not in message
    return message


@pytest.mark.parametrize("results", ["kept", "deleted"])
def test_a_lost_config_json_does_not_let_other_settings_take_the_run(
    run_copy: Path, data_dir: Path, results: str
):
    (run_copy / "config.json").unlink()
    if results == "deleted":
        (run_copy / "results.json").unlink()
    other = small_config(data_dir, learning_rate=0.123)
    with pytest.raises(ValueError) as refused:
        train_and_evaluate(other, run_copy)
    assert "optim.learning_rate" in one_line(refused) and "overwrite" in one_line(refused)
    assert not (run_copy / "config.json").exists()  # nothing rewritten
    # Its own settings resume it (the checkpoint proves them) and write config.json again.
    resumed = train_and_evaluate(small_config(data_dir), run_copy)
    assert resumed["run_identity"] == read_json(run_copy / "config.json")["run_identity"]


@pytest.mark.slow
def test_a_replaced_config_json_does_not_let_other_settings_take_the_run(
    run_copy: Path, data_dir: Path
):
    other = small_config(data_dir, learning_rate=0.123)
    forged = dict(other.to_dict(), **{identity.KEY: identity.of(other)})
    (run_copy / "config.json").write_text(json.dumps(forged))
    with pytest.raises(ValueError, match="optim.learning_rate") as refused:
        train_and_evaluate(other, run_copy)  # the checkpoint names what trained it
    one_line(refused)
    shutil.rmtree(run_copy / "checkpoints")
    with pytest.raises(ValueError, match="results.json holds the results of another run"):
        train_and_evaluate(other, run_copy)
    other.train.overwrite = True  # the way to discard it, as the message says
    assert train_and_evaluate(other, run_copy)["run_identity"] == identity.of(other)


@pytest.mark.slow
def test_an_unreadable_config_json_is_discarded_only_by_overwrite(run_copy: Path, data_dir: Path):
    (run_copy / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="is unreadable") as refused:
        train_and_evaluate(small_config(data_dir), run_copy)
    assert "overwrite" in one_line(refused)
    config = small_config(data_dir)
    config.train.overwrite = True
    assert train_and_evaluate(config, run_copy)["resumed_from_step"] == 0
