"""Typed claims and their verdicts: the one place where a study's labels are decided.

A study declares what it claims (`Claim`: variant a against b on one quantity, a claim type,
a margin rule) and measures each claim at each budget (`Estimate`: delta = a - b with its
standard error and dof). `judge` turns every claim into one-sided hypotheses, adjusts all of a
study's hypotheses together with Holm (1979), and labels each (claim, budget):

* superiority ("a is better than b"): held when H0 better*delta <= 0 is rejected; contradicted
  when H0 better*delta >= 0 is rejected (b is better); with a margin also 'equivalent' (TOST);
* non-inferiority ("a is no worse than b by more than m") and non-superiority ("a is no better
  than b by more than m"): held / contradicted against the margin (Wellek 2010, ch. 2);
* equivalence (|delta| < m, two one-sided tests, Schuirmann 1987): equivalent / contradicted;
* exact (an identity, e.g. a linear stack equals one conv): checked numerically against a
  tolerance ('exact' or 'contradicted'), no p-value and outside the Holm family.

Every label that can be wrong is a hypothesis of the family, so the chance that any label of
the study is false is at most alpha. Intervals: the per-comparison t-interval, and the
simultaneous lower/upper bounds compatible with Holm (Strassburger & Bretz 2008, Stat. Med.
27:4914): a bound sits at the null value exactly when Holm rejects it, so a verdict and its
simultaneous interval never disagree on the page.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

LABELS = ("held", "contradicted", "equivalent", "inconclusive", "exact")


class Kind(enum.StrEnum):
    """The claim types; each has its own hypotheses (`hypotheses`)."""

    SUPERIORITY = "superiority"
    NON_INFERIORITY = "non_inferiority"
    NON_SUPERIORITY = "non_superiority"
    EQUIVALENCE = "equivalence"
    EXACT = "exact"


@dataclass(frozen=True)
class Margin:
    """An equivalence / non-inferiority margin: absolute, or relative to the baseline's error.

    ``relative`` x the baseline's error rate (b's error, `Estimate.reference_error`), never below
    the absolute ``floor``: a margin that scales with the error cannot excuse doubling it, which
    a fixed 2-point margin did at a 2% error rate. ``cap``: never above this (a baseline near
    chance has a large error, and 20% of it would call anything 'equivalent'). ``value``: a
    fixed absolute margin.
    """

    value: float | None = None
    relative: float | None = None
    floor: float = 0.0
    cap: float | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.relative is None):
            raise ValueError("margin: give exactly one of value= (absolute) or relative=")
        for name in ("value", "relative"):
            x = getattr(self, name)
            if x is not None and not (math.isfinite(x) and x > 0):
                raise ValueError(f"margin.{name}: {x!r}; allowed: a positive number")
        if not (math.isfinite(self.floor) and self.floor >= 0):
            raise ValueError(f"margin.floor: {self.floor!r}; allowed: a number >= 0")
        if self.cap is not None and not (math.isfinite(self.cap) and self.cap >= self.floor):
            raise ValueError(f"margin.cap: {self.cap!r}; allowed: a number >= margin.floor")

    def resolve(self, reference_error: float | None) -> tuple[float, str]:
        """(margin, how it was set), e.g. (0.0046, '20% of b's error 2.3%')."""
        if self.value is not None:
            return float(self.value), "absolute"
        if reference_error is None:
            raise ValueError("margin.relative: the estimate has no reference_error (b's error)")
        scaled = self.relative * float(reference_error)
        of = f"{self.relative:.0%} of b's error {100 * reference_error:.1f}%"
        if self.cap is not None and scaled > self.cap:
            return float(self.cap), f"absolute cap (below {of})"
        if scaled >= self.floor:
            return scaled, of
        return float(self.floor), f"absolute floor (above {of})"


@dataclass(frozen=True)
class Claim:
    """What a study claims about a - b on one quantity.

    ``better``: the sign of a - b that means "a is better" (+1 for accuracy, -1 for steps or
    error). ``scale``/``unit``: how deltas print (100, ' pt' for proportions).
    ``tolerance``: the numerical tolerance of an exact claim.
    """

    text: str
    a: str
    b: str
    quantity: str
    kind: Kind = Kind.SUPERIORITY
    better: int = 1
    margin: Margin | None = None
    tolerance: float | None = None
    what: str = ""
    scale: float = 100.0
    unit: str = " pt"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Kind(self.kind))
        if self.better not in (-1, 1):
            raise ValueError(f"claim {self.text!r}: better={self.better!r}; allowed: +1 or -1")
        needs_margin = self.kind in (Kind.NON_INFERIORITY, Kind.NON_SUPERIORITY, Kind.EQUIVALENCE)
        if needs_margin and self.margin is None:
            raise ValueError(f"claim {self.text!r}: a {self.kind.value} claim needs margin=")
        if self.kind is Kind.EXACT and not (self.tolerance is not None and self.tolerance >= 0):
            raise ValueError(f"claim {self.text!r}: an exact claim needs tolerance= (>= 0)")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = self.kind.value
        return out


