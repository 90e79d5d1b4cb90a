"""Shared helpers of the CNN-anatomy studies: training at each budget, per-image matrices, curves.

The claims and their evidence live in `experiments.anatomy.claims`; the claims engine
(`cnn_jax.stats.judge`) decides every label.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from cnn_jax import stats
from cnn_jax.outputs import predictions
from cnn_jax.outputs.writers import read_metrics
from cnn_jax.runs import progress
from cnn_jax.runs.sweep import run_sweep, without_diverged
from cnn_jax.system.preemption import NonFiniteError

DIVERGED = "DIVERGED.txt"


# ----------------------------------------------------------------------------- training


def budgets_in_order(budgets: Mapping[str, float]) -> dict[str, float]:
    """experiment.budgets by factor ({'1x', '3x', '30x'}): a ConfigDict sorts its keys as text,
    which would put 30x between 1x and 3x in every table and claim column."""
    return dict(sorted(budgets.items(), key=lambda kv: (float(kv[1]), kv[0])))


def _sweep_each(configs, root: Path, seeds: list[int], vmap_seeds: bool) -> list[dict]:
    """run_sweep variant by variant; a diverged variant (NaN/Inf) is marked and left out.

    For a learning-rate grid divergence is a result, not an error: the marker file
    <root>/<variant>/DIVERGED.txt keeps the message, so a rerun does not retrain it.
    """
    rows = []
    for name, config in configs.items():
        marker = root / name / DIVERGED
        if marker.exists():
            continue
        done_before = progress.done()
        try:
            rows += run_sweep({name: config}, root, seeds, vmap_seeds=vmap_seeds)
        except NonFiniteError as e:
            progress.drop(len(seeds) - (progress.done() - done_before))  # they never finish
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"{e}\n")
            print(f"{name}: diverged ({e}); left out", flush=True)
    return rows


def diverged(root: str | Path, budget: str, name: str) -> bool:
    """Whether `name` diverged at `budget` (see `_sweep_each`)."""
    return (Path(root) / budget / name / DIVERGED).exists()


def train_budgets(
    configs: Mapping[str, ml_collections.ConfigDict],
    root: str | Path,
    seeds: Sequence[int],
    budgets: Mapping[str, float],
    vmap_seeds: bool,
    allow_diverged: bool = False,
    only: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """{budget: rows}: every config at each budget factor (train.budget_factor), via run_sweep.

    Variants with identical configs (e.g. a depth-3 VALID stack that is also a kernel-study
    stack) train once; the duplicate names get copies of the first one's rows. With
    `allow_diverged`, a variant whose training diverges has no rows (see `_sweep_each`).
    `only[budget]`: the variants trained at that budget (default: all).
    """
    alias, plan = aliases(configs), budget_plan(configs, list(budgets), only)
    out, seeds = {}, [int(s) for s in seeds]
    for budget, factor in budgets.items():
        scaled = {}
        wanted = set((only or {}).get(budget, alias))
        for name in plan[budget]:
            scaled[name] = configs[name].copy_and_resolve_references()
            scaled[name].train.budget_factor = float(factor)
        print(f"budget {budget} (x{factor}): {len(scaled)} variants x {len(seeds)} seeds")
        where = Path(root) / budget
        if allow_diverged:
            rows = _sweep_each(scaled, where, seeds, vmap_seeds)
        else:
            rows = run_sweep(scaled, where, seeds, vmap_seeds=vmap_seeds)
        by_name = by_variant(without_diverged(rows))  # a diverged seed: left out, counted
        out[budget] = [
            dict(row, variant=name)
            for name, first in alias.items()
            if name in wanted
            for row in by_name.get(first, [])
        ]
    return out


def aliases(configs: Mapping[str, ml_collections.ConfigDict]) -> dict[str, str]:
    """{name: the first name with an identical config}: identical variants train once."""
    unique: dict[str, str] = {}
    return {
        name: unique.setdefault(json.dumps(c.to_dict(), sort_keys=True, default=str), name)
        for name, c in configs.items()
    }


def budget_plan(
    configs: Mapping[str, ml_collections.ConfigDict],
    budgets: Sequence[str],
    only: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[str]]:
    """{budget: the variants `train_budgets` trains there}: `only[budget]` (default: all),
    each set of identical configs once, under its first name."""
    alias = aliases(configs)
    out = {}
    for budget in budgets:
        wanted = set((only or {}).get(budget, alias))
        out[budget] = list(dict.fromkeys(a for n, a in alias.items() if n in wanted))
    return out


def planned_runs(
    configs: Mapping[str, ml_collections.ConfigDict],
    root: str | Path,
    seeds: Sequence[int],
    budgets: Sequence[str],
    allow_diverged: bool = False,
    only: Mapping[str, Sequence[str]] | None = None,
) -> int:
    """The runs `train_budgets` (same arguments) will sweep: the study's progress total, known
    before it trains. With `allow_diverged`, variants marked diverged are skipped, as there."""
    plan = budget_plan(configs, budgets, only)
    return sum(
        len(seeds)
        for budget, names in plan.items()
        for name in names
        if not (allow_diverged and diverged(root, budget, name))
    )


def by_variant(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows grouped by variant, each group in seed order."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (r["variant"], r["seed"])):
        out.setdefault(row["variant"], []).append(row)
    return out


def correct_sn(rows: Sequence[Mapping[str, Any]], split: str = "test") -> np.ndarray:
    """[seeds, images] 0/1 correctness of one variant's rows (the trainer's predictions)."""
    return predictions.correct_matrix([r["run_dir"] for r in rows], split)


def accuracy_interval(correct: np.ndarray) -> stats.Interval:
    """Mean accuracy over seeds and images with the seeds-x-images interval."""
    if correct.shape[0] < 2:
        return stats.wilson(int(correct.sum()), int(correct.size))
    return stats.hierarchical_bootstrap(correct)


def seed_values_fmt(values: Sequence[float], digits: int = 0) -> str:
    """'123 [98, 150]': mean and bootstrap interval over seeds (or the single value)."""
    x = np.asarray([v for v in values if v is not None], np.float64)
    if x.size == 0:
        return "-"
    if x.size == 1 or np.ptp(x) == 0:
        return f"{x.mean():.{digits}f}"
    iv = stats.percentile_bootstrap(x)
    return f"{iv.estimate:.{digits}f} [{iv.low:.{digits}f}, {iv.high:.{digits}f}]"


# ----------------------------------------------------------------------------- tables, curves


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


def train_curve(run_dir: str | Path) -> dict[str, list[float]]:
    """Logged train rows of one run: step, loss, accuracy (window means), time (seconds)."""
    rows = [r for r in read_metrics(run_dir) if r.get("split") == "train"]
    return {k: [float(r[k]) for r in rows] for k in ("step", "loss", "accuracy", "time")}


def steps_to_target(curve: Mapping[str, Sequence[float]], target: float) -> dict[str, Any]:
    """First logged step whose windowed train accuracy reaches `target`, and its time.

    Seconds are steps x the run's steady-state seconds per step (from the logged times,
    first logging window left out because it holds the compile), so compilation and
    evaluation do not count.
    """
    steps, acc, times = curve["step"], curve["accuracy"], curve["time"]
    per_step = None
    if len(steps) >= 3:
        per_step = (times[-1] - times[0]) / max(steps[-1] - steps[0], 1)
    hit = next((i for i, a in enumerate(acc) if a >= target), None)
    if hit is None:
        return {"steps": None, "seconds": None, "sec_per_step": per_step}
    seconds = None if per_step is None else steps[hit] * per_step
    return {"steps": int(steps[hit]), "seconds": seconds, "sec_per_step": per_step}


def finite_or_none(value: float | None) -> float | None:
    """JSON-safe float: None for missing, NaN or inf."""
    return None if value is None or not math.isfinite(value) else float(value)
