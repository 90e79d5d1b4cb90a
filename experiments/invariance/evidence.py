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

from .claims import Declared, Key, reference_error

Evidence = list[tuple[Claim, dict[str, Estimate]]]


def fresh_evidence(declared: Declared, scores: Mapping[str, Mapping[str, np.ndarray]]) -> Evidence:
    """Estimates from the [seeds, images] scores of every (variant, metric) a claim names."""
    out: Evidence = []
    for claim, cells in declared:
        by_budget = {}
        for budget, (a, b) in cells.items():
            ref = reference_error(float(np.mean(_scores(scores, b))), claim.better)
            by_budget[budget] = paired_estimate(
                _scores(scores, a), _scores(scores, b), reference_error=ref
            )
        out.append((claim, by_budget))
    return out


def _scores(scores: Mapping[str, Mapping[str, np.ndarray]], key: Key) -> np.ndarray:
    try:
        return scores[key[0]][key[1]]
    except KeyError:
        raise KeyError(f"scores[{key[0]!r}][{key[1]!r}]: not measured; rerun the study") from None


def record_evidence(declared: Declared, results: Mapping[str, Any]) -> Evidence:
    """Estimates from a record (its first `comparisons` or its `claims` from an earlier
    re-analysis); b's level from its summary or depth curves."""
    stored = stored_estimates(results)
    out: Evidence = []
    for claim, cells in declared:
        by_budget = {}
        for budget, (a, b) in cells.items():
            found = stored.get((a, b)) or stored.get((claim.a, claim.b, claim.quantity, budget))
            if found is None:
                raise KeyError(f"comparisons: no stored {a} - {b}; the record predates the claim")
            ref = reference_error(stored_level(results, b), claim.better)
            by_budget[budget] = estimate_from_record(found, reference_error=ref)
        out.append((claim, by_budget))
    return out


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
    curve = results["depth"]["curves"][variant]
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
