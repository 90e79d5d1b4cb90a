"""The regularizer study end to end on a tiny config: every file it promises, numbers that
agree with each other, each switch reaching the trainer, and a resume that retrains nothing
(and only the run whose results were removed)."""

from __future__ import annotations

import csv

import pytest

from cnn_jax.augment import make_augment_fn
from cnn_jax.config_validation import validate_config
from cnn_jax.results import read_json, read_metrics
from experiments import regularization as reg
from experiments.configs import regularization_smoke

VARIANTS = ("baseline", "l1")
SEEDS = (0, 1)
FILES = (
    "results.json",
    "runs.csv",
    "summary.csv",
    "summary.md",
    "test_accuracy.png",
    "learning_curves.png",
    "validation_loss.png",
    "weight_histograms.png",
)


def _tiny_config(data_dir):
    config = regularization_smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    config.dataset.options = {"canvas_size": 16, "train_subset": 256}
    config.model.blocks = [{"features": 4, "stride": 2}]
    config.model.head_hidden = [8]
    config.train.update(batch_size=64, num_epochs=2, log_every_steps=2)
    config.experiment.variants = VARIANTS
    config.experiment.seeds = SEEDS
    config.experiment.strength.l1 = 1e-2  # strong enough to shrink weights in 8 steps
    return config


def test_every_variant_config_is_valid_and_switches_its_regularizer(tmp_path):
    config = regularization_smoke.get_config()
    configs = reg.variant_configs(config, strength_sweeps=True)
    assert set(reg.REGULARIZERS) <= set(configs)
    assert {"dropout_0.2", "l1_0.0001"} <= set(configs)
    for cfg in configs.values():
        validate_config(cfg, tmp_path)
    base, every = configs["baseline"], configs["all"]
    assert base.model.pool == "none" and base.model.stride == 2 and not base.model.batch_norm
    assert base.optim.l1 == base.optim.l2 == base.optim.weight_decay == 0.0
    assert not base.early_stopping.enabled and make_augment_fn(base.augment) is None
    assert configs["dropout_0.2"].model.head_dropout == 0.2
    assert configs["dropout_0.2"].model.conv_dropout == 0.1
    assert configs["l1_0.0001"].optim.l1 == 1e-4
    # `all` switches every single regularizer on, with the strengths of the single runs.
    for name in reg.REGULARIZERS:
        if name in ("baseline", "all"):
            continue
        overrides = reg.regularizer_overrides(name, config.experiment)
        changed = 0
        for path, value in overrides.items():
            section, key = path.split(".")
            assert every[section][key] == value, (name, path)
            assert configs[name][section][key] == value, (name, path)
            changed += base[section].get(key) != value
        assert changed, f"{name} leaves the baseline config unchanged"


def test_bad_variant_is_one_clear_line():
    config = regularization_smoke.get_config()
    config.experiment.variants = ("baseline", "dropuot")
    with pytest.raises(ValueError, match="experiment.variants.*dropuot.*allowed"):
        reg.variant_configs(config)


def test_tiny_study_writes_everything_and_resumes_without_retraining(
    tmp_path, data_dir, monkeypatch
):
    config = _tiny_config(data_dir)
    results = reg.run_experiment(config, tmp_path, vmap_seeds=True)

    for name in FILES:
        assert (tmp_path / name).stat().st_size > 0, name
    rows = list(csv.DictReader((tmp_path / "runs.csv").read_text().splitlines()))
    assert [(r["variant"], int(r["seed"])) for r in rows] == [
        (v, s) for v in VARIANTS for s in SEEDS
    ]
    summary = list(csv.DictReader((tmp_path / "summary.csv").read_text().splitlines()))
    assert [r["variant"] for r in summary] == list(VARIANTS)
    markdown = (tmp_path / "summary.md").read_text()
    assert all(f"| {v} |" in markdown for v in VARIANTS)

    by_run = {(r["variant"], r["seed"]): r for r in results["runs"]}
    for row in results["runs"]:
        assert row["gap"] == pytest.approx(row["train_accuracy"] - row["test_accuracy"])
        assert 1 <= row["best_epoch"] <= 2 and row["epochs_trained"] == 2
        assert 0.0 <= row["weights_near_zero_0.001"] <= 1.0
        run = tmp_path / "runs" / row["variant"] / f"seed_{row['seed']}"
        val = [m for m in read_metrics(run) if m["split"] == "validation"]
        assert val[-1]["accuracy"] == pytest.approx(row["validation_accuracy"])
        curve = results["curves"][f"{row['variant']}/{row['seed']}"]
        assert curve["epoch"] == [1, 2] and len(curve["train_accuracy"]) == 2
    for seed in SEEDS:  # the L1 switch reached the loss: smaller, sparser kernels, same seed
        l1, plain = by_run["l1", seed], by_run["baseline", seed]
        assert l1["weights_l1"] < 0.95 * plain["weights_l1"]
        assert l1["weights_near_zero_0.001"] > plain["weights_near_zero_0.001"]
    for variant in VARIANTS:
        stat = results["summary"][variant]["test_accuracy"]
        assert stat["n"] == 2 and stat["ci_low"] <= stat["mean"] <= stat["ci_high"]

    calls = []
    real = reg.train_and_evaluate

    def counting(cfg, workdir):
        calls.append(str(workdir))
        return real(cfg, workdir)

    monkeypatch.setattr(reg, "train_and_evaluate", counting)
    monkeypatch.setattr("cnn_jax.sweep.train_and_evaluate", counting)
    again = reg.run_experiment(config, tmp_path, vmap_seeds=False)  # the other mode, same dirs
    assert calls == []
    assert again["summary"] == results["summary"]

    (tmp_path / "runs" / "l1" / "seed_1" / "results.json").unlink()
    reg.run_experiment(config, tmp_path, vmap_seeds=False)
    assert calls == [str(tmp_path / "runs" / "l1" / "seed_1")]
    assert read_json(tmp_path / "runs" / "l1" / "seed_1" / "results.json")["seed"] == 1
