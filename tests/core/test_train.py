"""The trainer end to end: the default digits config learns, and a run writes its whole record."""

from __future__ import annotations

from pathlib import Path

from cnn_jax.outputs.writers import read_json, read_metrics
from cnn_jax.train import train_and_evaluate
from experiments.configs import digits


def test_default_digits_config_reaches_95_percent_on_a_small_budget(tmp_path: Path, data_dir: Path):
    config = digits.get_config()  # the `make run` job, with fewer epochs
    config.dataset.data_dir = str(data_dir)
    config.train.num_epochs = 4
    config.train.quiet = True
    results = train_and_evaluate(config, tmp_path)

    assert results["test_accuracy"] >= 0.95, results["test_accuracy"]
    assert results["model"] == "mnist_cnn" and results["dataset"] == "digits"
    assert results["steps"] == 4 * (results["train_examples"] // config.train.batch_size)
    assert results["num_params"] > 0 and results["wall_time_sec"] > 0

    # The run's record: config, metrics with learning curves, TensorBoard events, results.
    assert read_json(tmp_path / "config.json")["train"]["num_epochs"] == 4
    assert read_json(tmp_path / "results.json")["test_accuracy"] == results["test_accuracy"]
    metrics = read_metrics(tmp_path / "metrics.jsonl")
    splits = {row["split"] for row in metrics}
    assert {"train", "validation", "test"} <= splits
    train_rows = [row for row in metrics if row["split"] == "train"]
    assert {"step", "loss", "accuracy", "learning_rate", "time"} <= set(train_rows[0])
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]
    assert list(tmp_path.rglob("events.out.tfevents.*")), "no TensorBoard event file"


def test_logged_train_windows_say_what_their_names_say(tmp_path: Path, data_dir: Path):
    config = digits.get_config()
    config.dataset.data_dir = str(data_dir)
    config.train.update(num_epochs=1, quiet=True, log_every_steps=5, num_seeds=2)
    config.optim.update(schedule="constant", learning_rate=0.01)
    results = train_and_evaluate(config, tmp_path)
    logs = sorted(tmp_path.rglob("metrics.jsonl"))
    assert len(logs) == 2  # one per seed
    window_images = 5 * config.train.batch_size * 2  # a full window of both seeds
    rates = []
    for log in logs:
        for row in (r for r in read_metrics(log) if r["split"] == "train"):
            assert row["learning_rate"] == 0.01
            if row["step"] % 5 == 0:  # a window lasts at most the run: at least its images / run
                assert row["images_per_sec"] >= window_images / results["wall_time_sec"], row
            rates.append(row["images_per_sec"])
    # The run's throughput counts the first step's compilation too: most windows beat it.
    assert sorted(rates)[len(rates) // 2] >= 0.5 * results["train_images_per_sec"]
