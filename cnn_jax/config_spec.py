"""Typed, frozen specs of config sections, parsed once (`from_config`), defaults in one place.

Today the `train` section: the trainer used to read it with `config.train.get(key, default)`
in a dozen places, with defaults that disagreed (log_every_steps 50 in the trainer and the
validator, 20 in base.py only by chance of the config). `TrainSpec.from_config` validates the
section with `config_validation`'s one-line messages and returns the typed spec that
`run_setup.build` stores as `RunSetup.train`; the trainer reads only the spec.
The model section already has its spec (`model_spec.ModelSpec`, `spec_from_config`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any


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

        values = section.to_dict() if hasattr(section, "to_dict") else dict(section)
        _check_train(values)
        given = {f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values}
        spec = cls(**given)
        return dataclasses.replace(spec, budget_factor=float(spec.budget_factor))
