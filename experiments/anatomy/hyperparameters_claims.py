"""The seed notes' kernel / stride / padding claims, as comparisons without the old confounds.

Formula claims (output size, how deep a VALID stack can go) are settled by the layer-size
formula, checked against the traced model: exact claims, no test. Trained claims are paired
per-image comparisons judged by the claims engine (`experiments.anatomy.claims`): stride at a
fixed classifier (and at a matched receptive field, by dilation), a stack of 3x3 convs against
one large kernel at the same receptive field and matched parameters / FLOPs, the best depth
(chosen on validation) that small kernels and padding allow, and border-touching digits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from cnn_jax.stats.budgets import ClaimResult
from cnn_jax.stats.claims import Claim

from . import claims, report
from .claims import Estimates
from .variants import MAX_DEPTH, depth_name, kernel_name, max_depth, strided_field


def _mean_validation(rows: Sequence[Mapping[str, Any]]) -> float:
    return float(np.mean([r["results"]["final"]["validation"]["accuracy"] for r in rows]))


def choose_on_validation(groups: Mapping[str, Sequence], names: Sequence[str]) -> str | None:
    """The variant with the highest mean validation accuracy (first on ties)."""
    present = [n for n in names if n in groups]
    return max(present, key=lambda n: _mean_validation(groups[n])) if present else None


def depth_choices(exp, groups: Mapping[str, Sequence], size: int) -> dict[str, str | None]:
    """{'best_k3_valid' | 'best_k<L>_valid' | 'best_k3_same': variant chosen on validation}."""
    d = exp.depth
    depths = list(d.depths) + list(d.get("same_only_depths", ()))
    large = int(d.large_kernel)
    pick = {
        "best_k3_valid": [depth_name(3, "VALID", n) for n in depths],
        f"best_k{large}_valid": [depth_name(large, "VALID", n) for n in d.large_depths],
        "best_k3_same": [depth_name(3, "SAME", n) for n in depths],
    }
    return {alias: choose_on_validation(groups, names) for alias, names in pick.items()}


def with_aliases(groups: Mapping[str, Sequence], choices: Mapping[str, str | None]) -> dict:
    """Groups plus each alias pointing at its chosen variant's rows."""
    out = dict(groups)
    out.update({alias: groups[name] for alias, name in choices.items() if name})
    return out


def declare(exp: ml_collections.ConfigDict, size: int) -> list[Claim]:
    """The trained comparisons of the study (one Holm family with every budget)."""
    out, parts = [], set(exp.parts)
    if "stride" in parts:
        s0, s1 = min(exp.stride.strides), max(exp.stride.strides)
        k, depth = exp.stride.kernel, exp.stride.depth
        f0, f1 = strided_field(k, s0, depth), strided_field(k, s1, depth)
        fields = f"receptive fields {f0} vs {f1} px (not matched)"
        text = "a larger stride extracts less (lower accuracy)"
        out += [
            claims.accuracy(text, f"stride{s0}_gap", f"stride{s1}_gap",
                            f"same GAP classifier; {fields}"),
            claims.accuracy(text, f"stride{s0}_flatten", f"stride{s1}_flatten_matched",
                            f"flatten heads, whole nets parameter-matched; {fields}"),
        ]  # fmt: skip
        if s0 == 1 and exp.stride.get("match_field", True):
            out.append(claims.stride_at_matched_field(s0, s1, f1))
    if "kernels" in parts:
        out += _kernel_claims(exp)
    if "depth" in parts:
        out += _depth_claims(exp, size)
    if "border" in parts:
        text = "padding keeps border information (digits touching the edge)"
        edge = "vs VALID, test digits touching the edge"
        out += [
            claims.accuracy(text, f"border_{p}", "border_valid", f"{p.upper()} {edge}",
                            split="test_edge")
            for p in ("same", "circular") if p.upper() in exp.border.paddings
        ]  # fmt: skip
    return out


