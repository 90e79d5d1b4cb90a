"""The conditions of the memorization study: data (true labels, random labels, shuffled
pixels) x explicit regularizer (none, weight decay, dropout, augmentation), as trainer configs.

Zhang et al. 2017 (Sec. 2, Table 1): the same network fits true labels, random labels and
shuffled pixels; weight decay, dropout and data augmentation do not stop it. Each condition is
the study's base config with one `dataset.options.corrupt` (`cnn_jax.datasets.corrupt`) and
one regularizer's overrides (`experiment.regularizers`: (dotted config path, value) pairs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ml_collections

from cnn_jax import input_pipeline

from ..config_cli import with_dotted

DATA = ("true_labels", "random_labels", "shuffled_pixels")
CORRUPT = {"true_labels": "none", "random_labels": "random_labels",
           "shuffled_pixels": "shuffled_pixels"}  # fmt: skip
NONE = "none"


def name(data: str, regularizer: str) -> str:
    """'random_labels-dropout': the variant (run directory) name of one condition."""
    return f"{data}-{regularizer}"


def split_name(variant: str) -> tuple[str, str]:
    """('random_labels', 'dropout') of 'random_labels-dropout'."""
    data, _, regularizer = variant.partition("-")
    return data, regularizer


_DATA_WORDS = {"true_labels": "true labels", "random_labels": "random labels",
               "shuffled_pixels": "shuffled pixels"}  # fmt: skip
_REGULARIZER_WORDS = {NONE: "no explicit regularizer", "weight_decay": "weight decay",
                      "augment": "augmentation"}  # fmt: skip


def describe(variant: str, regularizers: Mapping[str, Any] | None = None) -> str:
    """One line for a condition, for tables: 'random_labels-dropout' -> 'random labels, dropout'
    and, given experiment.regularizers, what the regularizer sets ('(model.head_dropout = 0.5,
    ...)')."""
    data, regularizer = split_name(variant)
    if data not in _DATA_WORDS or not regularizer:
        raise ValueError(f"variant: unknown {variant!r}; allowed: <data>-<regularizer> with data "
                         f"one of {', '.join(DATA)}")  # fmt: skip
    words = _REGULARIZER_WORDS.get(regularizer, regularizer.replace("_", " "))
    sets = [f"{path} = {value:g}" if isinstance(value, float) else f"{path} = {value}"
            for path, value in (regularizers or {}).get(regularizer) or ()]  # fmt: skip
    return f"{_DATA_WORDS[data]}, {words}" + (f" ({', '.join(sets)})" if sets else "")


def check(exp: ml_collections.ConfigDict) -> None:
    """experiment.data and experiment.regularizers: known names, 'none' among the regularizers."""
    bad = [d for d in exp.data if d not in DATA]
    if bad:
        raise ValueError(f"experiment.data: {bad}; allowed: {', '.join(DATA)}")
    if NONE not in exp.regularizers:
        raise ValueError(f"experiment.regularizers: {list(exp.regularizers)}; allowed: a dict "
                         f"with {NONE!r} (no regularizer) among its keys")  # fmt: skip
    if any("-" in r for r in exp.regularizers):
        raise ValueError(f"experiment.regularizers: {list(exp.regularizers)}; allowed: names "
                         "without '-'")  # fmt: skip


def configs(config: ml_collections.ConfigDict) -> dict[str, ml_collections.ConfigDict]:
    """{variant: trainer config} of every data x regularizer of the experiment section."""
    exp = config.experiment
    check(exp)
    out = {}
    for data in exp.data:
        for reg, overrides in exp.regularizers.items():
            if data == "shuffled_pixels" and reg not in exp.get("shuffled_with", (reg,)):
                continue
            options = dict(config.dataset.options or {})
            options.update(corrupt=CORRUPT[data], corrupt_seed=int(exp.corrupt_seed))
            dotted = {"dataset.options": options, "train.log_every_steps": steps_per_epoch(config),
                      **dict(overrides or ())}  # fmt: skip
            out[name(data, reg)] = with_dotted(config, dotted, "experiment.regularizers")
    return out


def steps_per_epoch(config: ml_collections.ConfigDict) -> int:
    """Training steps per epoch of `train_subset` images (the trainer's full batches): the
    logging window, so each logged training accuracy is one epoch's mean."""
    n, batch = int(config.dataset.options.train_subset), int(config.train.batch_size)
    if n < batch:
        raise ValueError(f"dataset.options.train_subset: {n}; allowed: >= train.batch_size")
    return input_pipeline.steps_per_epoch(n, batch)
