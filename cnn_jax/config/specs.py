"""The `train` and `dataset` sections as typed, frozen specs, with their one-line checks.

Every section is parsed once (`from_config`: checked, then typed, defaults in one place) and
`run_setup.build` keeps the specs on the `RunSetup`, so the trainer and its parts read specs,
never `config.<section>.get(key, default)` with defaults of their own. The other sections'
specs live with the code that uses them: `optim.OptimSpec`, `augment.AugmentSpec`,
`early_stopping.EarlyStoppingSpec`, `nn.model_spec.ModelSpec`, `config.launcher`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax

from cnn_jax import datasets
from cnn_jax.config.checks import as_dict, check_int, check_keys, is_int, is_real, parse
from cnn_jax.datasets import options as dataset_options


def budget_epochs(num_epochs: int, budget_factor: float = 1.0) -> int:
    """num_epochs x budget_factor, rounded half up, at least 1 (a study's training budget)."""
    return max(1, math.floor(int(num_epochs) * float(budget_factor) + 0.5))


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """The `train` section (see experiments/configs/base.py for what each field does)."""

    batch_size: int
    num_epochs: int
    num_seeds: int = 1
    budget_factor: float = 1.0
    eval_every_epochs: int = 1
    log_every_steps: int = 50
    checkpoint_every_steps: int = 0  # 0: at the end of every epoch
    keep_checkpoints: int = 3
    eval_batch_size: int = 0  # 0: max(batch_size, 256)
    eval_train_at_end: bool = True
    tensorboard: bool = True
    quiet: bool = False
    overwrite: bool = False
    extend_from: str | None = None  # a finished run's workdir to continue (cnn_jax.extension)

    @property
    def epochs(self) -> int:
        """Epochs to train: num_epochs x budget_factor, rounded half up, at least 1.

        The budget factor scales a study's training budget (1x, 3x) without
        editing its configs; early-stopping patience stays counted in evaluations."""
        return budget_epochs(self.num_epochs, self.budget_factor)

    def eval_batch(self, devices: int) -> int:
        """The evaluation batch: eval_batch_size or max(batch_size, 256), a multiple of devices."""
        size = self.eval_batch_size or max(self.batch_size, 256)
        return size - size % devices

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | Any) -> TrainSpec:
        """Validates the section (one ValueError line per bad field) and types it."""
        return parse(cls, as_dict(section), check_train)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """The `dataset` section: which dataset, where its files live, and its options.

    `options` holds the given options only, as sorted (name, value) pairs (the defaults of
    each dataset's options live with the dataset, `datasets.options.OPTIONS`)."""

    name: str
    data_dir: str | None = None  # None: $CNN_JAX_DATA_DIR or ~/tensorflow_datasets
    options: tuple[tuple[str, Any], ...] = ()
    image_shape: tuple[int, ...] | None = None  # None: not checked against the data

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | Any) -> DatasetSpec:
        """Validates the fields and options (no file is looked at) and types the section."""
        values = as_dict(section)
        check_dataset_fields(values)
        shape = values.get("image_shape")
        return cls(
            name=values["name"],
            data_dir=values.get("data_dir"),
            options=tuple(sorted((values.get("options") or {}).items())),
            image_shape=None if shape is None else tuple(int(d) for d in shape),
        )


DATASET_KEYS = ("name", "data_dir", "options", "image_shape")
TRAIN_KEYS = (
    "batch_size",
    "num_epochs",
    "num_seeds",
    "eval_every_epochs",
    "log_every_steps",
    "checkpoint_every_steps",
    "keep_checkpoints",
    "eval_batch_size",
    "eval_train_at_end",
    "tensorboard",
    "quiet",
    "budget_factor",
    "overwrite",
    "extend_from",
)


# (key, smallest allowed value, default) of the integer train fields.
_TRAIN_INTS = (
    ("batch_size", 1, None),
    ("num_epochs", 1, None),
    ("num_seeds", 1, 1),
    ("eval_every_epochs", 1, 1),
    ("log_every_steps", 1, 50),
    ("checkpoint_every_steps", 0, 0),
    ("keep_checkpoints", 1, 3),
    ("eval_batch_size", 0, 0),
)


_TRAIN_BOOLS = ("eval_train_at_end", "tensorboard", "quiet", "overwrite")


_MAX_BUDGET_FACTOR = 1000.0


