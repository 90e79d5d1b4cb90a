"""Run a family of configs over seeds, one run dir each, resuming interrupted sweeps.

Each (variant, seed) trains through `train_and_evaluate` in `workdir/<variant>/seed_<s>/`.
A run whose results.json exists is finished and skipped; an interrupted run resumes from
its checkpoint. So killing a sweep and restarting it loses at most the work since the
last checkpoint, and the final table is the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax.results import read_json
from cnn_jax.train import train_and_evaluate


def run_dir(workdir: str | Path, variant: str, seed: int) -> Path:
    """Where one (variant, seed) run lives."""
    return Path(workdir) / variant / f"seed_{seed}"


# The config sections that decide a run's result; logging and checkpoint cadence do not.
RESULT_KEYS = ("seed", "dataset", "model", "optim", "augment", "early_stopping")
RESULT_TRAIN_KEYS = ("batch_size", "num_epochs", "num_seeds", "eval_every_epochs")


def _result_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a config that decides the result, as plain JSON data."""
    config = json.loads(json.dumps(dict(config)))  # tuples -> lists, as config.json has them
    out = {k: config.get(k) for k in RESULT_KEYS}
    if isinstance(out["dataset"], dict):  # where the files live does not change them
        out["dataset"] = {k: v for k, v in out["dataset"].items() if k != "data_dir"}
    train = config.get("train") or {}
    out["train"] = {k: train.get(k) for k in RESULT_TRAIN_KEYS}
    return out


def check_same_config(path: Path, config: ml_collections.ConfigDict) -> None:
    """Refuses to reuse a finished run trained with other settings (one line naming the field),
    so a changed config never mixes old and new results in one table."""
    stored_path = path / "config.json"
    if not stored_path.exists():
        return
    stored = _result_settings(read_json(stored_path))
    wanted = _result_settings(config.to_dict())
    for section, value in wanted.items():
        if stored.get(section) != value:
            raise ValueError(
                f"{section}: the finished run in {path} was trained with {stored.get(section)!r}, "
                f"this sweep asks for {value!r}; allowed: the same settings, or a new --workdir"
            )


def run_sweep(
    configs: Mapping[str, ml_collections.ConfigDict],
    workdir: str | Path,
    seeds: Sequence[int],
    *,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Trains every variant with every seed; returns rows {variant, seed, run_dir, results}."""
    rows = []
    jobs = [(variant, config, seed) for variant, config in configs.items() for seed in seeds]
    for i, (variant, base_config, seed) in enumerate(jobs):
        path = run_dir(workdir, variant, seed)
        done = path / "results.json"
        t0 = time.time()
        config = base_config.copy_and_resolve_references()
        config.seed = int(seed)
        config.train.quiet = True
        if done.exists():
            check_same_config(path, config)
            results, status = read_json(done), "cached"
        else:
            results, status = train_and_evaluate(config, path), "trained"
        row = {"variant": variant, "seed": int(seed), "run_dir": str(path), "results": results}
        rows.append(row)
        if verbose:
            print(
                f"[{i + 1}/{len(jobs)}] {variant} seed {seed}: test accuracy "
                f"{results['test_accuracy']:.4f} ({status}, {time.time() - t0:.1f} s)",
                flush=True,
            )
        if on_result is not None:
            on_result(row)
    return rows
