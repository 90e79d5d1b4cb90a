"""The claims engine: every (claim, budget) of a study judged in one Holm family.

`judge` takes what a study declared and measured, `[(Claim, {budget: Estimate})]`, and returns
one `Verdict` per (claim, budget): the label, the per-comparison interval, the simultaneous
interval compatible with Holm (Strassburger & Bretz 2008), each hypothesis' raw and adjusted p.
Exact claims are checked against their tolerance and stay outside the family.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from cnn_jax.stats.claims import Claim, Estimate, Hypothesis, Kind, hypotheses, label_of
from cnn_jax.stats.multiplicity import holm

ALPHA = 0.05


@dataclass(frozen=True)
class Verdict:
    """One claim at one budget: its label and the numbers it rests on."""

    claim: Claim
    budget: str
    estimate: Estimate
    label: str
    margin: float | None
    margin_rule: str | None
    low: float  # per-comparison (1 - alpha) t-interval
    high: float
    sim_low: float  # simultaneous, Holm-compatible (Strassburger & Bretz 2008)
    sim_high: float
    tests: tuple[dict[str, Any], ...]  # {label, null, side, p, p_holm, rejected}
    family_size: int
    alpha: float

    @property
    def p_holm(self) -> float | None:
        """The adjusted p behind the label: its deciding test; for 'inconclusive' the closest
        call of the directional tests (held or contradicted; an equivalence claim: the larger
        TOST p), so a cell never shows p 1 beside an interval that excludes 0."""
        if not self.tests:
            return None
        p = {}
        for t in self.tests:
            key = "equivalent" if t["label"].startswith("eq_") else t["label"]
            if key == "contradicted":
                p[key] = min(p.get(key, 1.0), t["p_holm"])
            else:  # held is one test; equivalent needs both TOST sides: the larger p
                p[key] = max(p.get(key, 0.0), t["p_holm"])
        if self.label in p:
            return p[self.label]
        directional = [p[k] for k in ("held", "contradicted") if k in p]
        return min(directional) if directional else p.get("equivalent")

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, flat: the schema `python -m cnn_jax.stats plan --record` reads."""
        fin = lambda x: None if x is None or not math.isfinite(x) else float(x)  # noqa: E731
        return {
            "claim": self.claim.text,
            "a": self.claim.a,
            "b": self.claim.b,
            "quantity": self.claim.quantity,
            "type": self.claim.kind.value,
            "better": self.claim.better,
            "what": self.claim.what,
            "budget": self.budget,
            "label": self.label,
            "margin": self.margin,
            "margin_rule": self.margin_rule,
            "tolerance": self.claim.tolerance,
            "estimate": self.estimate.as_dict(),
            "low": fin(self.low),
            "high": fin(self.high),
            "sim_low": fin(self.sim_low),
            "sim_high": fin(self.sim_high),
            "p_holm": self.p_holm,
            "tests": [dict(t, null=float(t["null"])) for t in self.tests],
            "family_size": self.family_size,
            "alpha": self.alpha,
            "scale": self.claim.scale,
            "unit": self.claim.unit,
        }


def _t(df: float, q: float) -> float:
    return float(scipy_stats.t.ppf(q, df)) if df > 0 else math.inf


def _exact(claim: Claim, budget: str, e: Estimate, alpha: float) -> Verdict:
    if e.deviation is None:
        raise ValueError(f"claim {claim.text!r} @{budget}: an exact claim needs deviation=")
    label = "exact" if e.deviation <= claim.tolerance else "contradicted"
    d = e.delta
    return Verdict(claim, budget, e, label, None, None, d, d, d, d, (), 0, alpha)


def compatible_bounds(
    tests: Sequence[tuple[Hypothesis, Estimate]], rejected: np.ndarray, alpha: float
) -> np.ndarray:
    """Per hypothesis the lower bound on side * delta compatible with Holm's decisions.

    Strassburger & Bretz (2008): with A the hypotheses Holm keeps, a rejected one's bound is its
    null value and a kept one's is side*delta - t_{1 - alpha/|A|} se; when Holm rejects all m,
    each bound is max(null, side*delta - t_{1 - alpha/m} se).
    """
    m, kept = len(tests), int((~rejected).sum())
    out = np.empty(m)
    for i, (h, e) in enumerate(tests):
        level = alpha / (kept if kept else m)
        free = h.side * e.delta - _t(e.df, 1 - level) * e.se if e.se > 0 else h.side * e.delta
        null = h.side * h.null
        out[i] = max(null, free) if not kept else (null if rejected[i] else free)
    return out


def judge(
    evidence: Sequence[tuple[Claim, Mapping[str, Estimate]]],
    alpha: float = ALPHA,
) -> list[Verdict]:
    """Every (claim, budget) of one study: one Holm family, a label each."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: {alpha!r}; allowed: strictly between 0 and 1")
    cells, tests, owner = [], [], []
    for claim, by_budget in evidence:
        for budget, e in by_budget.items():
            if claim.kind is Kind.EXACT:
                cells.append((claim, budget, e, None, None))
                continue
            margin, rule = claim.margin.resolve(e.reference_error) if claim.margin else (None, None)
            cells.append((claim, budget, e, margin, rule))
            for h in hypotheses(claim, margin):
                tests.append((h, e))
                owner.append(len(cells) - 1)
    raw = np.array([h.p_value(e) for h, e in tests])
    adj = holm(raw) if len(raw) else raw
    rejected = adj < alpha
    bounds = compatible_bounds(tests, rejected, alpha) if tests else np.empty(0)
    out = []
    for j, (claim, budget, e, margin, rule) in enumerate(cells):
        if claim.kind is Kind.EXACT:
            out.append(_exact(claim, budget, e, alpha))
            continue
        mine = [i for i, o in enumerate(owner) if o == j]
        out.append(_verdict(claim, budget, e, margin, rule, mine, tests, raw, adj, bounds, alpha))
    return out


def _verdict(claim, budget, e, margin, rule, mine, tests, raw, adj, bounds, alpha) -> Verdict:
    rows = tuple(
        {
            "label": tests[i][0].label,
            "null": tests[i][0].null,
            "side": tests[i][0].side,
            "p": float(raw[i]),
            "p_holm": float(adj[i]),
            "rejected": bool(adj[i] < alpha),
        }
        for i in mine
    )
    label = label_of({r["label"] for r in rows if r["rejected"]}, margin is not None)
    lows = [bounds[i] for i in mine if tests[i][0].side > 0]
    highs = [-bounds[i] for i in mine if tests[i][0].side < 0]
    half = _t(e.df, 1 - alpha / 2) * e.se if e.se > 0 else 0.0
    return Verdict(
        claim, budget, e, label, margin, rule, e.delta - half, e.delta + half,
        max(lows, default=-math.inf), min(highs, default=math.inf), rows, len(tests), alpha,
    )  # fmt: skip
