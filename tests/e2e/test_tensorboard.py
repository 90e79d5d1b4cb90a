"""TensorBoard output read back with TensorBoard's own reader: one point per tag and step,
and an HParams session (settings + final metrics) for every run."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tensorboard", reason="tensorboard is a dev dependency (pip install .[dev])")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

from cnn_jax.outputs.writers import MetricsWriter, hparams_of  # noqa: E402
from cnn_jax.train import train_and_evaluate  # noqa: E402
from experiments.configs import smoke  # noqa: E402


def _read(logdir: Path) -> EventAccumulator:
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def _hparams(events: EventAccumulator) -> tuple[dict, list[str]]:
    """(hparams of the session, metric tags of the experiment) from the hparams plugin."""
    content = events.PluginTagToContent("hparams")
    data = {tag: plugin_data_pb2.HParamsPluginData.FromString(c) for tag, c in content.items()}
    start = next(d.session_start_info for d in data.values() if d.HasField("session_start_info"))
    experiment = next(d.experiment for d in data.values() if d.HasField("experiment"))
    values = {}
    for name, value in start.hparams.items():
        values[name] = getattr(value, value.WhichOneof("kind"))
    return values, [m.name.tag for m in experiment.metric_infos]


def _steps(events: EventAccumulator, tag: str) -> list[int]:
    return [e.step for e in events.Scalars(tag)]


def test_one_point_per_step_and_hparams_with_final_metrics(tmp_path: Path):
    config = smoke.get_config()
    with MetricsWriter(tmp_path) as writer:
        writer.write(10, "train", {"loss": 1.0, "accuracy": 0.5})
        writer.write(10, "validation", {"loss": 0.9, "accuracy": 0.6})
        writer.write(10, "validation", {"loss": 0.8, "accuracy": 0.7})  # final eval, same step
        writer.write(10, "test", {"loss": 0.85, "accuracy": 0.65})
        final = {"validation": {"loss": 0.8, "accuracy": 0.7}, "test": {"accuracy": 0.65}}
        writer.write_hparams(hparams_of(config, 3), final, 10)
    events = _read(tmp_path)
    for tag in events.Tags()["scalars"]:
        steps = _steps(events, tag)
        assert steps == sorted(set(steps)), (tag, steps)
    assert [e.value for e in events.Scalars("validation/accuracy")] == [pytest.approx(0.6)]
    assert events.Scalars("final/validation/accuracy")[0].value == pytest.approx(0.7)
    values, metrics = _hparams(events)
    assert sorted(metrics) == [
        "final/test/accuracy",
        "final/validation/accuracy",
        "final/validation/loss",
    ]
    assert values["seed"] == 3
    assert values["optim.learning_rate"] == pytest.approx(config.optim.learning_rate)
    assert values["model.preset"] == "lenet5"
    assert len(values["run_identity"]) == 16
    # metrics.jsonl keeps every line, the final evaluation included
    assert (tmp_path / "metrics.jsonl").read_text().count('"validation"') == 2


def test_no_tensorboard_no_events(tmp_path: Path):
    with MetricsWriter(tmp_path, tensorboard=False) as writer:
        writer.write(1, "train", {"loss": 1.0})
        writer.write_hparams({"seed": 0}, {"test": {"accuracy": 1.0}}, 1)
    assert not list(tmp_path.glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_every_trained_seed_has_an_hparams_session(tmp_path: Path):
    """A vmapped 2-seed run: each seed dir has its own session, with its own seed."""
    config = smoke.get_config()
    config.train.num_epochs = 1
    config.train.num_seeds = 2
    config.train.tensorboard = True
    config.train.eval_train_at_end = False
    results = train_and_evaluate(config, tmp_path)
    for seed, entry in zip(results["seeds"], results["per_seed"], strict=True):
        events = _read(tmp_path / f"seed_{seed}")
        values, metrics = _hparams(events)
        assert values["seed"] == seed
        assert "final/test/accuracy" in metrics
        final_test = events.Scalars("final/test/accuracy")
        assert final_test[0].value == pytest.approx(entry["test_accuracy"])
        for tag in events.Tags()["scalars"]:
            steps = _steps(events, tag)
            assert steps == sorted(set(steps)), (tag, steps)