def _kernel_claims(exp: ml_collections.ConfigDict) -> list[Claim]:
    text = "small kernels do better (a 3x3 stack vs one large kernel, same receptive field)"
    return [
        claims.accuracy(text, kernel_name(field, "stack"), kernel_name(field, key),
                        f"body receptive field {field}, matched {key}")
        for field in exp.kernels.fields
        for key in exp.kernels.get("match", ("params", "flops"))
    ]  # fmt: skip


def _depth_claims(exp: ml_collections.ConfigDict, size: int) -> list[Claim]:
    large = int(exp.depth.large_kernel)
    deepest = max(n for n in exp.depth.depths if n <= max_depth(3, 1, "VALID", size))
    return [
        claims.accuracy(
            "small kernels do better because more layers fit (VALID, depth chosen on "
            "validation)", "best_k3_valid", f"best_k{large}_valid",
            f"3x3 vs {large}x{large}, each at its best feasible depth",
        ),
        claims.accuracy(
            "padding allows deeper, better nets (depth chosen on validation)",
            "best_k3_same", "best_k3_valid", "3x3, SAME vs VALID, each at its best depth",
        ),
        claims.accuracy(
            "padding keeps accuracy at depth (same depth)", depth_name(3, "SAME", deepest),
            depth_name(3, "VALID", deepest), f"3x3, depth {deepest} (the deepest VALID that fits)",
        ),
    ]  # fmt: skip


def _formula(text: str, deviation: float, evidence: str, budget: str) -> tuple[Claim, Estimates]:
    """An exact formula claim: deviation 0 when the formula (and the traced model) say so."""
    claim = claims.identity(text, "layer-size formula", "claim", evidence, tolerance=0.0)
    method = "layer-size formula, equal to the traced model (checked for every variant)"
    return claim, {budget: claims.exact_estimate(deviation, method)}


def formula_evidence(
    exp: ml_collections.ConfigDict, geometries: Mapping[str, Mapping[str, Any]], size: int,
    budget: str,
) -> list[tuple[Claim, Estimates]]:  # fmt: skip
    """Output size with stride; how deep VALID stacks go per kernel; SAME keeps the size.

    Each is exact: its deviation is how far the formula's numbers fall from the claim (pixels or
    layers; 0 when it holds). `variants.geometry` refuses a variant whose formula sides differ
    from the traced model's, so the formula stands for the model. Budget-free: shown at `budget`.
    """
    out = []
    if "stride" in exp.parts:
        strides = sorted(int(s) for s in exp.stride.strides)
        sides = [geometries[f"stride{s}_gap"]["layer_sizes"][-1] for s in strides]
        short = max([b - a + 1 for a, b in zip(sides, sides[1:])] + [0])
        evidence = f"last-layer side at strides {strides}: {sides} px"
        out.append(_formula("a larger stride gives a smaller output", short, evidence, budget))
    kernels = (1, 3, 5, 7)
    depths = {k: max_depth(k, 1, "VALID", size) for k in kernels}
    short = max([depths[b] - depths[a] for a, b in zip(kernels[1:], kernels[2:])] + [0])
    text = ", ".join(f"k{k}: {'any' if d >= MAX_DEPTH else d}" for k, d in depths.items())
    evidence = f"most VALID stride-1 layers on {size}x{size}: {text}"
    out.append(_formula("small kernels shrink the maps less, so allow deeper nets", short,
                        evidence, budget))  # fmt: skip
    same = max_depth(3, 1, "SAME", size)
    out.append(_formula(
        "padding preserves the spatial size (so any depth fits)", MAX_DEPTH - same,
        f"SAME at stride 1 keeps {size}x{size} at every depth; VALID 3x3 fits {depths[3]} layers",
        budget,
    ))  # fmt: skip
    return out


def judge_study(
    exp: ml_collections.ConfigDict, geometries: Mapping[str, Mapping[str, Any]], size: int,
    accuracy_of: claims.AccuracySource,
) -> list[ClaimResult]:  # fmt: skip
    """Every claim of the study through the engine (fresh runs and re-analysed records alike)."""
    first = next(iter(report.budgets_in_order(exp.budgets)))
    evidence = formula_evidence(exp, geometries, size, first)
    evidence += claims.gather(declare(exp, size), accuracy_of, None, 0.0)
    return claims.judge_claims(evidence)
