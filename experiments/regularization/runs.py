"""Training plumbing of the regularizer study: one config per (setting, training-set size,
subset draw, budget mode), trained through `cnn_jax.runs.sweep.run_sweep`, and an index of the
finished runs for the analysis.

Budget modes (a fixed budget alone confounds a regularizer with its convergence speed):
- 'converged': early stopping on validation accuracy (best parameters restored) under a
  maximum of 3x the fixed budget; the stopping (best) epoch is recorded by the trainer.
- '1x', '3x': a fixed number of epochs (`train.budget_factor` 1 and 3), no early stopping.
So the '3x' baseline is also "training to the same maximum without early stopping".

Epochs scale with the training-set size as (tune_size / n) ** experiment.epoch_exponent
(1: the same number of steps at every size; 0: the same epochs), at least min_epochs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax.runs.sweep import run_sweep

from ..config_cli import with_dotted
from .variants import Setting, setting_config

MODES = {"converged": 3.0, "1x": 1.0, "3x": 3.0}  # budget factor of each mode


def size_label(n: int | None) -> str:
    return "all" if n is None else str(int(n))


def parse_size(value: Any) -> int | None:
    """A training-set size from a config: a positive integer, or 'all' (the whole train split)."""
    if value == "all" or value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ValueError(f"experiment.sizes: {value!r}; allowed: positive integers or 'all'")


def epochs_at(exp: ml_collections.ConfigDict, n: int | None, train_size_all: int) -> int:
    """The 1x budget in epochs at training-set size n (see the module docstring)."""
    size = train_size_all if n is None else n
    ratio = exp.tune_size / size
    return max(int(exp.min_epochs), int(math.ceil(exp.budget_epochs * ratio**exp.epoch_exponent)))


def run_key(n: int | None, draw: int, mode: str, setting: Setting) -> str:
    """The sweep variant name (= run directory under runs/) of one evaluation cell."""
    return f"n{size_label(n)}_d{draw}_{mode}/{setting.name}"


def cell_config(
    config: ml_collections.ConfigDict,
    setting: Setting,
    *,
    n: int | None,
    draw: int,
    mode: str,
    strengths: Mapping[str, float | None],
    train_size_all: int,
    epochs: int | None = None,
) -> ml_collections.ConfigDict:
    """The training config of one setting at size n, subset draw `draw`, budget `mode`
    (`epochs`: the 1x budget, default `epochs_at`)."""
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r}; allowed: {', '.join(MODES)}")
    exp = config.experiment
    out = setting_config(config, setting, strengths)
    options = dict(out.dataset.options or {})
    options["train_subset"] = n
    options["subset_seed"] = None if n is None else int(draw)
    dotted: dict[str, Any] = {
        "dataset.options": options,
        "train.num_epochs": epochs or epochs_at(exp, n, train_size_all),
        "train.budget_factor": MODES[mode],
        "early_stopping.enabled": mode == "converged",
    }
    return with_dotted(out, dotted)


def train_cells(
    config: ml_collections.ConfigDict,
    root: Path,
    settings: Sequence[Setting],
    *,
    n: int | None,
    draws: Sequence[int],
    mode: str,
    seeds: Sequence[int],
    strengths: Mapping[str, float | None],
    train_size_all: int,
    epochs: int | None = None,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Trains every setting x draw x seed (cached runs are reused); returns the sweep rows with
    'key', 'setting', 'n', 'draw', 'mode' added."""
    configs, meta = {}, {}
    for draw in draws:
        for setting in settings:
            key = run_key(n, draw, mode, setting)
            configs[key] = cell_config(
                config, setting, n=n, draw=draw, mode=mode, strengths=strengths,
                train_size_all=train_size_all, epochs=epochs,
            )  # fmt: skip
            meta[key] = {"setting": setting, "n": n, "draw": int(draw), "mode": mode}
    exp = config.experiment
    rows = run_sweep(
        configs, root, seeds, vmap_seeds=bool(exp.vmap_seeds),
        vmap_grids=bool(exp.get("vmap_grids", False)), verbose=verbose,
    )  # fmt: skip
    return [dict(row, key=row["variant"], **meta[row["variant"]]) for row in rows]


def index_rows(rows: Sequence[Mapping[str, Any]]) -> dict[tuple, dict[tuple[int, int], str]]:
    """{(setting name, n, mode): {(draw, seed): run_dir}}: the unit of a paired comparison."""
    out: dict[tuple, dict[tuple[int, int], str]] = {}
    for row in rows:
        cell = (row["setting"].name, size_label(row["n"]), row["mode"])
        out.setdefault(cell, {})[(row["draw"], int(row["seed"]))] = row["run_dir"]
    return out
