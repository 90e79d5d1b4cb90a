"""What the memorization study claims (Zhang et al. 2017), declared for the claims engine.

* "random labels take longer to fit than true labels", per regularizer: superiority on the
  epochs to the fit threshold, a censored time (a run that never fits is censored at the cap),
  compared as the paired restricted mean time at the cap (Royston & Parmar 2013;
  `cnn_jax.stats.censored`); without regularizer also shuffled pixels against both (Zhang's
  Fig. 1a ordering: true labels, then shuffled pixels, then random labels).
* "<regularizer> does not prevent fitting random labels": non-inferiority of the eval-mode
  training accuracy on the random labels, the regularized run against the unregularized one on
  the same images, labels and seeds, margin `experiment.fit_margin` (absolute). Non-inferiority,
  not equivalence: the claim is one-sided (the regularizer does not lower the fit); not
  superiority: nobody claims it helps; and against the unregularized run, not a constant, so
  the comparison is paired per image and seed. Its row also says how many runs reached the
  threshold.

One budget, the epoch cap ('cap'); every label is the engine's (one Holm family for the study).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnn_jax.outputs import predictions
from cnn_jax.stats.budgets import ClaimResult, across_budgets
from cnn_jax.stats.censored import compare_times
from cnn_jax.stats.claims import Claim, Estimate, Kind, Margin
from cnn_jax.stats.evidence import censored_estimate, paired_estimate
from cnn_jax.stats.judge import ALPHA, judge

from .conditions import NONE, name

BUDGET = "cap"
TIME, FIT = "epochs to ", "training accuracy on the random labels"
PerCondition = Mapping[str, Mapping[str, list]]


def time_claim(text: str, a: str, b: str, threshold: float) -> Claim:
    """a takes more epochs than b to reach `threshold` training accuracy (better = +1)."""
    return Claim(text, a, b, f"{TIME}{threshold:.0%} training accuracy", better=1,
                 scale=1.0, unit=" epochs")  # fmt: skip


def fit_claim(regularizer: str, margin: float) -> Claim:
    """The regularized random-label run fits its labels no worse than the plain one by more
    than `margin` (eval-mode training accuracy)."""
    return Claim(
        f"{regularizer} does not prevent fitting random labels",
        name("random_labels", regularizer), name("random_labels", NONE), FIT,
        kind=Kind.NON_INFERIORITY, margin=Margin(value=float(margin)),
        what="eval-mode accuracy on the training split's random labels, per image and seed",
    )  # fmt: skip


def declare(exp: Mapping[str, Any]) -> list[Claim]:
    """Every claim whose conditions the experiment trains (see the module docstring)."""
    data, regs, thr = set(exp["data"]), list(exp["regularizers"]), float(exp["fit_threshold"])
    out = []
    if {"true_labels", "random_labels"} <= data:
        out += [time_claim(f"random labels take longer to fit than true labels ({r})",
                           name("random_labels", r), name("true_labels", r), thr)
                for r in regs]  # fmt: skip
    for slow, fast in (("shuffled_pixels", "true_labels"), ("random_labels", "shuffled_pixels")):
        if {slow, fast} <= data:
            text = f"{_words(slow)} take longer to fit than {_words(fast)}"
            out.append(time_claim(text, name(slow, NONE), name(fast, NONE), thr))
    if "random_labels" in data:
        out += [fit_claim(r, exp["fit_margin"]) for r in regs if r != NONE]
    return out


def _words(data: str) -> str:
    return data.replace("_", " ")


def time_estimate(a: Mapping[str, list], b: Mapping[str, list]) -> Estimate:
    """Paired restricted mean epochs to fit, a - b, at the shorter cap (censored at it)."""
    tau = float(min(a["horizon_epochs"] + b["horizon_epochs"]))
    c = compare_times(
        a["epochs"], b["epochs"], horizons_a=a["horizon_epochs"],
        horizons_b=b["horizon_epochs"], restriction=tau,
    )  # fmt: skip
    return censored_estimate(c)


def fit_estimate(a: Mapping[str, list], b: Mapping[str, list]) -> Estimate:
    """a - b in training accuracy per (seed, training image), on the same random labels."""
    a_sn = predictions.correct_matrix(a["run_dir"], "train")
    b_sn = predictions.correct_matrix(b["run_dir"], "train")
    return paired_estimate(a_sn, b_sn)


def _reached(c: Mapping[str, list]) -> str:
    return f"{sum(e is not None for e in c['epochs'])}/{len(c['epochs'])}"


def with_counts(claim: Claim, per: PerCondition, threshold: float) -> Claim:
    """The claim with how many runs of a and of b reached the threshold in its 'what'."""
    a, b = per[claim.a], per[claim.b]
    counts = f"reached {threshold:.0%} by the cap: a {_reached(a)}, b {_reached(b)}"
    if claim.quantity.startswith(TIME):
        tau = min(a["horizon_epochs"] + b["horizon_epochs"])
        counts = f"restricted mean epochs, tau = {tau:g} (the cap); {counts}"
    what = "; ".join(x for x in (claim.what, counts) if x)
    return dataclasses.replace(claim, what=what)


def judge_study(
    exp: Mapping[str, Any], per: PerCondition, alpha: float = ALPHA
) -> list[ClaimResult]:
    """Every declared claim with its evidence, judged by the engine (one Holm family)."""
    thr, evidence = float(exp["fit_threshold"]), []
    for claim in declare(exp):
        if claim.a not in per or claim.b not in per:
            continue
        measure = time_estimate if claim.quantity.startswith(TIME) else fit_estimate
        e = measure(per[claim.a], per[claim.b])
        evidence.append((with_counts(claim, per, thr), {BUDGET: e}))
    return across_budgets(judge(evidence, alpha), alpha)


def add_horizons(per: Mapping[str, dict[str, list]], steps_per_epoch: int) -> None:
    """Each condition's caps in epochs ('horizon_epochs'), from its runs' total steps."""
    for c in per.values():
        c["horizon_epochs"] = [float(h) / steps_per_epoch for h in c["horizon"]]


def counts(results: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many claims got each result."""
    return {r: sum(c["result"] == r for c in results) for r in {c["result"] for c in results}}


def fit_fraction(c: Mapping[str, list]) -> float:
    """The share of a condition's runs that reached the threshold by the cap."""
    return float(np.mean([e is not None for e in c["epochs"]]))
