"""The evidence on each declared claim, fresh or from a record, and the engine's verdicts.

Fresh: `paired_estimate` on the per-(seed, image) scores of a and b (the differences are kept,
so the 1x / 3x budget interaction is tested on the same seeds and images). Record: the stored
comparison's delta, se and dof (`estimate_from_record`). Either way the reference error is b's
level on the quantity, and `claim_results` judges the whole study as one Holm family.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnn_jax.stats.budgets import across_budgets
from cnn_jax.stats.claims import Claim, Estimate
from cnn_jax.stats.evidence import estimate_from_record, paired_estimate
from cnn_jax.stats.judge import ALPHA, judge

from .analysis import pair_scores
from .claims import Declared, Key, reference_error

Evidence = list[tuple[Claim, dict[str, Estimate]]]


def fresh_evidence(declared: Declared, scores: Mapping[str, Mapping[str, np.ndarray]]) -> Evidence:
    """Estimates from the [seeds, images] scores of every (variant, metric) a claim names."""
    out: Evidence = []
    for claim, cells in declared:
        by_budget = {}
        for budget, (a, b) in cells.items():
            a_sn, b_sn = _scores(scores, a, b)
            ref = reference_error(float(np.mean(b_sn)), claim.better)
            by_budget[budget] = paired_estimate(a_sn, b_sn, reference_error=ref)
        out.append((claim, by_budget))
    return out


def measurable(declared: Declared, scores) -> tuple[Declared, list[str]]:
    """The claims' budgets with >= 2 images to compare, and one line per budget left out (a
    pair quantity on too few images both nets classify correctly, e.g. at smoke size)."""
    kept: Declared = []
    notes = []
    for claim, cells in declared:
        ok = {k: (a, b) for k, (a, b) in cells.items() if _scores(scores, a, b)[0].shape[1] >= 2}
        left = [k for k in cells if k not in ok]
        notes += [f"{claim.text} @{k}: fewer than 2 images to compare" for k in left]
        if ok:
            kept.append((claim, ok))
    return kept, notes


def _scores(scores: Mapping[str, Mapping[str, np.ndarray]], a: Key, b: Key):
    """The [seeds, images] scores of both arms (`analysis.pair_scores`)."""
    try:
        return pair_scores(scores, a, b)
    except KeyError as e:
        missing = f"scores: {e.args[0]!r} of {a} or {b} not measured; rerun the study"
        raise KeyError(missing) from None


def record_evidence(declared: Declared, results: Mapping[str, Any]) -> Evidence:
    """Estimates from a record (its first `comparisons` or its `claims` from an earlier
    re-analysis); b's level from its summary or depth curves."""
    stored = stored_estimates(results)
    out: Evidence = []
    for claim, cells in declared:
        by_budget = {}
        for budget, (a, b) in cells.items():
            found = stored_estimate(stored, claim, budget, a, b)
            if found is None:
                raise KeyError(f"comparisons: no stored {a} - {b}; the record predates the claim")
            ref = found.get("reference_error")  # a claim's own (pair quantities have no level)
            ref = reference_error(stored_level(results, b), claim.better) if ref is None else ref
            by_budget[budget] = estimate_from_record(found, reference_error=ref)
        out.append((claim, by_budget))
    return out


def stored_estimate(stored: Mapping, claim: Claim, budget: str, a: Key, b: Key):
    """The stored comparison or claim estimate of one (claim, budget); None if not stored."""
    return stored.get((a, b)) or stored.get((claim.a, claim.b, claim.quantity, budget))


def judgeable(declared: Declared, results: Mapping[str, Any]) -> tuple[Declared, Declared]:
    """(claims every budget of which the record stores, claims it predates)."""
    stored = stored_estimates(results)
    kept: Declared = []
    missing: Declared = []
    for claim, cells in declared:
        found = all(stored_estimate(stored, claim, k, a, b) for k, (a, b) in cells.items())
        (kept if found else missing).append((claim, cells))
    return kept, missing


def stored_estimates(results: Mapping[str, Any]) -> dict[tuple, Mapping[str, Any]]:
    """(a, b) arms -> stored comparison; (a, b, quantity, budget) -> a stored claim's estimate."""
    out: dict[tuple, Mapping[str, Any]] = {
        (tuple(r["a"]), tuple(r["b"])): r["comparison"] for r in results.get("comparisons", [])
    }
    for c in results.get("claims", []):
        for budget, v in c["budgets"].items():
            out[(c["a"], c["b"], c["quantity"], budget)] = v["estimate"]
    return out


def stored_level(results: Mapping[str, Any], key: Key) -> float:
    """The record's estimate of variant key[0] on metric key[1] ('accuracy@8': a depth curve)."""
    variant, metric = key
    if "@" not in metric:
        return float(results["summary"][variant][metric]["estimate"])
    name, at = metric.split("@")
    protocol = "depth" if variant in results.get("depth", {}).get("curves", {}) else "learned"
    curve = results[protocol]["curves"][variant]
    j = [float(d) for d in curve["distances"]].index(float(at))
    return float(curve[name][j]["estimate"])


def claim_results(evidence: Evidence, alpha: float = ALPHA) -> list[dict[str, Any]]:
    """Every claim judged (one Holm family), budgets compared: `ClaimResult.as_dict()` each."""
    if not evidence:
        return []
    return [r.as_dict() for r in across_budgets(judge(evidence, alpha), alpha)]


def budgets_of(claims: Sequence[Mapping[str, Any]]) -> list[str]:
    """The budgets the claims were measured at, in order of first appearance."""
    seen: dict[str, None] = {}
    for c in claims:
        seen.update(dict.fromkeys(c["budgets"]))
    return list(seen)
