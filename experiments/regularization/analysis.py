"""The regularizer study's numbers: levels per cell, the claims judged by the claims engine.

A cell (setting, n, budget mode) has rows = (subset draw, seed) pairs scored on the same test
images (0/1 correctness from `cnn_jax.outputs.predictions`). Levels are
`stats.hierarchical_bootstrap` intervals; the claims (`.claims`) are measured on matched rows
(`.evidence`) and judged by the claims engine, one Holm family for the study
(`cnn_jax.stats.judge`). The study computes no label itself: the same `judged` serves fresh
runs and re-analysed records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnn_jax import stats
from cnn_jax.outputs import predictions
from cnn_jax.stats.judge import ALPHA

from . import claims as study_claims
from . import stopping
from .evidence import fresh_estimate
from .runs import index_rows, parse_size, size_label
from .tuning import chosen_settings


def retuned_names(tuning: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """{n: {key: setting name}} of the re-tuned choices (empty when no size was re-tuned)."""
    again = tuning.get("retuned")
    if not again:
        return {}
    names = {k: s.name for k, s in chosen_settings(again).items()}
    return {size_label(parse_size(again["n"])): names}


def run_summary(row: Mapping[str, Any], patience: int | None = None) -> dict[str, Any]:
    """One evaluation run as a flat dict for results.json (no arrays); `capped`: early stopping
    never triggered (`stopping.capped`; None for fixed budgets)."""
    res = row["results"]
    stopped = res.get("stopped_early")
    cap = None
    if row["mode"] == stopping.CONVERGED and patience is not None:
        cap = stopping.capped(res.get("best_epoch"), res.get("epochs"), patience, stopped)
    return {
        "key": row["key"],
        **row["setting"].as_dict(),
        "n": size_label(row["n"]),
        "draw": row["draw"],
        "seed": int(row["seed"]),
        "mode": row["mode"],
        "validation_accuracy": res["final"]["validation"]["accuracy"],
        "test_accuracy": res["final"]["test"]["accuracy"],
        "train_accuracy": res["final"].get("train", {}).get("accuracy"),
        "best_epoch": res.get("best_epoch"),
        "stopped_early": stopped,
        "capped": cap,
        "epochs_max": res.get("epochs"),
        "steps": res.get("steps"),
        "num_params": res.get("num_params"),
        "forward_flops_per_example": res.get("forward_flops_per_example"),
        "num_seeds": res.get("num_seeds", 1),  # > 1: trained as one vmapped program
        "grid_member": "grid_point" in res,  # a member of a grid unit (cnn_jax.config.grid)
        "wall_time_sec": res["wall_time_sec"] / res.get("num_seeds", 1),
        "train_time_sec": res["train_time_sec"] / res.get("num_seeds", 1),
    }


class Cells:
    """Correctness matrices of the evaluation cells, loaded once each."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]):
        self.index = index_rows(rows)
        self._cache: dict[tuple, np.ndarray] = {}

    def runs(self, name: str, n: str, mode: str) -> dict[tuple[int, int], str]:
        return self.index.get((name, n, mode), {})

    def matched(self, a: tuple, b: tuple) -> tuple[np.ndarray, np.ndarray, list]:
        """[rows, images] correctness of cells a and b on their common (draw, seed) rows."""
        ra, rb = self.runs(*a), self.runs(*b)
        keys = sorted(set(ra) & set(rb))
        if not keys:
            raise ValueError(f"analysis: cells {a} and {b} share no (draw, seed) runs")
        load = predictions.correct_matrix
        return load([ra[k] for k in keys]), load([rb[k] for k in keys]), keys

    def estimate(self, a: tuple, b: tuple, reference_error: float | None):
        """a - b on their matched rows (`evidence.fresh_estimate`)."""
        a_rn, b_rn, keys = self.matched(a, b)
        return fresh_estimate(a_rn, b_rn, keys, reference_error)

    def level(self, cell: tuple) -> stats.Interval:
        runs = self.runs(*cell)
        scores = predictions.correct_matrix([runs[k] for k in sorted(runs)])
        return stats.hierarchical_bootstrap(scores)


def levels(config, rows: Sequence[Mapping[str, Any]], cells: Cells) -> list[dict[str, Any]]:
    """Test accuracy (hierarchical interval), stopping epoch, compute of every evaluation cell;
    converged cells also their stopping epochs and capped runs (`stopping.cell_stopping`)."""
    patience = stopping.patience_of(config)
    out = []
    for (name, n, mode), runs in sorted(cells.index.items()):
        mine = [r for r in rows if r["setting"].name == name and size_label(r["n"]) == n
                and r["mode"] == mode]  # fmt: skip
        res = [r["results"] for r in mine]
        stops = stopping.cell_stopping(res, patience) if mode == stopping.CONVERGED else None
        out.append({
            "setting": name, "n": n, "mode": mode, "rows": len(runs),
            "test_accuracy": cells.level((name, n, mode)).as_dict(),
            "best_epoch_mean": _mean([x.get("best_epoch") for x in res]),
            "epochs_max": res[0].get("epochs"),
            "num_params": res[0].get("num_params"),
            "forward_flops_per_example": res[0].get("forward_flops_per_example"),
            "train_time_sec_mean": _mean([x["train_time_sec"] / x["num_seeds"] for x in res]),
            **({"stopping": stops} if stops else {}),
        })  # fmt: skip
    return out


