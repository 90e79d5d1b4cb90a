"""A run's settings as trained: an unset field shown with the value the trainer used.

A stored config leaves out what it did not set (`model.activation` unset: each block keeps
its preset's), so two runs can hold the same setting once blank and once spelled out, and a
table of differences would show a blank. `fill` resolves such fields: model fields through the
model spec the trainer builds (`nn.model_spec.spec_from_config`), `train` and `optim` fields
from their specs' defaults. A field it cannot resolve stays missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from cnn_jax.config.specs import TrainSpec
from cnn_jax.nn import model_spec
from cnn_jax.optim import OptimSpec

# model.<key> -> BlockSpec field it sets on every block (the rest: BLOCK_OVERRIDES, same name).
_BLOCK_FIELD = {"conv_dropout": "dropout", "hidden_noise_std": "noise_std"}


def _spec_defaults(section: str, spec: type) -> dict[str, Any]:
    fields = [f for f in dataclasses.fields(spec) if f.default is not dataclasses.MISSING]
    return {f"{section}.{f.name}": f.default for f in fields}


_SECTION_DEFAULTS = {**_spec_defaults("train", TrainSpec), **_spec_defaults("optim", OptimSpec)}


def _one(values: list[Any]) -> Any:
    """The value every block shares, else the per-block list."""
    return values[0] if len(set(map(repr, values))) == 1 else values


def model_values(flat: Mapping[str, Any]) -> dict[str, Any]:
    """`model.<key>` -> the value the trainer used, from the flat `model.*` fields given."""
    model = {k.split(".", 1)[1]: v for k, v in flat.items() if k.startswith("model.")}
    model = {k: v for k, v in model.items() if "." not in k}  # top-level model keys
    try:
        spec = model_spec.spec_from_config(model, int(model.get("num_classes", 10)))
    except (ValueError, TypeError):
        return {}
    blocks = spec.blocks
    out: dict[str, Any] = {
        "preset": model.get("preset", "mnist_cnn"),
        "compute_dtype": spec.compute_dtype,
        "head": spec.head.kind,
        "head_hidden": list(spec.head.hidden),
        "head_dropout": spec.head.dropout,
        "input_noise_std": spec.input_noise_std,
    }
    for key in (*model_spec.BLOCK_OVERRIDES, *_BLOCK_FIELD):
        out[key] = _one([getattr(b, _BLOCK_FIELD.get(key, key)) for b in blocks])
    return {f"model.{k}": v for k, v in out.items()}


def fill(fields: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """`fields` with each of `keys` it lacks set to the value the trainer used, where known."""
    out = dict(fields)
    wanted = [k for k in keys if k not in out]
    model = model_values(fields) if any(k.startswith("model.") for k in wanted) else {}
    for key in wanted:
        if key in model:
            out[key] = model[key]
        elif key in _SECTION_DEFAULTS:
            out[key] = _SECTION_DEFAULTS[key]
    return out
