r"""Re-judges the invariance records of record with the claims engine, without retraining.

    python -m experiments.invariance.reanalyse [--record invariance_mnist ...]

The runs' per-image predictions are not kept in a record, but its results.json holds every
comparison's delta, se, dof, seeds and images and every variant's level: enough for the engine
(`estimate_from_record`; se = 0 means every per-image difference was equal). The claims are
declared by the same code as a fresh run (`claims.declare`, on the record's own config from
provenance.json); results.json keeps every stored field, its `comparisons` and
`budget_verdicts` give way to `claims`, readme.md is rendered again, and every label is
printed old -> new with the reason. A record already re-analysed is re-judged from the
estimates its claims stored (e.g. after the engine changed). A record that a study run judged
from its per-image predictions is refused: rerun the study, which reuses its finished runs and
scored shifts and re-judges it from the predictions.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from cnn_jax.outputs.writers import to_jsonable
from cnn_jax.runs import reanalysis
from cnn_jax.runs.reanalysis import read_record, rewrite_record
from cnn_jax.runs.record import PROVENANCE, results_dir

from .claims import alpha_of, declare
from .evidence import claim_results, judgeable, record_evidence
from .tables import markdown

RECORDS = ("invariance_mnist", "invariance_fashion_mnist")
COMMAND = "python -m experiments.invariance.reanalyse"
OLD_MARGIN = 0.02  # the fixed 2-point TOST margin the records were first judged with


def record_config(study: str, results_root: str | os.PathLike) -> ml_collections.ConfigDict:
    """The record's `config.experiment` as provenance.json stored it."""
    path = results_dir(results_root) / study / PROVENANCE
    try:
        return ml_collections.ConfigDict(json.loads(path.read_text())["config"]["experiment"])
    except (FileNotFoundError, KeyError):
        raise ValueError(f"{path}: no config.experiment to declare the claims from") from None


def reanalysed(results: Mapping[str, Any], exp: ml_collections.ConfigDict) -> dict[str, Any]:
    """The stored results with `claims` in place of `comparisons` and `budget_verdicts`.

    Only the claims whose estimates the record stores are judged; the ones it predates (e.g.
    the accuracy drop, both-correct consistency) are printed and need a rerun of the study.
    """
    kept, missing = judgeable(declare(exp, set(results["summary"])), results)
    for claim, _ in missing:
        print(f"not in this record (rerun the study to judge it): {claim.text}")
    out = {k: v for k, v in results.items() if k not in ("comparisons", "budget_verdicts")}
    out["claims"] = claim_results(record_evidence(kept, results), alpha_of(exp))
    return out


def reanalyse(study: str, results_root: str | os.PathLike = "results") -> list[list[str]]:
    """Rewrites one record (results.json, readme.md); the label changes, one row each."""
    old = read_record(study, results_root)
    refuse_a_fresh_record(study, old, results_root)
    new = reanalysed(old, record_config(study, results_root))
    text = json.dumps(new, indent=2, sort_keys=True, default=to_jsonable) + "\n"
    files = {"results.json": text, "readme.md": markdown(new)}
    rewrite_record(study, files, command=COMMAND, results_root=results_root)
    return changes(old, new["claims"])


def refuse_a_fresh_record(
    study: str, results: Mapping[str, Any], results_root: str | os.PathLike
) -> None:
    """A record a study run judged from its per-image predictions is not re-judged from the
    summaries it stores: the interactions across budgets (the same images at both budgets)
    would lose their pairing, and the tables their order. Rerunning the study re-judges it
    from the predictions, reusing every finished run and scored shift."""
    if "comparisons" in results:
        return  # a record of the first analysis: its stored estimates are what there is
    path = results_dir(results_root) / study / PROVENANCE
    try:
        reanalysed_before = bool(json.loads(path.read_text()).get("reanalyses"))
    except (FileNotFoundError, ValueError):
        reanalysed_before = False
    if not reanalysed_before:
        raise ValueError(
            f"{path.parent}: judged by the study from its per-image predictions; rerun the "
            "study to re-judge it (finished runs and scored shifts are reused)"
        )


