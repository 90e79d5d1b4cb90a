"""Run identity in the trainer: refusals naming the fields, untouched reruns, exact resumes."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from cnn_jax import steps
from cnn_jax.config import identity
from cnn_jax.outputs.writers import read_json, read_metrics
from cnn_jax.system.preemption import Preempted
from cnn_jax.system.workdir_lock import WorkdirLock, WorkdirLockedError
from cnn_jax.train import train_and_evaluate
from experiments.configs import smoke


def _tiny(data_dir: Path):
    config = smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    config.dataset.options = {"canvas_size": 16, "train_subset": 256}  # 4 steps per epoch
    config.train.update(num_epochs=2, log_every_steps=3, checkpoint_every_steps=2)
    config.train.eval_train_at_end = False
    return config


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _records(workdir: Path) -> list[dict]:
    drop = ("time", "images_per_sec")
    return [{k: v for k, v in r.items() if k not in drop} for r in read_metrics(workdir)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_dir: Path) -> Path:
    workdir = tmp_path_factory.mktemp("finished")
    train_and_evaluate(_tiny(data_dir), workdir)
    return workdir


def test_identity_is_stored_and_a_rerun_changes_nothing_on_disk(finished: Path, data_dir):
    config = _tiny(data_dir)
    stored = read_json(finished / "results.json")
    assert stored[identity.KEY] == read_json(finished / "config.json")[identity.KEY]
    assert stored[identity.KEY] == identity.of(config)
    before = _snapshot(finished)
    config.train.log_every_steps = 1  # not part of the identity: still the same run
    assert train_and_evaluate(config, finished) == stored
    assert _snapshot(finished) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("optim.learning_rate", 0.5), ("train.batch_size", 32), ("train.num_epochs", 3)],
)
def test_other_settings_on_a_finished_workdir_are_refused_naming_the_field(
    finished: Path, data_dir, field, value
):
    config = _tiny(data_dir)
    section, key = field.split(".")
    config[section][key] = value
    before = _snapshot(finished)
    pattern = rf"^workdir: .* holds a finished run with other settings \({field}: "
    with pytest.raises(ValueError, match=pattern + r".*--config\.train\.overwrite=True"):
        train_and_evaluate(config, finished)
    assert _snapshot(finished) == before


def _preempt_at(monkeypatch, step: int) -> None:
    """SIGTERM to this process after train step `step` (the trainer saves and stops)."""
    accumulate, count = steps.accumulate, [0]

    def counting(total, metrics):
        if "grad_norm" in metrics:
            count[0] += 1
            if count[0] == step:
                os.kill(os.getpid(), signal.SIGTERM)
        return accumulate(total, metrics)

    monkeypatch.setattr(steps, "accumulate", counting)


@pytest.mark.slow
def test_resume_mid_window_logs_what_the_uninterrupted_run_logs(
    tmp_path: Path, finished: Path, data_dir, monkeypatch
):
    config, workdir = _tiny(data_dir), tmp_path / "resumed"
    with monkeypatch.context() as patch:
        _preempt_at(patch, 5)  # inside the logging window of steps 4-6
        with pytest.raises(Preempted, match="at step 5"):
            train_and_evaluate(config, workdir)
    changed = _tiny(data_dir)
    changed.optim.learning_rate = 0.5
    with pytest.raises(ValueError, match=r"holds a partial run .*optim\.learning_rate"):
        train_and_evaluate(changed, workdir)
    results = train_and_evaluate(config, workdir)
    assert results["resumed_from_step"] == 5
    assert results["final"] == read_json(finished / "results.json")["final"]
    assert _records(workdir) == _records(finished)


@pytest.mark.slow
def test_overwrite_discards_a_run_with_other_settings(tmp_path: Path, finished: Path, data_dir):
    workdir = tmp_path / "run"
    workdir.mkdir()
    for name in ("config.json", "results.json", "metrics.jsonl"):
        (workdir / name).write_bytes((finished / name).read_bytes())
    config = _tiny(data_dir)
    config.train.num_epochs, config.train.overwrite = 1, True
    results = train_and_evaluate(config, workdir)
    assert results["steps"] == 4 and results[identity.KEY] == identity.of(config)
    assert max(r["step"] for r in read_metrics(workdir)) == 4


def test_overwrite_waits_for_the_lock_before_deleting_anything(
    tmp_path: Path, finished: Path, data_dir
):
    workdir = tmp_path / "live"
    workdir.mkdir()
    for name in ("config.json", "results.json", "metrics.jsonl"):
        (workdir / name).write_bytes((finished / name).read_bytes())
    config = _tiny(data_dir)
    config.train.num_epochs, config.train.overwrite = 1, True
    with WorkdirLock(workdir):  # a live run holds the workdir
        before = _snapshot(workdir)
        with pytest.raises(WorkdirLockedError, match="is in use"):
            train_and_evaluate(config, workdir)
        assert _snapshot(workdir) == before  # nothing of the live run was cleared


def test_a_results_file_cut_short_is_written_again_from_the_checkpoint(
    tmp_path: Path, finished: Path, data_dir
):
    workdir = tmp_path / "cut"
    shutil.copytree(finished, workdir)
    whole = read_json(finished / "results.json")
    text = (workdir / "results.json").read_text()
    (workdir / "results.json").write_text(text[: len(text) // 2])  # killed mid-write elsewhere
    results = train_and_evaluate(_tiny(data_dir), workdir)
    assert results["test_accuracy"] == whole["test_accuracy"]
    assert read_json(workdir / "results.json")["test_accuracy"] == whole["test_accuracy"]
