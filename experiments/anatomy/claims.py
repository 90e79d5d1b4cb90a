"""The anatomy studies' claims as declarations for `cnn_jax.stats`, and their evidence.

A study states its claims (`accuracy`, `time_to_target`, `identity`) and measures each at each
budget (an `Estimate`); `judge_claims` hands both to the claims engine (`cnn_jax.stats.judge`,
one Holm family per study; `cnn_jax.stats.budgets`, budget dependence as an interaction), which
decides every label. Nothing here chooses a label.

Time to a target training error (Krizhevsky et al. 2012, Fig. 1) is compared as the restricted
mean time (Royston & Parmar 2013) at one restriction for every budget, the smallest budget's
horizon: a run that never reached the target is censored there, not counted as its budget, so
the delta no longer grows with the budget by construction.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cnn_jax.stats.budgets import ClaimResult, across_budgets
from cnn_jax.stats.censored import compare_times
from cnn_jax.stats.claims import Claim, Estimate, Kind, Margin
from cnn_jax.stats.evidence import censored_estimate, estimate_from_record, paired_estimate
from cnn_jax.stats.judge import ALPHA, judge

from . import report

ACCURACY = " accuracy"
STEPS = "steps to "
Estimates = dict[str, Estimate]
AccuracySource = Callable[[Claim], Estimates]


def accuracy(
    text: str, a: str, b: str, what: str = "", *, split: str = "test",
    kind: Kind = Kind.SUPERIORITY, margin: Margin | None = None,
) -> Claim:  # fmt: skip
    """a - b in accuracy on `split` (per-image correctness, paired over seeds and images)."""
    return Claim(text, a, b, f"{split}{ACCURACY}", kind=kind, margin=margin, what=what)


def stride_at_matched_field(s0: int, s1: int, field: int) -> Claim:
    """'A larger stride extracts less' with the receptive field held fixed: the stride-s0 GAP
    net dilated to stride s1's field (`variants.dilated_blocks`) minus the stride-s1 GAP net.
    Same kernels, parameters, classifier and receptive field (`field` px); the stride (how
    densely the units sample the image) is the one difference left."""
    what = (f"receptive field matched at {field} px (stride {s0} dilated vs stride {s1}); "
            "same kernels, parameters and GAP classifier")  # fmt: skip
    return accuracy("a larger stride extracts less at a matched receptive field",
                    f"stride{s0}_gap_dilated{s1}", f"stride{s1}_gap", what)  # fmt: skip


def split_of(claim: Claim) -> str:
    """The test split an accuracy claim is measured on ('test', 'test_edge', ...)."""
    if not claim.quantity.endswith(ACCURACY):
        raise ValueError(f"claim {claim.text!r}: quantity {claim.quantity!r} is not an accuracy")
    return claim.quantity.removesuffix(ACCURACY)


def time_to_target(text: str, a: str, b: str, target: float, what: str = "") -> Claim:
    """a reaches training accuracy `target` in fewer steps than b (better = -1)."""
    quantity = f"{STEPS}{1 - target:.0%} training error"
    return Claim(text, a, b, quantity, better=-1, what=what, scale=1.0, unit=" steps")


def is_time(claim: Claim) -> bool:
    """Whether the claim is about steps to a target (evidence: `time_estimates`)."""
    return claim.quantity.startswith(STEPS)


def identity(text: str, a: str, b: str, what: str, tolerance: float) -> Claim:
    """An exact claim: a equals b up to `tolerance` (checked numerically, never tested)."""
    return Claim(text, a, b, "max |a - b|", kind=Kind.EXACT, tolerance=tolerance, what=what,
                 scale=1.0, unit="")  # fmt: skip


def exact_estimate(deviation: float, method: str, n_seeds: int = 1, n_images: int = 1) -> Estimate:
    """The evidence of an exact claim: the largest deviation measured (no variance, no dof)."""
    d = float(deviation)
    return Estimate(d, 0.0, math.inf, n_seeds, n_images, method, deviation=d)


# ----------------------------------------------------------------------------- time to target


def horizon(speed: Mapping[str, Mapping[str, Mapping[str, Any]]], names: Sequence[str]) -> float:
    """The smallest budget's horizon: the fewest total steps of any run of `names`."""
    steps = [s for per in speed.values() for n in names if n in per for s in per[n]["total_steps"]]
    if not steps:
        raise ValueError(f"speed: no total_steps for {list(names)}; rerun the study")
    return float(min(steps))


