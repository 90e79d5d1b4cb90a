"""Tuning on the validation split only: grids of (strength x learning rate) per regularizer.

The protocol (as in Srivastava et al. 2014, Sec. B: hyperparameters chosen on a validation
set): every grid point trains at `experiment.tune_size` images (subset draw
`experiment.tune_draw`, seeds `experiment.tune_seeds`) to convergence (early stopping on the
validation split), and the setting with the highest mean validation accuracy wins (ties: the
lower validation loss). The test split is never read here: the trainer does evaluate the test
split at the end of every run (it always does), but rows reach the selection only through
`validation_view`, which keeps the validation numbers and drops everything else, and only the
chosen settings' test predictions are ever loaded (by the evaluation phase).

`all` is tuned along one axis: every component at its own chosen strength times a joint factor
(`experiment.all_factors`), crossed with the learning rates (a scaled joint grid: factors x rates
instead of a product grid over every component). Controls (`experiment.controls`) are tuned
the same way; with `experiment.controls_tune_lr = False` only their strengths are, at the
learning rate chosen for their optimizer's baseline.

Re-tuning at the largest n (`experiment.retune_size`, optional): the baseline's rate, each
regularizer's strength and `all`'s factor are tried again there with their grid neighbours
(`retune`); the size curve at that n uses the re-tuned choices, and the record says per key
whether the tune_size choice still won.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ml_collections

from .variants import NO_STRENGTH, Setting

# (settings of one grid, chosen strengths so far) -> {setting name: validation view}
TrainFn = Callable[[Sequence[Setting], Mapping[str, float | None]], Mapping[str, dict[str, float]]]
VALIDATION_FIELDS = ("accuracy", "loss")


def validation_view(results: Mapping[str, Any]) -> dict[str, float]:
    """The only part of a run's results.json that tuning may see: validation accuracy and loss
    of the final (best-restored) parameters, and the stopping epoch. No test number passes."""
    val = results["final"]["validation"]
    out = {f"validation_{k}": float(val[k]) for k in VALIDATION_FIELDS}
    out["best_epoch"] = float(results.get("best_epoch", results.get("epochs", 0)))
    return out


def grid(
    regularizer: str,
    strengths: Sequence[float],
    learning_rates: Sequence[float],
    optimizer: str = "adamw",
) -> list[Setting]:
    """Every (strength, learning rate) of one regularizer; strength-free ones get lr only."""
    if regularizer in NO_STRENGTH:
        values: Sequence[float | None] = [None]
    else:
        if not strengths:
            raise ValueError(
                f"experiment.grids.{regularizer} (or optimizer_grids): empty; allowed: 3-5 values"
            )
        values = [float(s) for s in strengths]
    return [Setting(regularizer, s, float(lr), optimizer) for s in values for lr in learning_rates]


def select(settings: Sequence[Setting], scores: Mapping[str, Mapping[str, float]]) -> Setting:
    """The setting with the highest mean validation accuracy (ties: lower validation loss)."""
    missing = [s.name for s in settings if s.name not in scores]
    if missing:
        raise ValueError(f"tuning: no validation result for {missing}; train the grid first")
    for s in settings:
        if any("test" in k for k in scores[s.name]):
            raise ValueError(f"tuning: {s.name} carries test numbers; pass validation_view rows")
    return max(
        settings,
        key=lambda s: (scores[s.name]["validation_accuracy"], -scores[s.name]["validation_loss"]),
    )


def _lrs(exp: ml_collections.ConfigDict, optimizer: str) -> tuple[float, ...]:
    return tuple(exp.learning_rates[optimizer])


def learning_rates_for(exp: ml_collections.ConfigDict, optimizer: str, name: str) -> tuple:
    """The learning-rate grid of regularizer `name` under `optimizer`:
    experiment.regularizer_learning_rates.<optimizer>.<name> where set (decoupled decay shrinks
    the weights by lr x strength a step, so its best rate can sit past the baseline's grid),
    else experiment.learning_rates.<optimizer>."""
    own = (exp.get("regularizer_learning_rates") or {}).get(optimizer) or {}
    return tuple(own.get(name, _lrs(exp, optimizer)))


def strengths_for(exp: ml_collections.ConfigDict, optimizer: str, name: str) -> tuple:
    """The strength grid of regularizer `name` under `optimizer`: experiment.optimizer_grids.
    <optimizer>.<name> where set (a decay rate that suits SGD is 10-100x too weak for AdamW),
    else experiment.grids.<name>."""
    own = (exp.get("optimizer_grids") or {}).get(optimizer) or {}
    return tuple(own.get(name, exp.grids.get(name, ())))


def tune_all(exp: ml_collections.ConfigDict, train: TrainFn) -> dict[str, Any]:
    """Runs every grid of the study in dependency order; returns the tuning record:
    {"chosen": {key: Setting dict}, "grids": {key: [{setting, validation_*}]}}.

    Keys: each of experiment.tune (AdamW), 'all', and each experiment.controls entry
    '<optimizer>.<regularizer>' (an optimizer's baseline is tuned first, over its own rates).
    """
    record: dict[str, Any] = {"chosen": {}, "grids": {}}
    chosen: dict[str, Setting] = {}

    def run_grid(key: str, settings: list[Setting]) -> Setting:
        scores = train(settings, {k: v.strength for k, v in chosen.items()})
        best = select(settings, scores)
        chosen[key] = best
        record["grids"][key] = [dict(s.as_dict(), **scores[s.name]) for s in settings]
        record["chosen"][key] = best.as_dict()
        return best

    optimizers = ["adamw"] + sorted({c.split(".")[0] for c in exp.controls} - {"adamw"})
    for opt in optimizers:
        key = "baseline" if opt == "adamw" else f"{opt}.baseline"
        run_grid(key, grid("baseline", (), _lrs(exp, opt), opt))
    for name in exp.tune:
        strengths, lrs = strengths_for(exp, "adamw", name), learning_rates_for(exp, "adamw", name)
        run_grid(name, grid(name, strengths, lrs))
    for control in exp.controls:
        opt, name = control.split(".")
        if control in chosen or (opt == "adamw" and name in chosen):
            continue
        lrs = learning_rates_for(exp, opt, name)
        if not exp.get("controls_tune_lr", True):  # strengths only, at the baseline's rate
            lrs = (chosen["baseline" if opt == "adamw" else f"{opt}.baseline"].learning_rate,)
        run_grid(control, grid(name, strengths_for(exp, opt, name), lrs, opt))
    if "all" in exp.variants:
        missing = [c for c in exp.all_components if c not in chosen and c not in NO_STRENGTH]
        if missing:
            raise ValueError(f"experiment.all_components: {missing} are not in experiment.tune")
        settings = [
            Setting("all", None, float(lr), "adamw", factor=float(f))
            for f in exp.all_factors
            for lr in _lrs(exp, "adamw")
        ]
        record["all_strengths"] = {k: v.strength for k, v in chosen.items()}
        run_grid("all", settings)
    return record


def chosen_settings(record: Mapping[str, Any]) -> dict[str, Setting]:
    """{key: Setting} from a tuning record (as `tune_all` returns it or results.json holds)."""
    return {key: Setting(**value) for key, value in record["chosen"].items()}


def _neighbours(values: Sequence[float], chosen: float) -> list[float]:
    """`chosen` and its neighbours in the sorted grid `values` (the grid itself if absent)."""
    grid = sorted({float(v) for v in values})
    if float(chosen) not in grid:
        return grid
    i = grid.index(float(chosen))
    return grid[max(0, i - 1) : i + 2]


def retune_grids(exp: ml_collections.ConfigDict, record: Mapping[str, Any]) -> dict[str, list]:
    """{key: settings} re-tried at experiment.retune_size: the n-tuned choice of the baseline
    (its rate and the neighbouring rates), of each experiment.tune regularizer (its strength and
    the neighbouring strengths, at its chosen rate) and of `all` (its joint factor and the
    neighbouring factors). Optimal strengths move with n (Srivastava et al. 2014, Sec. 7.4), so
    the neighbourhood shows whether the n = tune_size choice still wins at the largest n."""
    chosen = chosen_settings(record)
    base = chosen["baseline"]
    out = {"baseline": [dataclasses.replace(base, learning_rate=lr)
                        for lr in _neighbours(_lrs(exp, "adamw"), base.learning_rate)]}  # fmt: skip
    for name in exp.tune:
        c = chosen[name]
        if c.strength is None:
            continue
        grid = strengths_for(exp, "adamw", name)
        out[name] = [dataclasses.replace(c, strength=s) for s in _neighbours(grid, c.strength)]
    if "all" in chosen:
        c = chosen["all"]
        out["all"] = [dataclasses.replace(c, factor=f)
                      for f in _neighbours(exp.all_factors, c.factor or 1.0)]  # fmt: skip
    return out


def retune(
    exp: ml_collections.ConfigDict, record: Mapping[str, Any], train: TrainFn
) -> dict[str, Any]:
    """Re-tunes the chosen settings at experiment.retune_size (`retune_grids`, validation only,
    seeds experiment.tune_seeds); `all` uses the strengths re-tuned here. Returns
    {"n", "chosen", "grids", "all_strengths", "same"}: `same[key]` says whether the
    tune_size choice is still the best there."""
    first = chosen_settings(record)
    grids = retune_grids(exp, record)
    out: dict[str, Any] = {"n": exp.retune_size, "chosen": {}, "grids": {}, "same": {}}
    strengths: dict[str, float | None] = {k: v.strength for k, v in first.items()}
    for key, settings in grids.items():
        if key == "all":
            out["all_strengths"] = dict(strengths)
        scores = train(settings, strengths)
        best = select(settings, scores)
        strengths[key] = best.strength
        out["grids"][key] = [dict(s.as_dict(), **scores[s.name]) for s in settings]
        out["chosen"][key] = best.as_dict()
        out["same"][key] = best == first[key]
    return out


def chosen_at(record: Mapping[str, Any], n_label: str) -> tuple[dict[str, Setting], dict]:
    """({key: Setting}, all's component strengths) used at size `n_label`: the re-tuned choices
    where `n_label` is the re-tuning size, else the tune_size choices."""
    chosen, strengths = chosen_settings(record), dict(record.get("all_strengths", {}))
    again = record.get("retuned")
    if again and _label(again["n"]) == n_label:
        chosen.update(chosen_settings(again))
        strengths = dict(again.get("all_strengths", strengths))
    return chosen, strengths


def _label(n: Any) -> str:
    return "all" if n in (None, "all") else str(int(n))
