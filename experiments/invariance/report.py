"""The study's analysis: per-variant intervals, the claims tested, curves, two dots, figures.

`analyse` turns the saved predictions of every (variant, seed) into one JSON-able results
dict; `markdown` (in `tables`) renders it. The claims (Zhang 2019, Azulay & Weiss 2019, the
seed's claim, Kayhan & van Gemert 2020) are declared in `claims` and judged by the claims
engine (`cnn_jax.stats.judge`): one Holm family per study, `results["claims"]`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnn_jax.measure import invariance, two_dots
from cnn_jax.outputs import plots
from cnn_jax.runs.load import load_run

from . import plots as invariance_plots
from .analysis import (
    distance_scores,
    halving_interval,
    intervals,
    red_green_scores,
    shift_scores,
)
from .claims import alpha_of, declare
from .evidence import claim_results, fresh_evidence
from .tables import markdown  # noqa: F401  (re-exported for the driver)
from .variants import describe

ZHANG_METRICS = ("accuracy_unshifted", "accuracy_shifted", "consistency", "p_top1_change")
LEARNED_LAYERS = ("block0/act", "block0/pool", "block1/pool", "block2/pool")


def _depth(exp, by_variant, scores) -> dict[str, Any]:
    """Curves against distance, halving distances, and per-distance scores for the claims."""
    curves, halving = {}, {}
    chance = 1.0 / float(exp.num_classes)
    for v in exp.depth_variants:
        d = distance_scores(by_variant[v])
        dist = d["distances"]
        for j, x in enumerate(dist):
            scores[v][f"accuracy@{x}"] = d["accuracy"][:, j]
            scores[v][f"consistency@{x}"] = d["consistency"][:, j]
        curves[v] = {
            "distances": dist.tolist(),
            "accuracy": [scores_iv(d["accuracy"][:, j]) for j in range(len(dist))],
            "consistency": [scores_iv(d["consistency"][:, j]) for j in range(len(dist))],
        }
        halving[v] = halving_interval(d["accuracy"], dist, chance).as_dict()
    return {"curves": curves, "halving_distance": halving, "chance": chance}


def scores_iv(scores_sn: np.ndarray) -> dict[str, Any]:
    return intervals({"x": scores_sn})["x"].as_dict()


def _two_dots(exp, by_variant) -> dict[str, Any]:
    """Raw-pixel pooling vs the first layers of each trained depth-3 net (seed 0)."""
    distances = [int(d) for d in exp.two_dots_distances]
    raw = two_dots.merge_table(distances, kinds=("max", "max_blur"), levels=3)
    learned = {}
    for v in exp.two_dots_variants:
        run = load_run(by_variant[v][0]["run_dir"])
        predict = invariance.make_predict_fn(run.model, run.dataset.mean, run.dataset.std)
        canvas, channels = run.dataset.image_shape[0], run.dataset.image_shape[2]
        learned[v] = two_dots.learned_merge_table(
            predict, run.variables, canvas, distances, LEARNED_LAYERS, channels
        )
    return {"raw": raw, "learned": learned}


def analyse(config, by_variant: Mapping[str, Sequence[dict]], workdir: Path) -> dict[str, Any]:
    """Everything the tables and figures show, from the saved predictions only."""
    exp = config.experiment
    scores = {v: shift_scores(rows) for v, rows in by_variant.items()}
    out: dict[str, Any] = {
        "study": exp.get("record_as") or "",
        "dataset": {"name": config.dataset.name, "options": dict(config.dataset.options or {})},
        "protocols": list(exp.protocols),
        "seeds": [int(s) for s in exp.seeds],
        "num_images": int(exp.num_images),
        "variants": {v: describe(v) for v in by_variant},
        "groups": {p: list(exp[f"{p}_variants"]) for p in exp.protocols},
    }
    if "kayhan" in exp.protocols:
        for v in exp.kayhan_variants:
            scores[v].update(red_green_scores(by_variant[v]))
    if "depth" in exp.protocols:
        out["depth"] = _depth(exp, by_variant, scores)
    keep = ZHANG_METRICS + ("mac", "similar", "dissimilar")
    out["summary"] = {
        v: {k: iv.as_dict() for k, iv in intervals({k: s[k] for k in keep if k in s}).items()}
        for v, s in scores.items()
    }
    evidence = fresh_evidence(declare(exp, set(by_variant)), scores)
    out["claims"] = claim_results(evidence, alpha_of(exp))
    if "depth" in exp.protocols and exp.get("two_dots_variants"):
        out["two_dots"] = _two_dots(exp, by_variant)
    _figures(exp, out, workdir)
    return out


def _figures(exp, out: Mapping[str, Any], workdir: Path) -> None:
    summary = out["summary"]
    groups = {"zhang": "zhang_variants", "azulay": "azulay_variants", "budget": "budget_variants"}
    for protocol, key in groups.items():
        if protocol in exp.protocols:
            vs = [v for v in exp[key] if v in summary]
            fig = invariance_plots.metric_panels(summary, vs, ZHANG_METRICS)
            plots.save(fig, workdir / f"{protocol}_metrics.png")
    if "depth" in exp.protocols:
        fig = invariance_plots.accuracy_vs_shift(out["depth"]["curves"], list(exp.depth_variants))
        plots.save(fig, workdir / "accuracy_vs_shift.png")
    if "kayhan" in exp.protocols:
        from .tables import KAYHAN_PAPER

        rg = {v: summary[v] for v in exp.kayhan_variants}
        plots.save(invariance_plots.red_green(rg, KAYHAN_PAPER), workdir / "red_green.png")
    if "two_dots" in out:
        fig = invariance_plots.two_dots(out["two_dots"]["raw"], out["two_dots"]["learned"])
        plots.save(fig, workdir / "two_dots.png")