def check_train(train: Mapping[str, Any]) -> None:
    check_keys("train", train, TRAIN_KEYS)
    for key, minimum, default in _TRAIN_INTS:
        if default is None and train.get(key) is None:
            raise ValueError(f"train.{key}: missing; allowed: integers >= {minimum}")
        check_int(f"train.{key}", train.get(key, default), minimum=minimum)
    for key in _TRAIN_BOOLS:
        value = train.get(key, False)
        if not isinstance(value, bool):
            raise ValueError(f"train.{key}: {value!r} not allowed; allowed: True, False")
    source = train.get("extend_from")
    if source is not None and not (isinstance(source, str) and source):
        raise ValueError(
            f"train.extend_from: {source!r} not allowed; allowed: the workdir of a finished run"
        )
    factor = train.get("budget_factor", 1.0)
    if not is_real(factor) or not 0 < factor <= _MAX_BUDGET_FACTOR:
        raise ValueError(
            f"train.budget_factor: {factor!r} not allowed; allowed: a number in "
            f"(0, {_MAX_BUDGET_FACTOR:g}] (1.0: the config's num_epochs, 3.0: three times it)"
        )
    devices = jax.device_count()
    for key in ("batch_size", "eval_batch_size"):
        value = train.get(key) or 0
        if value % devices:
            raise ValueError(
                f"train.{key}: {value} not divisible by the {devices} devices; "
                f"allowed: multiples of {devices}"
            )


def check_dataset_fields(cfg: Mapping[str, Any], *, look_up_unknown: bool = False) -> None:
    """Keys, name, data_dir, image_shape and options of the dataset section, no file read
    (`look_up_unknown`: a name that is not built in must be a TFDS dataset prepared there)."""
    check_keys("dataset", cfg, DATASET_KEYS)
    name, given = cfg.get("name"), cfg.get("options") or {}
    if not isinstance(name, str) or not name:
        raise ValueError(f"dataset.name: {name!r}; allowed: {', '.join(datasets.NAMES)}")
    if not isinstance(given, Mapping):
        raise ValueError(f"dataset.options: {given!r}; allowed: a mapping of options")
    data_dir = cfg.get("data_dir")
    if data_dir is not None and not isinstance(data_dir, str):
        raise ValueError(f"dataset.data_dir: {data_dir!r}; allowed: a directory path")
    shape = cfg.get("image_shape")
    if shape is not None and not (
        isinstance(shape, list | tuple) and all(is_int(d) and d >= 1 for d in shape)
    ):
        raise ValueError(
            f"dataset.image_shape: {shape!r}; allowed: None or [height, width, channels]"
        )
    if look_up_unknown and name not in datasets.NAMES:  # a prepared TFDS dataset: is it there?
        dataset_spec(name, data_dir, {})
    allowed = dataset_options.OPTIONS.get(name, dataset_options.OPTIONS[dataset_options.GENERIC])
    check_keys("dataset.options", given, tuple(allowed))
    for key, value in given.items():
        if not allowed[key].valid(value):
            raise ValueError(
                f"dataset.options.{key}: {value!r} not allowed for {name!r}; "
                f"allowed: {allowed[key].allowed}"
            )


class UnknownDatasetError(datasets.DatasetNotFoundError, ValueError):
    """Neither a built-in dataset nor a TFDS dataset prepared in the data dir (a typo, or
    data not prepared here yet): both a missing dataset and a bad config value."""


def dataset_spec(name: str, data_dir: str | None, given: dict[str, Any]) -> datasets.DatasetSpec:
    """`datasets.check`, with its errors as one line starting with the config field."""
    try:
        return datasets.check(name, data_dir=data_dir, **given)
    except datasets.DatasetNotFoundError as e:
        lines = " ".join(str(e).split())  # the CLI shows one line: keep where and how
        if name not in datasets.NAMES:
            raise UnknownDatasetError(
                f"dataset.name: unknown value {name!r} ({lines}); allowed: "
                f"{', '.join(datasets.NAMES)}, or a TFDS dataset prepared in the data dir"
            ) from None
        raise datasets.DatasetNotFoundError(f"dataset.name: {lines}") from None
    except ValueError as e:  # cross-option checks, e.g. canvas_size < 8 * digit_scale
        raise ValueError(f"dataset.options: {e}") from None