def changes(old: Mapping[str, Any], claims: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """[claim, budget, old label, new label, why] per (claim, budget) and per budget result."""
    if "comparisons" not in old:  # an earlier re-analysis: its claims' labels
        return _claim_changes(old["claims"], claims)
    stored = {(r["a"][0], r["b"][0], r["a"][1]): r for r in old["comparisons"]}
    by_name = {b["claim"]: b for b in old.get("budget_verdicts", [])}
    family = len(old["comparisons"])
    rows = []
    for c in claims:
        first = None
        for budget, v in c["budgets"].items():
            r = _stored_row(stored, c, budget)
            first = first or r
            rows.append([_name(c), budget, r["verdict"], v["label"], why(r, v, family)])
        b = by_name.get(first["claim"]) if first else None
        if c["budget_label"] or b:
            was = b["budget_verdict"] if b else "-"
            rows.append([_name(c), "across", was, c["result"], _why_budget(c)])
    return rows


def _claim_changes(before: Sequence[Mapping], claims: Sequence[Mapping]) -> list[list[str]]:
    was = {(c["a"], c["b"], c["quantity"]): c for c in before}
    rows = []
    for c in claims:
        prior = was.get((c["a"], c["b"], c["quantity"]), {"budgets": {}, "result": "-"})
        for budget, v in c["budgets"].items():
            old = prior["budgets"].get(budget, {}).get("label", "-")
            rows.append([_name(c), budget, old, v["label"], "re-judged by the engine"])
        if c["budget_label"]:
            rows.append([_name(c), "across", prior["result"], c["result"], _why_budget(c)])
    return rows


def _stored_row(stored: Mapping, c: Mapping[str, Any], budget: str) -> Mapping[str, Any]:
    suffix = "" if budget == "1x" else f"_{budget}"
    if "." in c["a"]:  # Kayhan: variant.similar - variant.dissimilar
        v = c["a"].split(".")[0]
        return stored[(v, v, "similar")]
    return stored[(c["a"] + suffix, c["b"] + suffix, c["quantity"])]


def _name(c: Mapping[str, Any]) -> str:
    return f"{c['a']} - {c['b']}: {c['quantity']}"


def why(old: Mapping[str, Any], v: Mapping[str, Any], family: int) -> str:
    """Why one (claim, budget)'s label is what it is now, against the first analysis."""
    comp, new = old["comparison"], v["label"]
    if new == "exact":
        dev = v["estimate"]["deviation"]
        return f"identity by construction: max |a - b| {dev:g} checked, no test, no p"
    holm = (
        f"Holm p {comp['p_adjusted']:.2g} over {family} comparisons -> "
        f"{v['p_holm']:.2g} over {v['family_size']} hypotheses"
    )
    if "equivalent" in (old["verdict"], new):
        m = f"margin {100 * v['margin']:.2g} pt ({v['margin_rule']}), was {100 * OLD_MARGIN:g} pt"
        return m if old["verdict"] != new else f"unchanged; {m}"
    return holm if old["verdict"] != new else "unchanged"


def _why_budget(c: Mapping[str, Any]) -> str:
    ps = [i["p_holm"] for i in c["interactions"] if i.get("p_holm") is not None]
    test = f"interaction p (Holm) {min(ps):.2g}" if ps else "no interaction test"
    return f"{c['budget_label'] or 'one budget'}: {test} (the effects are compared, not the labels)"


def main(argv: Sequence[str] | None = None) -> int:
    """Re-judges each --record (default: `RECORDS`) and prints its labels old -> new."""
    return reanalysis.main(reanalyse, RECORDS, argv, "python -m experiments.invariance.reanalyse")


if __name__ == "__main__":
    sys.exit(main())
