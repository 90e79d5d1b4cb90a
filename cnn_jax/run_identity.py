"""Run identity as the trainer means it: `config.identity`'s fields, explicit defaults dropped.

`config.identity.fields` records a config as written, so `model.activation=relu` on a
preset whose blocks are relu already, or `optim.b1=0.9`, would count as another run than
leaving the field unset. Knowing that a value is a default takes the model presets (`nn`) and
the optimizer's spec (`optim`), which sit above `config`; so the canonical form is made here,
on the training core's floor, and every reader of identity above it uses this module. The
lower floors take what it computes: the checkpointer is given the fields and `canonical`.

Canonical form, chosen so that a config that sets no default explicitly keeps its old hash:
- a top-level `model.*` override that changes nothing in the model built from the config is
  dropped (`preset`, `compute_dtype`, `num_classes` and `blocks` stay as written);
- an optional `optim.*` field (one the standard config leaves unset) set to its default is
  dropped;
- `train` fields are compared as written, with `config.identity.DEFAULTS` filled in (every
  `train` field of the identity is declared by the standard config or has such a default).
A run recorded before this form existed, with a default set explicitly, holds the hash of its
fields as written: `accepted_hashes` gives both, so reading such a run still works.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from cnn_jax.config import identity
from cnn_jax.nn import model_spec
from cnn_jax.optim import OptimSpec

# optim fields the standard config (experiments/configs/base.py) leaves unset.
OPTIONAL_OPTIM = ("momentum", "b1", "b2", "eps", "allow_l2_with_weight_decay", "max_norm")
_OPTIM_DEFAULTS = {
    f"optim.{f.name}": f.default for f in dataclasses.fields(OptimSpec) if f.name in OPTIONAL_OPTIM
}
# model fields kept as written: what is built (preset, blocks) or needs the dataset (classes).
_MODEL_KEPT = ("preset", "compute_dtype", "num_classes", "blocks")


def _model_of(flat: Mapping[str, Any]) -> model_spec.ModelSpec | None:
    """The model built from the flat `model.*` fields, or None when they build none."""
    model = {k.split(".", 1)[1]: v for k, v in flat.items() if k.startswith("model.")}
    model = {k: v for k, v in model.items() if "." not in k}
    try:
        return model_spec.spec_from_config(model, int(model.get("num_classes", 10)))
    except (ValueError, TypeError, KeyError):
        return None


def _drop_noop_model_fields(out: dict[str, Any]) -> None:
    """Removes each model override whose removal leaves the built model unchanged."""
    built = _model_of(out)
    if built is None:
        return
    for key in sorted(k for k in out if k.startswith("model.") and k.count(".") == 1):
        if key.split(".", 1)[1] in _MODEL_KEPT:
            continue
        rest = {k: v for k, v in out.items() if k != key}
        if _model_of(rest) == built:
            del out[key]


def canonical(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Identity fields (`config.identity.fields`) with explicit defaults dropped."""
    out = dict(flat)
    _drop_noop_model_fields(out)
    for key, default in _OPTIM_DEFAULTS.items():
        if key in out and identity.differences({key: out[key]}, {key: default}) == []:
            del out[key]
    return out


def fields(config: Any) -> dict[str, Any]:
    """The canonical identity fields of a config (ConfigDict or config.json dict)."""
    return canonical(identity.fields(config))


def seed_fields(config: Any, seed: int) -> dict[str, Any]:
    """The canonical identity fields of seed `seed` of a run of `config`."""
    return canonical(identity.seed_fields(config, seed))


def member_fields(config: Any, index: int) -> dict[str, Any]:
    """The canonical identity fields of member `index` of a run of `config`."""
    return canonical(identity.member_fields(config, index))


def of(config: Any) -> str:
    """The run identity hash of a config."""
    return identity.digest(fields(config))


def accepted_hashes(config: Any) -> set[str]:
    """The hashes a record of this config may hold: the canonical one, and the one of its
    fields as written (what a run recorded before explicit defaults were dropped holds)."""
    return {of(config), identity.of(config)}
