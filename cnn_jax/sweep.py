"""Run a family of configs over seeds, one run dir each, resuming interrupted sweeps.

Each (variant, seed) trains through `train_and_evaluate` in `workdir/<variant>/seed_<s>/`.
A run whose results.json exists is finished and skipped; an interrupted run resumes from
its checkpoint. So killing a sweep and restarting it loses at most the work since the
last checkpoint, and the final table is the same.
"""

from __future__ import annotations

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
        if done.exists():
            results, status = read_json(done), "cached"
        else:
            config = base_config.copy_and_resolve_references()
            config.seed = int(seed)
            config.train.quiet = True
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
