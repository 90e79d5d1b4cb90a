"""Typed, frozen specs of config sections, parsed once (`from_config`), defaults in one place.

The consumers used to read the sections with `config.<section>.get(key, default)` in many
places, with defaults that disagreed (log_every_steps 50 in the trainer and the validator,
20 in base.py only by chance of the config). Each `from_config` validates its section with
`config_validation`'s one-line messages and returns the typed spec; `run_setup.build` parses
every section once and stores the specs on the `RunSetup` (`train`, `dataset_spec`, `optim`,
`augment`, `early_stopping`), and the trainer, optimizer, augmentation and early stopping
read only the specs. The model section has its own spec (`model_spec.ModelSpec`,
`spec_from_config`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

_Spec = TypeVar("_Spec")


def budget_epochs(num_epochs: int, budget_factor: float = 1.0) -> int:
    """num_epochs x budget_factor, rounded half up, at least 1 (the budget of issue 10)."""
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

    @property
    def epochs(self) -> int:
        """Epochs to train: num_epochs x budget_factor, rounded half up, at least 1.

        The budget factor (issue 10) scales a study's training budget (1x, 3x) without
        editing its configs; early-stopping patience stays counted in evaluations."""
        return budget_epochs(self.num_epochs, self.budget_factor)

    def eval_batch(self, devices: int) -> int:
        """The evaluation batch: eval_batch_size or max(batch_size, 256), a multiple of devices."""
        size = self.eval_batch_size or max(self.batch_size, 256)
        return size - size % devices

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | Any) -> TrainSpec:
        """Validates the section (one ValueError line per bad field) and types it."""
        from cnn_jax.config_validation import _check_train

        return _parse(cls, _plain(section), _check_train)


def _plain(section: Mapping[str, Any] | Any) -> dict[str, Any]:
    """ConfigDict (placeholders become None) or mapping -> a plain dict."""
    return section.to_dict() if hasattr(section, "to_dict") else dict(section)


_CASTS = {"float": float, "int": int, "bool": bool}


def _parse(cls: type[_Spec], values: Any, check: Callable[[Any], None]) -> _Spec:
    """`check(values)` (one ValueError line per bad field), then the spec of the fields given
    (the rest keep their dataclass defaults), each float / int / bool field cast to its type
    (an int learning rate becomes a float; None values: every field at its default)."""
    check(values)
    given = values or {}
    fields = dataclasses.fields(cls)
    spec = cls(**{f.name: given[f.name] for f in fields if f.name in given})
    typed = {f.name: _CASTS[f.type](getattr(spec, f.name)) for f in fields if f.type in _CASTS}
    return dataclasses.replace(spec, **typed)


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
        from cnn_jax.config_validation import _check_dataset_fields

        values = _plain(section)
        _check_dataset_fields(values)
        shape = values.get("image_shape")
        return cls(
            name=values["name"],
            data_dir=values.get("data_dir"),
            options=tuple(sorted((values.get("options") or {}).items())),
            image_shape=None if shape is None else tuple(int(d) for d in shape),
        )


@dataclasses.dataclass(frozen=True)
class OptimSpec:
    """The `optim` section (see cnn_jax/optim.py for the chain these fields build)."""

    name: str = "adamw"
    learning_rate: float = 1e-3
    momentum: float = 0.9  # momentum and nesterov only
    b1: float = 0.9  # adam and adamw only
    b2: float = 0.999
    eps: float = 1e-8
    schedule: str = "constant"
    warmup_epochs: float = 0.0  # warmup_cosine only
    end_lr_factor: float = 0.0  # the final learning rate / learning_rate (cosine schedules)
    grad_clip_norm: float = 0.0  # 0: no clipping
    weight_decay: float = 0.0  # decoupled, kernels only
    l1: float = 0.0  # in-loss penalties, kernels only
    l2: float = 0.0
    allow_l2_with_weight_decay: bool = False
    max_norm: float = 0.0  # 0: no max-norm constraint

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | Any) -> OptimSpec:
        """Validates the section (one ValueError line per bad field) and types it."""
        from cnn_jax.config_validation import _check_optim

        return _parse(cls, _plain(section), _check_optim)


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
    """The `augment` section: every augmentation off by default (see cnn_jax/augment.py)."""

    rotation_degrees: float = 0.0
    scale_min: float = 1.0
    scale_max: float = 1.0
    flip: bool = False  # a mirrored digit is another symbol: off unless asked for
    crop_padding: int = 0
    translate: float = 0.0  # a continuous shift in pixels (an int is accepted too)

    @property
    def is_identity(self) -> bool:
        """True when every augmentation is off (the train step then skips augmenting)."""
        return self == AugmentSpec()

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | Any | None) -> AugmentSpec:
        """Validates the section (None: every augmentation off) and types it."""
        from cnn_jax.config_validation import _check_augment

        values = None if section is None else _plain_or_self(section)
        return _parse(cls, values, _check_augment)


@dataclasses.dataclass(frozen=True)
class EarlyStoppingSpec:
    """The `early_stopping` section: off by default; see cnn_jax/early_stopping.py."""

    enabled: bool = False
    metric: str = "accuracy"  # on the validation split; or "loss"
    patience: int = 5  # evaluations in a row without improvement
    min_delta: float = 0.0  # an improvement beats the best by more than this

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | Any | None) -> EarlyStoppingSpec:
        """Validates the section (None: disabled) and types it."""
        from cnn_jax.config_validation import _check_early_stopping

        values = None if section is None else _plain_or_self(section)
        return _parse(cls, values, _check_early_stopping)


def _plain_or_self(section: Any) -> Any:
    """A plain dict of a section, or the value itself when it is not a mapping (the checks
    then report it as not a config section)."""
    if hasattr(section, "to_dict") or isinstance(section, Mapping):
        return _plain(section)
    return section
