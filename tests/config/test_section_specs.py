"""The typed specs of the dataset, optim, augment and early_stopping sections.

Defaults live in the dataclasses, a bad field is the same one line as `validate_config`'s,
base.py round-trips, and the consumers take the specs without checking them again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import ml_collections
import pytest

from cnn_jax import augment, run_setup
from cnn_jax.augment import AugmentSpec
from cnn_jax.config.specs import DatasetSpec
from cnn_jax.config_validation import validate_config
from cnn_jax.early_stopping import EarlyStopping, EarlyStoppingSpec
from cnn_jax.optim import OptimSpec, make_optimizer
from experiments.configs import base, smoke

SPECS = {
    "dataset": DatasetSpec,
    "optim": OptimSpec,
    "augment": AugmentSpec,
    "early_stopping": EarlyStoppingSpec,
}


def test_defaults_are_the_dataclasses():
    assert OptimSpec() == OptimSpec(
        name="adamw",
        learning_rate=1e-3,
        momentum=0.9,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        schedule="constant",
        warmup_epochs=0.0,
        end_lr_factor=0.0,
        grad_clip_norm=0.0,
        weight_decay=0.0,
        l1=0.0,
        l2=0.0,
        allow_l2_with_weight_decay=False,
        max_norm=0.0,
    )
    assert OptimSpec.from_config({}) == OptimSpec()
    assert AugmentSpec.from_config(None) == AugmentSpec.from_config({}) == AugmentSpec()
    assert AugmentSpec().is_identity and not AugmentSpec(flip=True).is_identity
    # base.py's augment section is the dataclass's defaults, so the two cannot drift apart
    assert augment.default_augment_config().to_dict() == dataclasses.asdict(AugmentSpec())
    assert tuple(f.name for f in dataclasses.fields(AugmentSpec)) == augment.AUGMENT_KEYS
    assert EarlyStoppingSpec.from_config(None) == EarlyStoppingSpec()
    assert EarlyStoppingSpec() == EarlyStoppingSpec(False, "accuracy", 5, 0.0)
    spec = DatasetSpec.from_config({"name": "digits"})
    assert spec == DatasetSpec("digits", data_dir=None, options=(), image_shape=None)


def test_fields_are_typed_and_frozen():
    spec = OptimSpec.from_config({"learning_rate": 1, "weight_decay": 0, "warmup_epochs": 2})
    assert isinstance(spec.learning_rate, float) and isinstance(spec.warmup_epochs, float)
    aug = AugmentSpec.from_config({"rotation_degrees": 15, "translate": 2, "crop_padding": 3})
    assert (aug.rotation_degrees, aug.translate, aug.crop_padding) == (15.0, 2.0, 3)
    assert isinstance(aug.translate, float) and isinstance(aug.crop_padding, int)
    data = DatasetSpec.from_config(
        {"name": "digits", "options": {"position": "random", "canvas_size": 28}}
    )
    assert data.options == (("canvas_size", 28), ("position", "random"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.learning_rate = 0.5  # type: ignore[misc]


# (dotted field, bad value): each spec must raise validate_config's very line.
BAD = [
    ("optim.name", "adamx"),
    ("optim.learning_rat", 0.1),
    ("optim.learning_rate", float("nan")),
    ("optim.b2", 1.5),
    ("optim.l2", 1e-4),  # with base.py's weight_decay 1e-4: both > 0
    ("augment.rotation_degrees", 270.0),
    ("augment.flipp", True),
    ("augment.crop_padding", 1.5),
    ("early_stopping.metric", "acc"),
    ("early_stopping.patience", 0),
    ("early_stopping.patiense", 3),
    ("early_stopping.min_delta", -0.1),
    ("dataset.options", {"canvas": 16}),
    ("dataset.options", {"canvas_size": 4}),
    ("dataset.data_dir", 3),
    ("dataset.name", ""),
    ("dataset.image_shape", "16x16"),
]


def _with(path: str, value: Any) -> dict[str, Any]:
    config = smoke.get_config().to_dict()
    section, key = path.split(".")
    config[section][key] = value
    return config


@pytest.mark.parametrize("path, value", BAD, ids=[f"{p}={v!r}" for p, v in BAD])
def test_a_bad_field_is_validate_configs_one_line(path: str, value: Any):
    config = _with(path, value)
    with pytest.raises(ValueError) as expected:
        validate_config(ml_collections.ConfigDict(config))
    section = path.split(".")[0]
    with pytest.raises(ValueError) as got:
        SPECS[section].from_config(config[section])
    assert str(got.value) == str(expected.value)
    assert str(got.value).startswith(f"{path}") and "\n" not in str(got.value)


def test_a_section_that_is_not_a_mapping_is_refused():
    for section in ("augment", "early_stopping"):
        with pytest.raises(ValueError, match=rf"^{section}: 3; allowed: a config section$"):
            SPECS[section].from_config(3)


def test_base_config_round_trips():
    config = base.get_config()
    for name, cls in SPECS.items():
        section = config[name].to_dict()
        spec = cls.from_config(config[name])
        for key, value in section.items():  # every field set in base.py is read as set
            got = getattr(spec, key)
            assert (dict(got) if key == "options" else got) == value, (name, key)
        again = dataclasses.asdict(spec)
        if name == "dataset":
            again["options"] = dict(spec.options)
        assert cls.from_config(again) == spec, name
    assert OptimSpec.from_config(config.optim).weight_decay == 1e-4
    assert OptimSpec.from_config(config.optim).schedule == "warmup_cosine"
    assert DatasetSpec.from_config(config.dataset).options == (("canvas_size", 16),)


def test_consumers_take_the_spec_without_checking_it_again(monkeypatch: pytest.MonkeyPatch):
    config = base.get_config()
    config.augment.rotation_degrees = 10.0
    config.early_stopping.enabled = True
    optim = OptimSpec.from_config(config.optim)
    aug = AugmentSpec.from_config(config.augment)
    early = EarlyStoppingSpec.from_config(config.early_stopping)

    def refuse(*args, **kwargs):
        raise AssertionError("a parsed spec was validated again")

    for target in (
        "cnn_jax.optim.check_optim",
        "cnn_jax.augment.check_augment",
        "cnn_jax.early_stopping.check_early_stopping",
        "cnn_jax.config_validation._check_dataset",
    ):
        monkeypatch.setattr(target, refuse)
    monkeypatch.setattr("cnn_jax.optim.validate_optim_config", refuse)
    monkeypatch.setattr(augment, "validate_augment_config", refuse)
    tx, schedule = make_optimizer(optim, steps_per_epoch=10, num_epochs=2)
    assert float(schedule(0)) == 0.0 and float(schedule(10)) == pytest.approx(3e-3)
    assert augment.make_augment_fn(aug) is not None
    assert augment.make_augment_fn(AugmentSpec()) is None
    tracker = EarlyStopping.from_config(early, num_seeds=2)
    assert tracker is not None and (tracker.metric, tracker.patience) == ("accuracy", 5)
    assert EarlyStopping.from_config(EarlyStoppingSpec(), num_seeds=1) is None


def test_build_parses_each_section_once_into_its_spec(data_dir: Path):
    config = smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    config.early_stopping.enabled = True
    config.optim.l1 = 1e-5
    run = run_setup.build(config)
    assert run.dataset_spec == DatasetSpec("digits", str(data_dir), (("canvas_size", 16),))
    assert run.optim == OptimSpec.from_config(config.optim) and run.optim.l1 == 1e-5
    assert run.augment == AugmentSpec() and run.early_stopping.enabled
    config.optim.b2 = 1.5  # once unchecked on the way into the chain; now one line
    with pytest.raises(ValueError, match=r"^optim.b2: 1.5 not allowed; allowed: 0 <= b2 < 1$"):
        run_setup.build(config)


def test_raw_sections_still_work_for_direct_callers(data_dir: Path):
    config = base.get_config()
    config.dataset.data_dir = str(data_dir)
    by_spec = make_optimizer(OptimSpec.from_config(config.optim), 10, 2)[1]
    by_dict = make_optimizer(config.optim.to_dict(), 10, 2)[1]
    assert [float(by_spec(s)) for s in range(20)] == [float(by_dict(s)) for s in range(20)]
    assert augment.make_augment_fn({}) is None
    assert EarlyStopping.from_config(None, num_seeds=1) is None
    assert EarlyStopping.from_config({"enabled": True, "patience": 2}, num_seeds=1).patience == 2
    spec = DatasetSpec.from_config(config.dataset)
    assert run_setup.load_dataset(spec).image_shape == run_setup.load_dataset(config).image_shape
