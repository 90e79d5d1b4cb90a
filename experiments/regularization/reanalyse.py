"""Re-judges the regularizer study's records with the claims engine, without retraining.

    python -m experiments.regularization.reanalyse                 # both records of record
    python -m experiments.regularization.reanalyse --record regularization_mnist

A record keeps no per-image predictions, but its results.json holds every comparison's delta,
se, dof and (draw, seed) rows, and every cell's test accuracy: the estimates are read back from
it (`evidence.stored_comparisons`), the claims declared exactly as for a fresh run
(`claims.declare`) and judged (`analysis.judged`: one Holm family, budget interactions). The
record's results.json (every stored field kept; the comparisons and their verdicts replaced by
the claims), summary.md and readme.md are rewritten (`cnn_jax.runs.reanalysis.rewrite_record`:
provenance hashes and a `reanalyses` entry), and every label is printed old -> new. The figures
stay: they plot the same estimates. Converged cells get their stopping epochs from the stored
runs (`stopping.fill_levels`), and each converged claim says how many of its rows hit the cap.
The record's absolute `experiment.margin` (what it ran with) is superseded by the relative
margin (`experiment.margin_relative`, `margin_floor`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from cnn_jax.outputs.writers import to_jsonable
from cnn_jax.runs import reanalysis
from cnn_jax.runs.reanalysis import read_record, rewrite_record

from . import analysis, report, stopping
from .evidence import from_record, stored_comparisons

RECORDS = ("regularization_mnist", "regularization_fashion_mnist")
REPLACED = ("comparisons", "budgets", "verdicts")  # the first analysis' labels


def reanalysed(results: Mapping[str, Any]) -> dict[str, Any]:
    """`results` with its analysis re-judged from the stored estimates (levels etc. kept)."""
    exp = {k: v for k, v in results["config"]["experiment"].items() if k != "margin"}
    old = results["analysis"]
    patience = stopping.patience_of(results["config"])
    levels = stopping.fill_levels(old["levels"], results.get("runs", ()), patience)
    estimate = from_record(stored_comparisons(old))
    new = analysis.judged(exp, results["tuning"], levels, estimate)
    kept = {k: v for k, v in old.items() if k not in REPLACED}
    return {**results, "analysis": {**kept, "levels": levels, **new}}


def old_labels(old: Mapping[str, Any]) -> tuple[dict[tuple, str], dict[str, str]]:
    """({(a cell, b cell): label}, {claim key: across-budgets label}) of a stored analysis."""
    cells: dict[tuple, str] = {}
    across: dict[str, str] = {}
    for c in old.get("comparisons", ()):
        cells[(tuple(c["a"]), tuple(c["b"]))] = c["verdict"]
    for setting, row in (old.get("budgets") or {}).items():
        across[setting] = row.get("overall", "-")
    for c in old.get("claims", ()):
        for b, pair in c["cells"].items():
            cells[(tuple(pair["a"]), tuple(pair["b"]))] = c["budgets"][b]["label"]
        if len(c["budgets"]) > 1:
            across[c["a"]] = c["result"]
    return cells, across


def _why(old: str, v: Mapping[str, Any]) -> str:
    """What the new label rests on: the deciding Holm p, the margin when equivalence moved."""
    e = v["estimate"]
    parts = [f"{100 * e['delta']:+.2f} pt, Holm p {v['p_holm']:.2g} over {v['family_size']}"]
    if "equivalent" in (old, v["label"]):
        parts.append(f"margin {100 * v['margin']:.2g} pt ({v['margin_rule']}), was absolute")
    if e.get("pooled"):
        parts.append("seed variance pooled")
    if old == v["label"]:
        parts.insert(0, "same")
    return "; ".join(parts)


def _across_why(c: Mapping[str, Any]) -> str:
    """The budget label and the smallest Holm-adjusted interaction p behind it."""
    labels = ", ".join(f"{b} {v['label']}" for b, v in c["budgets"].items())
    ps = [i["p_holm"] for i in c["interactions"]]
    tested = f"; interaction Holm p {min(ps):.2g}" if ps else ""
    return f"{c['budget_label']}{tested} (labels: {labels})"


def label_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[list[str]]:
    """[claim, budget, old label, new label, why] for every (claim, budget), and per claim
    with several budgets its result across them (old: the label comparison of the first
    analysis; new: the one label, or the budget label when the budgets' labels differ)."""
    cells, across = old_labels(old)
    rows = []
    for c in new["claims"]:
        for b, v in c["budgets"].items():
            pair = c["cells"][b]
            was = cells.get((tuple(pair["a"]), tuple(pair["b"])), "-")
            rows.append([c["text"], b, was, v["label"], _why(was, v)])
        if len(c["budgets"]) > 1:
            was = across.get(c["a"], "-")
            rows.append([c["text"], "across", was, c["result"], _across_why(c)])
    return rows


def record_files(results: Mapping[str, Any]) -> dict[str, str]:
    """The record's rewritten text files (results.json as `atomic_write_json` writes it)."""
    text = json.dumps(results, indent=2, sort_keys=True, default=to_jsonable) + "\n"
    return {
        "results.json": text,
        "summary.md": report.summary_markdown(results) + "\n",
        "readme.md": report.readme_markdown(results) + "\n",
    }


def reanalyse(study: str, results_root: str | os.PathLike = "results") -> list[list[str]]:
    """Re-judges one record in place; returns its label changes."""
    results = read_record(study, results_root)
    if "levels" not in results.get("analysis", {}):
        raise ValueError(f"{study}: results.json has no analysis.levels; not a regularizer record")
    new = reanalysed(results)
    command = f"python -m experiments.regularization.reanalyse --record {study}"
    rewrite_record(study, record_files(new), command=command, results_root=results_root)
    return label_changes(results["analysis"], new["analysis"])


def main(argv: Sequence[str] | None = None) -> int:
    """Re-judges each --record (default: `RECORDS`) and prints its labels old -> new."""
    return reanalysis.main(
        reanalyse, RECORDS, argv, "python -m experiments.regularization.reanalyse"
    )


if __name__ == "__main__":
    sys.exit(main())
