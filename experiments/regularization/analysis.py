"""Paired per-image comparisons of the regularizer study (cnn_jax.stats), Holm over the study.

Every comparison is variant minus its tuned baseline on the same (subset draw, seed) rows and
the same test images: `stats.paired_difference` on [rows, images] 0/1 correctness from
`cnn_jax.outputs.predictions` (rows = draw x seed, so subset draws and training seeds are both
resampled levels of the "seed" factor). Levels are `stats.hierarchical_bootstrap` intervals.
All comparisons of one study form one Holm family (`stats.adjust`); verdicts on the claim
"the regularizer helps" (+1) with an equivalence margin `experiment.margin` (TOST).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnn_jax import stats
from cnn_jax.outputs import predictions

from .runs import index_rows, parse_size, size_label
from .tuning import chosen_settings


def run_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """One evaluation run as a flat dict for results.json (no arrays)."""
    res = row["results"]
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

    def level(self, cell: tuple) -> stats.Interval:
        runs = self.runs(*cell)
        scores = predictions.correct_matrix([runs[k] for k in sorted(runs)])
        return stats.hierarchical_bootstrap(scores)


def _compare(cells: Cells, kind: str, a: tuple, b: tuple, margin: float) -> dict[str, Any]:
    a_sn, b_sn, keys = cells.matched(a, b)
    c = stats.paired_difference(a_sn, b_sn, name=f"{kind}: {a[0]} vs {b[0]} (n={a[1]}, {a[2]})",
                                margin=margin)  # fmt: skip
    return {"kind": kind, "a": list(a), "b": list(b), "rows": [list(k) for k in keys], "c": c}


def comparisons(config, tuning: Mapping[str, Any], cells: Cells) -> list[dict[str, Any]]:
    """Every comparison of the study (unadjusted), tagged with its kind."""
    exp, margin = config.experiment, float(config.experiment.margin)
    chosen = chosen_settings(tuning)
    base = chosen["baseline"].name
    tune_n = size_label(parse_size(exp.tune_size))
    out = []
    for n in [size_label(parse_size(s)) for s in exp.sizes]:
        for v in exp.variants:
            if v != "baseline":
                out.append(_compare(cells, "size", (chosen[v].name, n, "converged"),
                                    (base, n, "converged"), margin))  # fmt: skip
    for mode in ("1x", "3x"):
        for v in exp.variants:
            if v != "baseline":
                out.append(_compare(cells, "budget", (chosen[v].name, tune_n, mode),
                                    (base, tune_n, mode), margin))  # fmt: skip
    out.append(_compare(cells, "early_stopping", (base, tune_n, "converged"),
                        (base, tune_n, "3x"), margin))  # fmt: skip
    for control in exp.controls:
        opt, name = control.split(".")
        mine = chosen[control if control in chosen else name]
        ref = chosen["baseline" if opt == "adamw" else f"{opt}.baseline"]
        out.append(_compare(cells, "control", (mine.name, tune_n, "converged"),
                            (ref.name, tune_n, "converged"), margin))  # fmt: skip
    for a, b in exp.control_pairs:
        out.append(_compare(cells, "pair", (chosen[a].name, tune_n, "converged"),
                            (chosen[b].name, tune_n, "converged"), margin))  # fmt: skip
    return out


def verdicts(entries: list[dict[str, Any]], margin: float) -> list[dict[str, Any]]:
    """Holm over the whole family, then a verdict per comparison (claim: a beats b)."""
    adjusted = stats.adjust([e["c"] for e in entries])
    out = []
    for e, c in zip(entries, adjusted):
        v = stats.verdict(c, claimed_sign=+1, margin=margin)
        out.append({k: val for k, val in e.items() if k != "c"} | {"comparison": c.as_dict(),
                                                                    "verdict": v})  # fmt: skip
    return out


def budget_table(results: Sequence[Mapping[str, Any]], tune_n: str) -> dict[str, dict[str, str]]:
    """{variant setting: {'1x','3x','converged': verdict, 'overall': budget_verdict}}."""
    table: dict[str, dict[str, str]] = {}
    for r in results:
        if r["kind"] in ("budget", "size") and r["a"][1] == tune_n:
            table.setdefault(r["a"][0], {})[r["a"][2]] = r["verdict"]
    for row in table.values():
        row["overall"] = stats.budget_verdict({k: row[k] for k in ("1x", "3x", "converged")
                                               if k in row})  # fmt: skip
    return table


def levels(config, rows: Sequence[Mapping[str, Any]], cells: Cells) -> list[dict[str, Any]]:
    """Test accuracy (hierarchical interval), stopping epoch, compute of every evaluation cell."""
    out = []
    for (name, n, mode), runs in sorted(cells.index.items()):
        mine = [r for r in rows if r["setting"].name == name and size_label(r["n"]) == n
                and r["mode"] == mode]  # fmt: skip
        res = [r["results"] for r in mine]
        out.append({
            "setting": name, "n": n, "mode": mode, "rows": len(runs),
            "test_accuracy": cells.level((name, n, mode)).as_dict(),
            "best_epoch_mean": _mean([x.get("best_epoch") for x in res]),
            "epochs_max": res[0].get("epochs"),
            "num_params": res[0].get("num_params"),
            "forward_flops_per_example": res[0].get("forward_flops_per_example"),
            "train_time_sec_mean": _mean([x["train_time_sec"] / x["num_seeds"] for x in res]),
        })  # fmt: skip
    return out


def _mean(values: Sequence[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def zhang_check(results: Sequence[Mapping[str, Any]], sizes: Sequence[str]) -> dict[str, Any]:
    """Zhang et al. 2017: explicit regularizers are neither necessary nor sufficient. On our size
    curve: the best gain of any regularizer at each n (necessary: large gains would say yes),
    and how many sizes have every regularizer 'inconclusive'/'equivalent'/'contradicted'."""
    by_n: dict[str, list] = {}
    for r in results:
        if r["kind"] == "size":
            by_n.setdefault(r["a"][1], []).append(r)
    out = {}
    for n in sizes:
        entries = by_n.get(n, [])
        if not entries:
            continue
        best = max(entries, key=lambda r: r["comparison"]["delta"])
        out[n] = {
            "best": best["a"][0],
            "best_delta": best["comparison"]["delta"],
            "held": [r["a"][0] for r in entries if r["verdict"] == "held"],
            "not_held": [r["a"][0] for r in entries if r["verdict"] != "held"],
        }
    return out


def analyse(config, tuning: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict:
    """The study's numbers: levels, comparisons with Holm and verdicts, budget table, Zhang."""
    cells = Cells(rows)
    margin = float(config.experiment.margin)
    results = verdicts(comparisons(config, tuning, cells), margin)
    tune_n = size_label(parse_size(config.experiment.tune_size))
    sizes = [size_label(parse_size(s)) for s in config.experiment.sizes]
    return {
        "levels": levels(config, rows, cells),
        "comparisons": results,
        "budgets": budget_table(results, tune_n),
        "zhang": zhang_check(results, sizes),
        "margin": margin,
    }


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