def time_estimates(
    claim: Claim, speed: Mapping[str, Mapping[str, Mapping[str, Any]]], target: float
) -> Estimates:
    """{budget: restricted-mean Estimate} of steps to `target`, one restriction for all budgets.

    `speed[budget][variant]`: per-seed 'steps_<target>' (None: never reached) and 'total_steps'.
    """
    key, tau = f"steps_{target:g}", horizon(speed, (claim.a, claim.b))
    out = {}
    for budget, per in speed.items():
        if claim.a in per and claim.b in per:
            a, b = per[claim.a], per[claim.b]
            c = compare_times(
                a[key], b[key], horizons_a=a["total_steps"], horizons_b=b["total_steps"],
                restriction=tau, name=f"{claim.a} - {claim.b} @{budget}",
            )  # fmt: skip
            out[budget] = censored_estimate(c)
    return out


def _reached(budget: str, e: Estimate) -> str:
    (ra, rb), n = e.extra["reached"], e.extra["n_runs"]
    med = ["not reached" if m is None else f"{m:g}" for m in e.extra["medians"]]
    return f"{budget}: reached {ra}/{n} vs {rb}/{n}, KM median {med[0]} vs {med[1]}"


def with_reached(claim: Claim, estimates: Mapping[str, Estimate]) -> Claim:
    """A time claim whose `what` states the restriction and the runs that reached the target."""
    if not is_time(claim) or not estimates:
        return claim
    tau = next(iter(estimates.values())).extra["restriction"]
    parts = [f"restricted mean steps, tau = {tau:g} (the smallest budget's horizon)"]
    parts += [_reached(b, e) for b, e in estimates.items()]
    what = "; ".join(([claim.what] if claim.what else []) + parts)
    return dataclasses.replace(claim, what=what)


# ----------------------------------------------------------------------------- accuracy


def fresh_accuracy(groups_by_budget: Mapping[str, Mapping[str, Sequence]]) -> AccuracySource:
    """Accuracy claims measured on the runs' per-image predictions (crossed paired t)."""

    def source(claim: Claim) -> Estimates:
        out, split = {}, split_of(claim)
        for budget, groups in groups_by_budget.items():
            if claim.a in groups and claim.b in groups:
                a = report.correct_sn(groups[claim.a], split)
                b = report.correct_sn(groups[claim.b], split)
                out[budget] = paired_estimate(a, b, reference_error=float(1 - b.mean()))
        return out

    return source


def stored_accuracy(stored_claims: Sequence[Mapping[str, Any]]) -> AccuracySource:
    """Accuracy claims from a record's stored per-budget comparisons, matched on (a, b)."""
    by_pair = {(c["a"], c["b"]): c for c in stored_claims if "a" in c}

    def source(claim: Claim) -> Estimates:
        c = by_pair.get((claim.a, claim.b))
        if c is None:
            return {}
        # A record judged by the engine keeps each comparison under 'estimate'.
        return {b: estimate_from_record(e.get("estimate", e)) for b, e in c["budgets"].items()}

    return source


# ----------------------------------------------------------------------------- the engine


def judge_claims(
    evidence: Sequence[tuple[Claim, Mapping[str, Estimate]]], alpha: float = ALPHA
) -> list[ClaimResult]:
    """Every claim with evidence, judged by the engine: labels per budget and across budgets."""
    kept = [(with_reached(c, e), dict(e)) for c, e in evidence if e]
    return across_budgets(judge(kept, alpha), alpha)


def gather(
    claims: Sequence[Claim], accuracy_of: AccuracySource, speed: Mapping | None, target: float
) -> list[tuple[Claim, Estimates]]:
    """(claim, estimates) of each declared trained claim: times from `speed`, else accuracy."""
    out = []
    for c in claims:
        out.append((c, time_estimates(c, speed or {}, target) if is_time(c) else accuracy_of(c)))
    return out


def counts(results: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many claims got each result (from the ClaimResult dicts)."""
    labels, n = [r["result"] for r in results], {}
    for label in labels:
        n[label] = n.get(label, 0) + 1
    return n
