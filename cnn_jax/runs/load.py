"""Load a trained run back from its workdir for analysis (invariance, feature maps, ...).

The run is rebuilt from its config.json through the same `run_setup.build` the trainer
used, and its latest checkpoint restored. For a K-seed (vmapped) run, `seed_index` picks
one seed; the per-seed dirs `workdir/seed_<s>/` of such a run load too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import ml_collections

from cnn_jax import datasets, run_identity, run_results
from cnn_jax.config import identity
from cnn_jax.early_stopping import EarlyStopping
from cnn_jax.nn.model_spec import ModelSpec
from cnn_jax.nn.models import CNN
from cnn_jax.outputs.writers import read_json
from cnn_jax.run_setup import build
from cnn_jax.system.checkpoint import Checkpointer, training_carry


@dataclasses.dataclass
class LoadedRun:
    """A trained model ready for `model.apply(variables, x, train=False)`."""

    config: ml_collections.ConfigDict
    spec: ModelSpec
    model: CNN
    variables: dict[str, Any]  # {'params', 'batch_stats'} of one seed
    dataset: datasets.Dataset
    step: int


def load_run(run_dir: str | Path, seed_index: int | None = None) -> LoadedRun:
    """Rebuilds model and dataset from `run_dir/config.json` and restores its checkpoint:
    the step results.json describes (the newest for a run still training), never another,
    and nothing in the run is written, cleaned or renamed.

    Early-stopped runs return their best parameters, as the trainer's final evaluation did.
    A member that diverged is refused in one line: its frozen parameters are no result.
    """
    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    results = read_json(results_path) if results_path.exists() else None
    diverged = run_results.diverged_text(results)
    if diverged:
        raise ValueError(
            f"run_dir: {run_dir} {diverged} (non-finite {results['diverged'].get('what')}), so "
            "it has no trained model or predictions to analyse; allowed: the runs that finished "
            "(a study leaves diverged members out: cnn_jax.runs.sweep.without_diverged)"
        )
    if isinstance(results, dict) and "vmapped_parent" in results:
        return load_run(run_results.member_parent(run_dir, results), results["seed_index"])
    if not (run_dir / "config.json").exists():
        raise FileNotFoundError(f"run_dir: no config.json in {run_dir}; is it a training workdir?")
    config = ml_collections.ConfigDict(identity.stored_config(run_dir))
    run = build(config)
    early = EarlyStopping.from_config(run.early_stopping, run.num_seeds)
    early_state = None if early is None else early.state
    carry = training_carry(run.init_state(), run.empty_window(), early_state)
    carry, step = _restore(run_dir, run, carry, results)
    source = carry["best"] or {
        "params": carry["state"].params,
        "batch_stats": carry["state"].batch_stats,
    }
    variables = {"params": source["params"], "batch_stats": source["batch_stats"]}
    if run.vmapped:
        if seed_index is None:
            raise ValueError(
                f"seed_index: required for the {run.num_seeds}-seed run {run_dir}; "
                f"allowed: 0..{run.num_seeds - 1}"
            )
        variables = jax.tree.map(lambda x: x[seed_index], variables)
        config = run.member_config(seed_index)  # a grid member's own settings
    return LoadedRun(config, run.spec, run.model, variables, run.dataset, step)


def _described_step(run_dir: Path, results: Any) -> int | None:
    """The final step results.json records (None without results.json)."""
    if results is None:
        return None
    step = results.get("steps") if isinstance(results, dict) else None
    if type(step) is not int or step < 0:
        raise ValueError(
            f"{run_dir / 'results.json'}: steps {step!r} is not a step count; allowed: the "
            "file the trainer wrote (rerun the training command to write it again)"
        )
    return step


def _restore(run_dir: Path, run: Any, carry: Any, results: Any) -> tuple[Any, int]:
    """(carry, step) of the checkpoint the record describes, read-only, checked against the
    identity of config.json."""
    ckpt = Checkpointer(
        run_dir / "checkpoints",
        save_every_steps=1,
        fingerprint=run.fingerprint(),
        identity=run_identity.fields(run.config),
        canonical=run_identity.canonical,
        read_only=True,
    )
    with ckpt:
        step = _described_step(run_dir, results)
        if step is not None:
            return ckpt.restore_step(carry, step), step
        restored = ckpt.restore_latest(carry)
    if restored is None:
        raise FileNotFoundError(f"run_dir: no checkpoint in {run_dir / 'checkpoints'}")
    return restored
