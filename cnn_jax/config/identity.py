"""Run identity: a hash of every config field that changes what is trained or measured.

Two configs with the same identity train the same model on the same data with the same
optimizer, seeds and budget, and evaluate it the same way, so their results are
interchangeable; anything else (logging, progress, checkpoint cadence, where the data files
live, the launcher, experiment-only measurement settings under `config.experiment`) is left
out. The trainer stores the hash in config.json and results.json, refuses a workdir whose
stored config has another identity, and `sweep.run_sweep` checks every cache hit with it.

These are the fields as written; `cnn_jax.run_identity` (on the training core's floor, which
knows the model presets and the optimizer's defaults) drops explicit defaults from them and is
what the trainer and the readers of runs use.

`seed_fields` is the identity of one seed of a run: a vmapped K-seed run and K separate
runs train the same models (to float rounding, tests/core/test_regularizers.py), so one seed
of either is the same result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KEY = "run_identity"  # where config.json and results.json hold the hash
_DISCARD = "a new --workdir, or --config.train.overwrite=True to discard that run"
# Dotted prefixes that never change the result (matched on whole path components).
EXCLUDED = (
    KEY,
    "experiment",
    "launcher",
    "dataset.data_dir",
    "train.log_every_steps",
    "train.checkpoint_every_steps",
    "train.keep_checkpoints",
    "train.tensorboard",
    "train.quiet",
    "train.eval_batch_size",
    "train.overwrite",
    "train.extend_from",  # a location: the `extended_from` section names the parent run
)
# Optional fields with their defaults, so an older config.json without them compares equal.
DEFAULTS = {
    "seed": 0,
    "train.num_seeds": 1,
    "train.budget_factor": 1.0,
    "train.eval_every_epochs": 1,
    "train.eval_train_at_end": True,
}


def _plain(config: Any) -> Any:
    data = config.to_dict() if hasattr(config, "to_dict") else config
    return json.loads(json.dumps(data, default=str))  # tuples -> lists, as in config.json


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif value is not None:  # an unset placeholder is the same as an absent field
        out[prefix] = value


def _excluded(path: str) -> bool:
    return any(path == p or path.startswith(p + ".") for p in EXCLUDED)


def fields(config: Any) -> dict[str, Any]:
    """The identity fields of a config (ConfigDict or config.json dict): dotted path -> value."""
    flat: dict[str, Any] = {}
    _flatten(_plain(config), "", flat)
    out = {k: v for k, v in flat.items() if not _excluded(k)}
    for key, default in DEFAULTS.items():
        out.setdefault(key, default)
    return out


def seed_fields(config: Any, seed: int) -> dict[str, Any]:
    """The identity fields of seed `seed` of a run of `config` (vmapped or not)."""
    out = fields(config)
    out.pop("train.num_seeds", None)
    out["seed"] = int(seed)
    return out


def member_fields(config: Any, index: int) -> dict[str, Any]:
    """The identity fields of member `index` of a run of `config`: seed `seed + index` of
    K vmapped seeds, or a grid member (`cnn_jax.config.grid.member_config`: its seed and values)."""
    from cnn_jax.config import grid

    member = grid.member_config(_plain(config), index)
    return seed_fields(member, member["seed"])


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return [_canonical(v) for v in value] if isinstance(value, list) else value
    return float(value)  # 1 and 1.0 are the same setting


def digest(flat: Mapping[str, Any]) -> str:
    """A short, stable hash of identity fields."""
    text = json.dumps({k: _canonical(v) for k, v in sorted(flat.items())}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def of(config: Any) -> str:
    """The run identity hash of a config."""
    return digest(fields(config))


def differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Fields whose values differ, as 'field: stored -> wanted' (sorted by field)."""
    out = []
    for key in sorted(set(stored) | set(wanted)):
        a, b = stored.get(key), wanted.get(key)
        if _canonical(a) != _canonical(b):
            out.append(f"{key}: {a!r} -> {b!r}")
    return out


def describe(diffs: list[str], limit: int = 3) -> str:
    """The first few differences on one line."""
    more = f" (+{len(diffs) - limit} more)" if len(diffs) > limit else ""
    return "; ".join(diffs[:limit]) + more


def stored_config(run_dir: Path) -> dict[str, Any] | None:
    """The config a workdir was trained with (config.json without the identity key)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(
            f"workdir: {path} is unreadable ({type(e).__name__}); allowed: restore it from a "
            f"copy, {_DISCARD}"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"workdir: {path} holds no config; allowed: {_DISCARD}")
    data.pop(KEY, None)
    return data


def stored_hash(run_dir: Path) -> str | None:
    """The identity hash config.json was written with (None when it holds none)."""
    try:
        data = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get(KEY) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def mismatch_message(where: Path, diffs: list[str], fix: str, kind: str = "finished") -> str:
    """One line: which fields differ between the stored run and the command, and the fix."""
    return (
        f"workdir: {where} holds a {kind} run with other settings ({describe(diffs)}); "
        f"allowed: {fix}"
    )
