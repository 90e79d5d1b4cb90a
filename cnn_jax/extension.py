"""Extending a finished run to more epochs (`train.extend_from`, the `--extend` flag).

The extension is a new run in a new workdir: it restores the parent's final checkpoint and
trains on to its own epoch count. Its identity is not the parent's, nor that of a run trained
from scratch to the same count: the trainer adds an `extended_from` section (the parent's run
identity and step) to its config, which the identity covers, while the parent's path
(`train.extend_from`) is a location and stays out of it, as `dataset.data_dir` does.

Everything but the epoch count must match the parent (its config.json, and the identity its
checkpoint carries). The learning-rate schedule is the one of the new epoch count, read from
the parent's step on: a constant schedule continues as a longer run from scratch would (the
data order depends only on the seed and the epoch), while a schedule defined on the total
steps (cosine, warmup_cosine) jumps to the new schedule's rate at that step. The record says
so with numbers: results.json's `extended_from` holds the parent's last rate and the rate the
extension continued with.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax import run_identity
from cnn_jax.config import identity
from cnn_jax.config.specs import TrainSpec
from cnn_jax.optim import make_schedule
from cnn_jax.outputs.writers import UnreadableJSONError, read_json
from cnn_jax.system.checkpoint import Checkpointer

KEY = "extended_from"  # the config section (and results.json key) naming the parent
FIELD = "train.extend_from"
_IGNORED = ("train.num_epochs", "train.extend_from", KEY)  # what an extension may change


@dataclasses.dataclass(frozen=True)
class Parent:
    """A finished run that an extension continues: where, at which step, which identity."""

    run_dir: Path
    step: int
    run_identity: str
    config: dict[str, Any]


def source_of(config: Any) -> str | None:
    """The parent's workdir a config extends (`train.extend_from`), or None."""
    return (config.get("train") or {}).get("extend_from") or None


def _finished(source: str, workdir: Path) -> Parent:
    """The finished run in `source`, or one line saying why it is none."""
    run_dir = Path(source)
    if run_dir.resolve() == workdir.resolve():
        raise ValueError(
            f"{FIELD}: {source} is this run's --workdir; allowed: a new --workdir with "
            f"--extend={source} (the finished run stays as it is)"
        )
    stored = identity.stored_config(run_dir)
    try:
        results = read_json(run_dir / "results.json") if stored is not None else None
    except (FileNotFoundError, UnreadableJSONError):
        results = None
    if not isinstance(results, dict) or type(results.get("steps")) is not int:
        raise ValueError(
            f"{FIELD}: {source} holds no finished run (config.json and results.json); "
            "allowed: the --workdir of a finished run (rerun its command to finish it)"
        )
    if stored.get("grid"):
        raise ValueError(f"{FIELD}: {source} is a grid run; allowed: a single or K-seed run")
    held = results.get(identity.KEY) or identity.stored_hash(run_dir) or run_identity.of(stored)
    return Parent(run_dir, results["steps"], held, stored)


def _comparable(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if not any(k.startswith(p) for p in _IGNORED)}


def _check(parent: Parent, config: Any) -> None:
    """Everything but the epoch count as the parent's, and more epochs: else one line."""
    mine, theirs = run_identity.fields(config), run_identity.fields(parent.config)
    diffs = identity.differences(_comparable(theirs), _comparable(mine))
    if diffs:
        raise ValueError(
            f"{FIELD}: the run in {parent.run_dir} was trained with other settings "
            f"({identity.describe(diffs)}); allowed: its settings with more train.num_epochs"
        )
    before = TrainSpec.from_config(parent.config["train"]).epochs
    after = TrainSpec.from_config(config.train).epochs
    if after <= before:
        raise ValueError(
            f"train.num_epochs: {config.train.num_epochs} does not extend the {before} epochs "
            f"of the run in {parent.run_dir}; allowed: more than {before} epochs"
        )


def resolve(config: ml_collections.ConfigDict, workdir: Path) -> ml_collections.ConfigDict:
    """`config` with its `extended_from` section (the parent's identity and step) once the
    parent is checked; `config` itself when it extends nothing."""
    source = source_of(config)
    if source is None:
        if config.get(KEY) is not None:
            raise ValueError(f"{KEY}: set by the trainer; allowed: unset, with {FIELD} unset")
        return config
    parent = _finished(str(source), Path(workdir))
    _check(parent, config)
    out = config.copy_and_resolve_references()
    out[KEY] = ml_collections.ConfigDict({"run_identity": parent.run_identity, "step": parent.step})
    return out


def parent_of(config: Any) -> Parent | None:
    """The parent of an extension config that `resolve` checked (None: not an extension)."""
    source = source_of(config)
    if source is None:
        return None
    run_dir = Path(source)
    return Parent(run_dir, int(config[KEY]["step"]), config[KEY]["run_identity"],
                  identity.stored_config(run_dir) or {})  # fmt: skip


def restore(parent: Parent, run: Any, carry: Any) -> tuple[Any, dict[str, Any]]:
    """(carry, meta) of the parent's final checkpoint, read-only, checked against the
    identity of the parent's config.json and this run's model."""
    ckpt = Checkpointer(
        parent.run_dir / "checkpoints",
        save_every_steps=1,
        fingerprint=run.fingerprint(),
        identity=run_identity.fields(parent.config),
        canonical=run_identity.canonical,
        require_identity=True,
        read_only=True,
    )
    with ckpt:
        restored = ckpt.restore_step(carry, parent.step)
        return restored, dict(ckpt.restored_meta)


def record(parent: Parent, run: Any, workdir: Path) -> dict[str, Any]:
    """results.json's `extended_from`: the parent (path from this workdir), its step and
    identity, and the learning rates either side of the step."""
    epochs = TrainSpec.from_config(parent.config["train"]).epochs
    before = make_schedule(run.optim, run.steps_per_epoch, epochs)(parent.step - 1)
    return {
        "run_dir": os.path.relpath(parent.run_dir.resolve(), Path(workdir).resolve()),
        "step": parent.step,
        "run_identity": parent.run_identity,
        "parent_learning_rate": float(before),
        "learning_rate": run.learning_rates(parent.step)[0],
    }
