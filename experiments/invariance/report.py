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
    BOTH_CORRECT,
    distance_scores,
    halving_interval,
    intervals,
    pair_scores,
    red_green_scores,
    shift_scores,
)
from .claims import Declared, alpha_of, declare
from .evidence import claim_results, fresh_evidence, measurable
from .tables import markdown  # noqa: F401  (re-exported for the driver)
from .variants import KAYHAN_PADDING, describe, geometry, training_budget, variant_config

ZHANG_METRICS = ("accuracy_unshifted", "accuracy_shifted", "drop", "consistency", "p_top1_change")
LEARNED_LAYERS = ("block0/act", "block0/pool", "block1/pool", "block2/pool")


def _curves(exp, by_variant, scores, variants, name: str = "distance") -> dict[str, Any]:
    """Curves against distance (shift set `name`), halving distances, and per-distance scores
    for the claims (the seed's claim: 'distance'; learned vs built-in invariance: 'learned')."""
    curves, halving = {}, {}
    chance = 1.0 / float(exp.num_classes)
    for v in variants:
        d = distance_scores(by_variant[v], name)
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


def both_correct_summary(declared: Declared, scores) -> list[dict[str, Any]]:
    """Per (claim, budget) on a `BOTH_CORRECT` quantity: the images kept and a's and b's level
    on them (two-level bootstrap), for the table beside the claims."""
    out = []
    for claim, cells in declared:
        if claim.quantity not in BOTH_CORRECT:
            continue
        for budget, (a, b) in cells.items():
            a_sn, b_sn = pair_scores(scores, a, b)
            ivs = intervals({"a": a_sn, "b": b_sn})
            out.append({"a": a[0], "b": b[0], "quantity": claim.quantity, "budget": budget,
                        "n_images": int(a_sn.shape[1]), "a_level": ivs["a"].as_dict(),
                        "b_level": ivs["b"].as_dict()})  # fmt: skip
    return out


def _scored_images(scores) -> int:
    """Test images every shift set scored (the red-green nets' own test set aside)."""
    sizes = [s["consistency"].shape[1] for v, s in scores.items() if v not in KAYHAN_PADDING]
    return int(max(sizes or [s["consistency"].shape[1] for s in scores.values()]))


def _variant_info(config, variants) -> dict[str, dict[str, str]]:
    """Each variant's padding geometry and training budget, as its config builds it."""
    classes = int(config.experiment.num_classes)
    return {
        v: {"geometry": geometry(v), "budget": training_budget(variant_config(config, v, classes))}
        for v in variants
    }


def analyse(config, by_variant: Mapping[str, Sequence[dict]], workdir: Path) -> dict[str, Any]:
    """Everything the tables and figures show, from the saved predictions only."""
    exp = config.experiment
    scores = {v: shift_scores(rows) for v, rows in by_variant.items()}
    out: dict[str, Any] = {
        "study": exp.get("record_as") or "",
        "dataset": {"name": config.dataset.name, "options": dict(config.dataset.options or {})},
        "protocols": list(exp.protocols),
        "seeds": [int(s) for s in exp.seeds],
        "num_images": _scored_images(scores),
        "variants": {v: describe(v) for v in by_variant},
        "variant_info": _variant_info(config, by_variant),
        "groups": {p: list(exp[f"{p}_variants"]) for p in exp.protocols},
    }
    if "kayhan" in exp.protocols:
        for v in exp.kayhan_variants:
            scores[v].update(red_green_scores(by_variant[v]))
    if "depth" in exp.protocols:
        out["depth"] = _curves(exp, by_variant, scores, exp.depth_variants)
    if "learned" in exp.protocols:
        out["learned"] = _curves(exp, by_variant, scores, exp.learned_variants, "learned")
    keep = ZHANG_METRICS + ("mac", "similar", "dissimilar")
    out["summary"] = {
        v: {k: iv.as_dict() for k, iv in intervals({k: s[k] for k in keep if k in s}).items()}
        for v, s in scores.items()
    }
    declared, out["unjudged"] = measurable(declare(exp, set(by_variant)), scores)
    out["both_correct"] = both_correct_summary(declared, scores)
    out["claims"] = claim_results(fresh_evidence(declared, scores), alpha_of(exp))
    if "depth" in exp.protocols and exp.get("two_dots_variants"):
        out["two_dots"] = _two_dots(exp, by_variant)
    _figures(exp, out, workdir)
    return out


def _context(out: Mapping[str, Any], variants) -> str:
    """'<dataset>, <budget(s)>' of the variants a figure shows, for its title."""
    info = out.get("variant_info") or {}
    budgets = dict.fromkeys(info[v]["budget"] for v in variants if v in info)
    return ", ".join([out["dataset"]["name"], " / ".join(budgets)]).strip(", ")


def _figures(exp, out: Mapping[str, Any], workdir: Path) -> None:
    summary = out["summary"]
    groups = {"zhang": "zhang_variants", "azulay": "azulay_variants", "budget": "budget_variants"}
    for protocol, key in groups.items():
        if protocol in exp.protocols:
            vs = [v for v in exp[key] if v in summary]
            fig = invariance_plots.metric_panels(summary, vs, ZHANG_METRICS, _context(out, vs))
            plots.save(fig, workdir / f"{protocol}_metrics.png")
    shift_figures = (
        ("depth", "accuracy_vs_shift", invariance_plots.accuracy_vs_shift),
        ("learned", "learned_vs_shift", invariance_plots.learned_vs_shift),
    )
    for protocol, name, draw in shift_figures:
        if protocol in exp.protocols:
            vs = list(exp[f"{protocol}_variants"])
            fig = draw(out[protocol]["curves"], vs, _context(out, vs))
            plots.save(fig, workdir / f"{name}.png")
    if "kayhan" in exp.protocols:
        from .tables import KAYHAN_PAPER

        rg = {v: summary[v] for v in exp.kayhan_variants}
        fig = invariance_plots.red_green(rg, KAYHAN_PAPER, _context(out, list(rg)))
        plots.save(fig, workdir / "red_green.png")
    if "two_dots" in out:
        td = out["two_dots"]
        fig = invariance_plots.two_dots(td["raw"], td["learned"], _context(out, td["learned"]))
        plots.save(fig, workdir / "two_dots.png")