def _mean(values: Sequence[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def zhang_check(claims: Sequence[Mapping[str, Any]], sizes: Sequence[str]) -> dict[str, Any]:
    """Zhang et al. 2017: explicit regularizers are neither necessary nor sufficient. On our size
    curve, from the claims' converged labels: the best gain of any regularizer at each n, which
    'helps' claims held (a gain the family supports) and which did not (their labels)."""
    out = {}
    for n in sizes:
        mine = [c for c in claims if c["role"] == "helps" and c["n"] == n
                and "converged" in c["budgets"]]  # fmt: skip
        if not mine:
            continue
        conv = {c["a"]: c["budgets"]["converged"] for c in mine}
        best = max(conv, key=lambda a: conv[a]["estimate"]["delta"])
        out[n] = {
            "best": best,
            "best_delta": conv[best]["estimate"]["delta"],
            "held": [a for a, v in conv.items() if v["label"] == "held"],
            "not_held": [a for a, v in conv.items() if v["label"] != "held"],
            "labels": {a: v["label"] for a, v in conv.items()},
        }
    return out


def judged(
    exp: Mapping[str, Any],
    tuning: Mapping[str, Any],
    levels: Sequence[Mapping[str, Any]],
    estimate,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """The claims part of the analysis, for fresh runs and records alike.

    ``estimate(a cell, b cell, reference_error)``: the Estimate of a - b; reference_error is
    b's test error (from ``levels``), which a relative margin scales with. A converged claim
    whose rows hit the epoch cap says so (`stopping.annotate`; the label is the engine's).
    """
    chosen = {k: s.name for k, s in chosen_settings(tuning).items()}
    references = study_claims.reference_errors(levels)
    declared = study_claims.declare(exp, chosen, retuned_names(tuning))
    results = study_claims.judge_study(
        declared, lambda a, b: estimate(a, b, references.get(tuple(b))), alpha
    )
    results = stopping.annotate(results, levels)
    sizes = [size_label(parse_size(s)) for s in exp["sizes"]]
    margin = study_claims.margin_of(exp)
    tally: dict[str, int] = {}
    for r in results:
        tally[r["result"]] = tally.get(r["result"], 0) + 1
    return {
        "claims": results,
        "counts": tally,
        "capped_claims": sum(bool(r["capped"]) for r in results),
        "zhang": zhang_check(results, sizes),
        "margin": {"relative": margin.relative, "floor": margin.floor},
        "alpha": alpha,
    }


def analyse(config, tuning: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict:
    """The study's numbers: levels of every cell, the claims judged (Holm over the study)."""
    cells = Cells(rows)
    lv = levels(config, rows, cells)
    return {"levels": lv, **judged(config.experiment, tuning, lv, cells.estimate)}


def vmap_speed(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sequential vs vmapped seeds, measured on the study's own runs: training seconds per step
    and seed of single-seed runs and of K-seed vmapped runs of the same (setting, n, budget)
    (different subset draws; the machine's load varies between them: a rough figure)."""
    solo: dict[tuple, list[float]] = {}
    vm: dict[tuple, list[float]] = {}
    for r in runs:
        if r.get("steps"):
            cell = (r["key"].split("/")[1], r["n"], r["mode"])
            (vm if r.get("num_seeds", 1) > 1 else solo).setdefault(cell, []).append(
                r["train_time_sec"] / r["steps"]
            )
    ratios = [np.mean(solo[c]) / np.mean(vm[c]) for c in solo if c in vm]
    return {
        "cells": len(ratios),
        "median_speedup": float(np.median(ratios)) if ratios else None,
        "seeds_per_vmapped_program": sorted({int(r.get("num_seeds", 1)) for r in runs}),
        "grid_vmapping": _grid_text(runs),
    }


def _grid_text(runs: Sequence[Mapping[str, Any]]) -> str:
    """Whether the study's evaluation runs trained as grid members (`cnn_jax.config.grid`)."""
    members = sum(bool(r.get("grid_member")) for r in runs)
    if not members:
        return "off: every setting trained as its own program"
    return (
        f"on: {members} of {len(runs)} evaluation runs trained as members of grid units "
        "(settings differing only in rate, weight decay, L1 or L2 in one program; "
        "benchmarks/REPORT_grid.md)"
    )
