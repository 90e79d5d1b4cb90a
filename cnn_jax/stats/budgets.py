"""Budget dependence as an interaction: does a claim's effect change with the training budget?

Comparing labels across budgets is not a test ("held at 1x, inconclusive at 3x" can hide the
same effect measured twice). Here the difference of deltas between consecutive budgets is
tested: on the same seeds and images when both budgets kept their per-(seed, image) differences
(the crossed paired t of `cnn_jax.stats.crossed.paired_t` on d_3x - d_1x, so what the budgets
share cancels), else as independent estimates (Welch-Satterthwaite; conservative when the
budgets share seeds and test images, whose covariance is then positive). All interactions of a
study form their own Holm family. 'budget-dependent' needs a significant interaction or a
significant sign change (held at one budget, contradicted at another); otherwise the claim is
'consistent across budgets' and its effects are shown side by side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats as scipy_stats

from cnn_jax.stats.claims import Claim, Estimate, Kind
from cnn_jax.stats.crossed import paired_t
from cnn_jax.stats.judge import ALPHA, Verdict
from cnn_jax.stats.multiplicity import holm


@dataclass(frozen=True)
class Interaction:
    """delta(later budget) - delta(earlier budget) for one claim, two-sided test."""

    budgets: tuple[str, str]
    difference: float
    se: float
    df: float
    low: float
    high: float
    p: float
    method: str
    p_holm: float | None = None

    def as_dict(self) -> dict[str, Any]:
        fin = lambda x: None if x is None or not math.isfinite(x) else float(x)  # noqa: E731
        return {
            "budgets": list(self.budgets),
            "difference": self.difference,
            "se": self.se,
            "df": fin(self.df),
            "low": fin(self.low),
            "high": fin(self.high),
            "p": self.p,
            "p_holm": self.p_holm,
            "method": self.method,
        }


def interaction(budgets: tuple[str, str], first: Estimate, second: Estimate) -> Interaction:
    """Test of second.delta - first.delta (paired when both kept matching differences)."""
    a, b = first.paired, second.paired
    if a is not None and b is not None and a.shape == b.shape:
        r = {k: float(v[0]) for k, v in paired_t((b - a)[None], 0.95).items()}
        diff, se, df, p = r["delta"], r["se"], r["df"], r["p"]
        method = "paired over the same seeds and images (crossed t)"
    else:
        diff = second.delta - first.delta
        se = math.sqrt(first.se**2 + second.se**2)
        denom = sum(x.se**4 / x.df for x in (first, second) if x.se > 0 and math.isfinite(x.df))
        df = se**4 / denom if denom > 0 else math.inf
        method = "independent budgets (Welch-Satterthwaite; conservative if seeds/images shared)"
        p = float(2 * scipy_stats.t.sf(abs(diff) / se, df)) if se > 0 else float(diff == 0)
    half = float(scipy_stats.t.ppf(1 - ALPHA / 2, df)) * se if se > 0 else 0.0
    return Interaction(budgets, diff, se, df, diff - half, diff + half, min(1.0, p), method)


@dataclass(frozen=True)
class ClaimResult:
    """A claim across its budgets: the per-budget verdicts, the interactions, one result."""

    claim: Claim
    verdicts: tuple[Verdict, ...]
    interactions: tuple[Interaction, ...]
    budget_label: str | None  # 'budget-dependent' | 'consistent across budgets' | None
    result: str

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.claim.as_dict(),
            "budgets": {v.budget: v.as_dict() for v in self.verdicts},
            "interactions": [i.as_dict() for i in self.interactions],
            "budget_label": self.budget_label,
            "result": self.result,
        }


def _budget_label(labels: Sequence[str], tests: Sequence[Interaction], alpha: float) -> str:
    if {"held", "contradicted"} <= set(labels):
        return "budget-dependent"  # a significant sign change
    if any(t.p_holm is not None and t.p_holm < alpha for t in tests):
        return "budget-dependent"
    return "consistent across budgets"


def across_budgets(verdicts: Sequence[Verdict], alpha: float = ALPHA) -> list[ClaimResult]:
    """Group a study's verdicts by claim, test budget interactions (one Holm family)."""
    groups: dict[int, list[Verdict]] = {}
    claims: dict[int, Claim] = {}
    for v in verdicts:
        groups.setdefault(id(v.claim), []).append(v)
        claims[id(v.claim)] = v.claim
    pending = {}
    for key, vs in groups.items():
        if claims[key].kind is not Kind.EXACT:
            pending[key] = [
                interaction((x.budget, y.budget), x.estimate, y.estimate)
                for x, y in zip(vs, vs[1:])
            ]
    flat = [t for ts in pending.values() for t in ts]
    adjusted = iter(holm([t.p for t in flat])) if flat else iter(())
    done = {k: [_with_holm(t, next(adjusted)) for t in ts] for k, ts in pending.items()}
    out = []
    for key, vs in groups.items():
        tests, labels = done.get(key, []), [v.label for v in vs]
        budget = _budget_label(labels, tests, alpha) if len(vs) > 1 else None
        same = len(set(labels)) == 1
        result = labels[0] if same else budget
        out.append(ClaimResult(claims[key], tuple(vs), tuple(tests), budget, result))
    return out


def _with_holm(t: Interaction, p: float) -> Interaction:
    return Interaction(t.budgets, t.difference, t.se, t.df, t.low, t.high, t.p, t.method, float(p))


def counts(results: Sequence[ClaimResult]) -> dict[str, int]:
    """How many claims got each result."""
    out: dict[str, int] = {}
    for r in results:
        out[r.result] = out.get(r.result, 0) + 1
    return out