@dataclass(frozen=True)
class Estimate:
    """The evidence on one claim at one budget: delta = a - b, its se and dof.

    ``pooled``: the seed component was pooled away by the preliminary F test (its dof is then
    the images', not the seeds'); None when not known. ``deviation``: for an exact claim, the
    largest |difference| measured. ``components``: variance components for the power report.
    ``paired``: per-(seed, image) differences, kept to test budget interactions on the same
    seeds and images (not serialised).
    """

    delta: float
    se: float
    df: float
    n_seeds: int
    n_images: int
    method: str
    pooled: bool | None = None
    reference_error: float | None = None
    deviation: float | None = None
    components: Mapping[str, float] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    paired: np.ndarray | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "paired"}
        out["df"] = _finite_or_none(self.df)
        return out


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass(frozen=True)
class Hypothesis:
    """H1: side * (delta - null) > 0; rejecting it earns the claim ``label``."""

    label: str
    null: float
    side: int

    def p_value(self, e: Estimate) -> float:
        """One-sided t p-value.

        se = 0 (every paired difference equal): the smallest p a sign-flip randomization test
        over seeds and images can give, 2^-(S + N - 1) (2^-S over seeds alone), when delta is
        strictly on the alternative's side; a t-test has no scale there, and p = 0 would claim
        more than S seeds can show.
        """
        z = self.side * (e.delta - self.null)
        if e.se == 0:
            return 0.5 ** (e.n_seeds + max(e.n_images, 1) - 1) if z > 0 else 1.0
        return float(scipy_stats.t.sf(z / e.se, e.df))


def hypotheses(claim: Claim, margin: float | None) -> list[Hypothesis]:
    """The one-sided hypotheses whose rejection would earn each label of ``claim``."""
    s, k = claim.better, claim.kind
    tost = [Hypothesis("eq_low", -margin, 1), Hypothesis("eq_high", margin, -1)] if margin else []
    if k is Kind.SUPERIORITY:
        return [Hypothesis("held", 0.0, s), Hypothesis("contradicted", 0.0, -s)] + tost
    if k is Kind.NON_INFERIORITY:
        return [Hypothesis("held", -s * margin, s), Hypothesis("contradicted", -s * margin, -s)]
    if k is Kind.NON_SUPERIORITY:
        return [Hypothesis("held", s * margin, -s), Hypothesis("contradicted", s * margin, s)]
    if k is Kind.EQUIVALENCE:
        beyond = [Hypothesis("contradicted", -margin, -1), Hypothesis("contradicted", margin, 1)]
        return tost + beyond
    return []


def label_of(rejected: set[str], has_margin: bool) -> str:
    """held, then contradicted, then equivalent (both TOST sides rejected), else inconclusive."""
    if "held" in rejected:
        return "held"
    if "contradicted" in rejected:
        return "contradicted"
    if has_margin and {"eq_low", "eq_high"} <= rejected:
        return "equivalent"
    return "inconclusive"
