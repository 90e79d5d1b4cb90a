"""Training plumbing of the regularizer study: one config per (setting, training-set size,
subset draw, budget mode), trained through `cnn_jax.runs.sweep.run_sweep`, and an index of the
finished runs for the analysis.

Budget modes (a fixed budget alone confounds a regularizer with its convergence speed):
- 'converged': early stopping on validation accuracy (best parameters restored) under a
  maximum of 3x the fixed budget (or experiment.converged_epochs, if more); the stopping
  (best) epoch is recorded by the trainer.
- '1x', '3x': a fixed number of epochs (`train.budget_factor` 1 and 3), no early stopping.
So the '3x' baseline is also "training to the same maximum without early stopping".

The 1x budget is `train.num_epochs` epochs at `experiment.tune_size` (the value a record
stores is the one its runs used); at size n it scales as
(tune_size / n) ** experiment.epoch_exponent (1: the same number of steps at every size; 0: the
same epochs), at least min_epochs.
`experiment.converged_epochs` (optional) raises the converged cap to at least that many epochs
at every n: a cap in steps that suits n = 1,000 stops runs at larger n before early stopping
can trigger (Prechelt 1998: the criterion, not the budget, must end a converged run).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax.config.specs import budget_epochs
from cnn_jax.runs.sweep import run_sweep, without_diverged

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


def check_epochs(config: ml_collections.ConfigDict) -> None:
    """Refuses an epoch setting the study would not read (one line naming the field)."""
    exp = config.experiment
    if "budget_epochs" in exp:
        raise ValueError(
            f"experiment.budget_epochs: {exp.budget_epochs!r} is no longer read; allowed: set "
            "train.num_epochs (the 1x budget in epochs at experiment.tune_size)"
        )
    cap = exp.get("converged_epochs")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ValueError(
            f"experiment.converged_epochs: {cap!r}; allowed: None or an integer >= 1 "
            "(the least epoch cap of converged runs at every n)"
        )


def epochs_at(config: ml_collections.ConfigDict, n: int | None, train_size_all: int) -> int:
    """The 1x budget in epochs at training-set size n: train.num_epochs at the tuning size,
    scaled (see the module docstring)."""
    exp = config.experiment
    size = train_size_all if n is None else n
    ratio = exp.tune_size / size
    base = int(config.train.num_epochs)
    return max(int(exp.min_epochs), int(math.ceil(base * ratio**exp.epoch_exponent)))


def budget_of(config: ml_collections.ConfigDict, mode: str, epochs: int) -> tuple[int, float]:
    """(train.num_epochs, train.budget_factor) of a run in `mode` whose 1x budget is `epochs`:
    the mode's factor, except that a converged cap below experiment.converged_epochs is raised
    to it (factor 1)."""
    factor = MODES[mode]
    floor = config.experiment.get("converged_epochs")
    if mode == "converged" and floor is not None and budget_epochs(epochs, factor) < floor:
        return int(floor), 1.0
    return int(epochs), factor


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
    out = setting_config(config, setting, strengths)
    options = dict(out.dataset.options or {})
    options["train_subset"] = n
    options["subset_seed"] = None if n is None else int(draw)
    num_epochs, factor = budget_of(config, mode, epochs or epochs_at(config, n, train_size_all))
    dotted: dict[str, Any] = {
        "dataset.options": options,
        "train.num_epochs": num_epochs,
        "train.budget_factor": factor,
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
    rows = without_diverged(run_sweep(
        configs, root, seeds, vmap_seeds=bool(exp.vmap_seeds),
        vmap_grids=bool(exp.get("vmap_grids", False)), verbose=verbose,
    ))  # fmt: skip
    return [dict(row, key=row["variant"], **meta[row["variant"]]) for row in rows]


def index_rows(rows: Sequence[Mapping[str, Any]]) -> dict[tuple, dict[tuple[int, int], str]]:
    """{(setting name, n, mode): {(draw, seed): run_dir}}: the unit of a paired comparison."""
    out: dict[tuple, dict[tuple[int, int], str]] = {}
    for row in rows:
        cell = (row["setting"].name, size_label(row["n"]), row["mode"])
        out.setdefault(cell, {})[(row["draw"], int(row["seed"]))] = row["run_dir"]
    return out
