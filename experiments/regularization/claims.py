"""What the regularizer study claims, declared once for fresh runs and re-analysed records.

The study only states its claims and where each is measured; the labels come from the claims
engine (`cnn_jax.stats.judge`: one Holm family for the whole study; budget dependence tested as
an interaction by `cnn_jax.stats.budgets`). The claims, each "a is better than b" on test
accuracy (superiority, with an equivalence margin for the TOST side):

* each regularizer (and `all`) helps: the chosen variant minus the tuned baseline at every
  training-set size n, converged (early stopping); at the tuning size the fixed 1x and 3x budgets
  and the converged runs are the budgets of one claim, so "does it depend on the budget" is a
  test of the difference of effects, not a comparison of labels;
* early stopping helps: the baseline converged minus the baseline trained 3x without stopping
  (the same maximum budget; Prechelt 1998);
* the controls, each against its optimizer's tuned baseline, and the pairs (pooling vs strided
  convs at matched FLOPs, Springenberg et al. 2015; L2 vs decoupled decay under one optimizer,
  Loshchilov & Hutter 2019).

Margins scale with the baseline's error rate (`experiment.margin_relative` x b's test error, never
below `experiment.margin_floor`): a fixed 1-point margin would call a variant that doubled a 1%
error "equivalent".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cnn_jax.stats.budgets import across_budgets
from cnn_jax.stats.claims import Claim, Estimate, Margin
from cnn_jax.stats.judge import ALPHA, judge

from .runs import parse_size, size_label

Cell = tuple[str, str, str]  # (setting name, n, budget mode): one evaluation cell
EstimateFn = Callable[[Cell, Cell], Estimate]  # (a cell, b cell) -> a - b
MARGIN_RELATIVE, MARGIN_FLOOR = 0.2, 0.0025
MARGIN_CAP = 0.01  # 20% of a 14% error (Fashion) would be 2.8 pt: too loose to call equivalent
QUANTITY = "test accuracy"
BUDGETS = ("1x", "3x", "converged")


@dataclass(frozen=True)
class Declared:
    """A claim, its role in the study ('helps', 'early_stopping', 'control', 'pair'), the size n
    it is measured at, and per budget the (a, b) cells whose difference measures it."""

    claim: Claim
    role: str
    n: str
    cells: Mapping[str, tuple[Cell, Cell]]


def margin_of(exp: Mapping[str, Any]) -> Margin:
    """The equivalence margin rule of `experiment` (relative to b's error, floor and cap)."""
    if "margin" in exp:
        raise ValueError(
            "experiment.margin: an absolute margin is no longer read; set "
            "experiment.margin_relative (x the baseline's error) and experiment.margin_floor"
        )
    rel = exp.get("margin_relative", MARGIN_RELATIVE)
    floor = exp.get("margin_floor", MARGIN_FLOOR)
    if not _number(rel) or rel <= 0:
        raise ValueError(f"experiment.margin_relative: {rel!r}; allowed: a positive number")
    if not _number(floor) or floor < 0:
        raise ValueError(f"experiment.margin_floor: {floor!r}; allowed: a number >= 0")
    cap = exp.get("margin_cap", MARGIN_CAP)
    if not _number(cap) or cap < floor:
        raise ValueError(f"experiment.margin_cap: {cap!r}; allowed: a number >= margin_floor")
    return Margin(relative=float(rel), floor=float(floor), cap=float(cap))


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def chosen_name(chosen: Mapping[str, str], key: str) -> str:
    """The setting name of a tuning key; 'adamw.<reg>' falls back to the AdamW grid '<reg>'."""
    if key in chosen:
        return chosen[key]
    opt, _, name = key.partition(".")
    if opt == "adamw" and name in chosen:
        return chosen[name]
    raise ValueError(f"experiment: {key!r} was not tuned; allowed: {', '.join(chosen)}")


def _helps(
    v: str, chosen: Mapping[str, str], n: str, budgets: Sequence[str], margin: Margin,
    retuned: bool = False, cap: str = "3x the budget",
) -> Declared:  # fmt: skip
    """'<variant> helps at n': variant minus the tuned baseline at each of ``budgets``."""
    a, b = chosen[v], chosen["baseline"]
    what = (
        "tuning size: fixed 1x / 3x budgets and converged (early stopping under 3x)"
        if len(budgets) > 1
        else f"converged: early stopping on validation under {cap}"
    )
    if retuned:
        what += "; both re-tuned on validation at this n"
    claim = Claim(text=f"{v} helps at n={n}", a=a, b=b, quantity=QUANTITY, margin=margin, what=what)
    return Declared(claim, "helps", n, {m: ((a, n, m), (b, n, m)) for m in budgets})


def helps(
    exp: Mapping[str, Any],
    chosen: Mapping[str, str],
    margin: Margin,
    at: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Declared]:
    """Every regularizer (and `all`) against the tuned baseline, one claim per size n; `at`:
    {n: chosen names} where a size was re-tuned (its own baseline and variants)."""
    sizes = [size_label(parse_size(s)) for s in exp["sizes"]]
    tune_n = size_label(parse_size(exp["tune_size"]))
    floor = exp.get("converged_epochs")
    cap = "3x the budget" if floor is None else f"max(3x the budget, {floor} epochs)"
    variants = [v for v in exp["variants"] if v != "baseline"]
    out = []
    for n in sizes + ([] if tune_n in sizes else [tune_n]):
        budgets = [m for m in BUDGETS if n == tune_n or m == "converged"]
        budgets = [m for m in budgets if m != "converged" or n in sizes]
        here = {**chosen, **(at or {}).get(n, {})}
        again = n in (at or {})
        out += [_helps(v, here, n, budgets, margin, again, cap) for v in variants]
    return out


def early_stopping(chosen: Mapping[str, str], tune_n: str, margin: Margin) -> Declared:
    """The baseline converged (early stopping) against the same maximum budget (3x) without."""
    base = chosen["baseline"]
    claim = Claim(
        text="early stopping helps", a=f"{base} (early stopping)", b=f"{base} (3x, no stopping)",
        quantity=QUANTITY, margin=margin,
        what="the tuned baseline stopped on validation vs trained the same 3x maximum",
    )  # fmt: skip
    return Declared(claim, "early_stopping", tune_n,
                    {"converged": ((base, tune_n, "converged"), (base, tune_n, "3x"))})  # fmt: skip


CONTROL_WHAT = {
    "pooling": "max pooling in place of stride-2 convs (same parameters)",
    "strided_wide": "stride-2 convs widened to pooling's FLOPs (experiment.wide_factor)",
    "l1": "an L1 penalty",
    "l2": "an L2 penalty (coupled to the gradient)",
    "weight_decay": "decoupled weight decay",
}
OPTIMIZERS = {"adamw": "AdamW", "momentum": "SGD with momentum"}


def _what(key: str) -> str:
    opt, _, name = key.partition(".")
    return f"{CONTROL_WHAT.get(name, name)} under {OPTIMIZERS.get(opt, opt)}"


def controls(exp: Mapping[str, Any], chosen: Mapping[str, str], margin: Margin) -> list[Declared]:
    """Each control ('<optimizer>.<regularizer>') against its optimizer's tuned baseline."""
    n = size_label(parse_size(exp["tune_size"]))
    out = []
    for key in exp["controls"]:
        opt = key.split(".")[0]
        a, b = chosen_name(chosen, key), chosen["baseline" if opt == "adamw" else f"{opt}.baseline"]
        claim = Claim(text=f"{key} helps", a=a, b=b, quantity=QUANTITY, margin=margin,
                      what=f"control: {_what(key)} vs that optimizer's tuned baseline")  # fmt: skip
        out.append(Declared(claim, "control", n, {"converged": ((a, n, "converged"),
                                                                (b, n, "converged"))}))  # fmt: skip
    return out


def pairs(exp: Mapping[str, Any], chosen: Mapping[str, str], margin: Margin) -> list[Declared]:
    """Each control pair (a, b): a beats b, e.g. pooling vs strided at matched FLOPs."""
    n = size_label(parse_size(exp["tune_size"]))
    out = []
    for ka, kb in exp["control_pairs"]:
        a, b = chosen_name(chosen, ka), chosen_name(chosen, kb)
        what = f"pair: {_what(_qualified(ka))} vs {_what(_qualified(kb))}"
        claim = Claim(text=f"{ka} beats {kb}", a=a, b=b, quantity=QUANTITY, margin=margin,
                      what=what)  # fmt: skip
        out.append(Declared(claim, "pair", n, {"converged": ((a, n, "converged"),
                                                             (b, n, "converged"))}))  # fmt: skip
    return out


def _qualified(key: str) -> str:
    return key if "." in key else f"adamw.{key}"


def declare(
    exp: Mapping[str, Any],
    chosen: Mapping[str, str],
    at: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Declared]:
    """Every claim of the study, in table order (chosen: tuning key -> setting name; `at`:
    {n: re-tuned names} for a size tuned again)."""
    margin = margin_of(exp)
    tune_n = size_label(parse_size(exp["tune_size"]))
    out = helps(exp, chosen, margin, at)
    out.append(early_stopping(chosen, tune_n, margin))
    return out + controls(exp, chosen, margin) + pairs(exp, chosen, margin)


def reference_errors(levels: Sequence[Mapping[str, Any]]) -> dict[Cell, float]:
    """{cell: 1 - test accuracy}: the error rate a relative margin scales with."""
    return {
        (lv["setting"], lv["n"], lv["mode"]): 1.0 - float(lv["test_accuracy"]["estimate"])
        for lv in levels
    }


def judge_study(
    declared: Sequence[Declared], estimate: EstimateFn, alpha: float = ALPHA
) -> list[dict[str, Any]]:
    """Every claim judged (one Holm family), as `ClaimResult.as_dict()` plus role, n, cells."""
    evidence = [(d.claim, {m: estimate(a, b) for m, (a, b) in d.cells.items()}) for d in declared]
    results = across_budgets(judge(evidence, alpha), alpha)
    by_claim = {id(d.claim): d for d in declared}
    out = []
    for r in results:
        d = by_claim[id(r.claim)]
        cells = {m: {"a": list(a), "b": list(b)} for m, (a, b) in d.cells.items()}
        out.append({**r.as_dict(), "role": d.role, "n": d.n, "cells": cells})
    return out
