r"""Re-judges the anatomy studies' records with the claims engine, without retraining.

    python -m experiments.anatomy.reanalyse                      # the three records of record
    python -m experiments.anatomy.reanalyse --record anatomy_activations_digits

The trained runs' per-image predictions are not kept with a record, so the evidence is what
results.json stored: each accuracy claim's per-budget delta, se, dof, seeds and images; the
activations' per-seed steps to each target and total steps (compared as restricted mean times,
Royston & Parmar 2013); the collapse checks and the layer geometry (exact claims). The claims
are declared by the same code as a fresh run (`activations.judge_study`,
`hyperparameters_claims.judge_study`), with the config the record was run with. Rewrites
results.json (every stored field kept; `claims` and `verdicts` replaced), claims.md and
readme.md through `cnn_jax.runs.reanalysis.rewrite_record`, and prints every label old -> new.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from cnn_jax.outputs.claims_report import claims_markdown
from cnn_jax.outputs.writers import to_jsonable
from cnn_jax.runs import reanalysis
from cnn_jax.runs.reanalysis import read_record, rewrite_record
from cnn_jax.runs.record import PROVENANCE, results_dir

from . import activations, claims, hyperparameters, report
from . import hyperparameters_claims as hclaims

RECORDS = (
    "anatomy_activations_digits",
    "anatomy_activations_fashion_mnist",
    "anatomy_hyperparameters_digits",
)


def record_config(study: str, results_root: str | os.PathLike) -> ml_collections.ConfigDict:
    """The config the record was run with (its provenance.json)."""
    path = results_dir(results_root) / study / PROVENANCE
    prov = json.loads(path.read_text(encoding="utf-8"))
    if "config" not in prov:
        raise ValueError(f"{path}: no config; the record cannot be re-declared")
    return ml_collections.ConfigDict(prov["config"])


def _activations(stored: Mapping[str, Any], exp, folder) -> tuple[list[dict], str, str]:
    judged = activations.judge_study(
        exp, stored["random_collapse_check"], stored["trained_collapse_checks"], stored["speed"],
        claims.stored_accuracy(stored["claims"]), reference_known=False,
    )  # fmt: skip
    claim_dicts = [r.as_dict() for r in judged]
    claims_md = claims_markdown(claim_dicts, list(report.budgets_in_order(exp.budgets)))
    speed_md = (folder / "speed.md").read_text(encoding="utf-8")
    speedups = stored.get("speedup_relu_vs_tanh", {})
    return claim_dicts, claims_md, activations.readme_text(stored, speed_md, speedups, claims_md)


def _hyperparameters(stored: Mapping[str, Any], exp, folder) -> tuple[list[dict], str, str]:
    size = int(stored["image_shape"][0])
    accuracy_of = claims.stored_accuracy(stored["claims"])
    judged = hclaims.judge_study(exp, stored["geometry"], size, accuracy_of)
    claim_dicts = [r.as_dict() for r in judged]
    claims_md = claims_markdown(claim_dicts, list(report.budgets_in_order(exp.budgets)))
    tables = {p: (folder / f"table_{p}.md").read_text(encoding="utf-8") for p in stored["parts"]}
    return claim_dicts, claims_md, hyperparameters.readme_text(tables, claims_md, stored)


def reanalyse(study: str, results_root: str | os.PathLike = "results") -> list[list[str]]:
    """Re-judges one record in place; returns its label changes (see `label_changes`)."""
    stored = read_record(study, results_root)
    exp = record_config(study, results_root).experiment
    folder = results_dir(results_root) / study
    if "speed" in stored:
        claim_dicts, claims_md, readme = _activations(stored, exp, folder)
    elif "geometry" in stored:
        claim_dicts, claims_md, readme = _hyperparameters(stored, exp, folder)
    else:
        raise ValueError(f"{folder}/results.json: neither speed nor geometry; not an anatomy study")
    results = {**stored, "claims": claim_dicts, "verdicts": claims.counts(claim_dicts)}
    text = json.dumps(results, indent=2, sort_keys=True, default=to_jsonable, allow_nan=False)
    files = {"results.json": text + "\n", "claims.md": claims_md, "readme.md": readme}
    command = f"python -m experiments.anatomy.reanalyse --record {study}"
    rewrite_record(study, files, command=command, results_root=results_root)
    return label_changes(stored["claims"], claim_dicts)


# ----------------------------------------------------------------------------- old -> new


def _old_of(old: Sequence[Mapping[str, Any]], new: Mapping[str, Any]) -> Mapping[str, Any]:
    """The stored claim a new one replaces: same (a, b), or for settled claims the same text."""
    pair = [c for c in old if (c.get("a"), c.get("b")) == (new["a"], new["b"])]
    text = [c for c in old if "a" not in c and c.get("claim") == new["text"]]
    return (pair or text or [{}])[0]


def _stored(old: Mapping[str, Any], budget: str) -> Mapping[str, Any]:
    """A stored comparison: the old flat form, or the engine's (under 'estimate')."""
    e = old.get("budgets", {}).get(budget, {})
    return e.get("estimate", e)


def _why(old: Mapping[str, Any], new: Mapping[str, Any], budget: str) -> str:
    """What changed the label: the claim type, the censoring, or the Holm family."""
    v = new["budgets"][budget]
    e = v["estimate"]
    if new["kind"] == "exact":
        return f"exact: deviation {e['deviation']:.1e}, tolerance {new['tolerance']:g}; no test"
    if claims.STEPS in new["quantity"]:
        was = _stored(old, budget).get("delta")
        tau = e["extra"]["restriction"]
        was = "-" if was is None else f"{was:+.1f}"
        return f"restricted mean, tau {tau:g} (was imputed): delta {was} -> {e['delta']:+.1f}"
    if new["kind"] != "superiority":
        rule = f"margin {100 * v['margin']:.2g} pt, {v['margin_rule']}"
        return f"{new['kind'].replace('_', '-')} ({rule}); delta {100 * e['delta']:+.1f} pt"
    flat = old.get("budgets", {}).get(budget, {})
    p_old = flat.get("p_adjusted", flat.get("p_holm"))
    p_old = "-" if p_old is None else f"{p_old:.2g}"
    return f"Holm over {v['family_size']} hypotheses: p {p_old} -> {v['p_holm']:.2g}"


def _why_overall(new: Mapping[str, Any]) -> str:
    ps = [i["p_holm"] for i in new["interactions"] if i.get("p_holm") is not None]
    if not new.get("budget_label"):
        return "one budget"
    p = f", interaction p {min(ps):.2g}" if ps else ""
    return f"{new['budget_label']}{p}"


def label_changes(
    old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> list[list[str]]:
    """[claim (a - b), budget, old, new, why] for each budget and 'overall' of every claim."""
    rows = []
    for c in new:
        o = _old_of(old, c)
        name = f"{c['text']} ({c['a']} - {c['b']})"
        for budget in c["budgets"]:
            e = o.get("budgets", {}).get(budget, {})
            was = e.get("verdict", e.get("label", o.get("result", "-")))
            now = c["budgets"][budget]["label"]
            rows.append([name, budget, was, now, _why(o, c, budget)])
        rows.append([name, "overall", o.get("result", "-"), c["result"], _why_overall(c)])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Re-judges each --record (default: `RECORDS`) and prints its labels old -> new."""
    return reanalysis.main(reanalyse, RECORDS, argv, "python -m experiments.anatomy.reanalyse")


if __name__ == "__main__":
    sys.exit(main())
