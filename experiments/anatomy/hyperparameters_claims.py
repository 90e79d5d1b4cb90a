"""The seed notes' kernel / stride / padding claims, as comparisons without the old confounds.

Formula claims (output size, how deep a VALID stack can go) are settled by the layer-size
formula, checked against the traced model. Trained claims are paired per-image comparisons
(`anatomy_report.judge`): stride at a fixed classifier, a stack of 3x3 convs against one
large kernel at the same receptive field and matched parameters / FLOPs, the best depth
(chosen on validation) that small kernels and padding allow, and border-touching digits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import report
from .report import ClaimSpec
from .variants import MAX_DEPTH, depth_name, kernel_name, max_depth


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


def claim_specs(exp, size: int) -> list[ClaimSpec]:
    """The trained comparisons of the study (one Holm family with every budget)."""
    specs = []
    parts = set(exp.parts)
    if "stride" in parts:
        s0, s1 = min(exp.stride.strides), max(exp.stride.strides)
        text = "a larger stride extracts less (lower accuracy)"
        specs += [
            ClaimSpec(text, f"stride{s0}_gap", f"stride{s1}_gap", +1, "same GAP classifier"),
            ClaimSpec(
                text, f"stride{s0}_flatten", f"stride{s1}_flatten_matched", +1,
                "flatten heads, whole nets parameter-matched",
            ),
        ]  # fmt: skip
    if "kernels" in parts:
        text = "small kernels do better (a 3x3 stack vs one large kernel, same receptive field)"
        for field in exp.kernels.fields:
            for key in exp.kernels.get("match", ("params", "flops")):
                specs.append(
                    ClaimSpec(
                        text, kernel_name(field, "stack"), kernel_name(field, key), +1,
                        f"body receptive field {field}, matched {key}",
                    )
                )  # fmt: skip
    if "depth" in parts:
        large = int(exp.depth.large_kernel)
        specs += [
            ClaimSpec(
                "small kernels do better because more layers fit (VALID, depth chosen on "
                "validation)", "best_k3_valid", f"best_k{large}_valid", +1,
                f"3x3 vs {large}x{large}, each at its best feasible depth",
            ),
            ClaimSpec(
                "padding allows deeper, better nets (depth chosen on validation)",
                "best_k3_same", "best_k3_valid", +1, "3x3, SAME vs VALID, each at its best depth",
            ),
        ]  # fmt: skip
        deepest = max(n for n in exp.depth.depths if n <= max_depth(3, 1, "VALID", size))
        specs.append(
            ClaimSpec(
                "padding keeps accuracy at depth (same depth)",
                depth_name(3, "SAME", deepest), depth_name(3, "VALID", deepest), +1,
                f"3x3, depth {deepest} (the deepest VALID that fits)",
            )
        )  # fmt: skip
    if "border" in parts:
        text = "padding keeps border information (digits touching the edge)"
        for padding in ("same", "circular"):
            if padding.upper() in exp.border.paddings:
                specs.append(
                    ClaimSpec(
                        text, f"border_{padding}", "border_valid", +1,
                        f"{padding.upper()} vs VALID, test digits touching the edge",
                        split="test_edge",
                    )
                )  # fmt: skip
    return specs


def formula_claims(exp, geometries: Mapping[str, Mapping[str, Any]], size: int) -> list[dict]:
    """Output size with stride; how deep VALID stacks go per kernel; SAME keeps the size."""
    out = []
    if "stride" in exp.parts:
        strides = sorted(int(s) for s in exp.stride.strides)
        sides = [geometries[f"stride{s}_gap"]["layer_sizes"][-1] for s in strides]
        shrinks = all(a > b for a, b in zip(sides, sides[1:]))
        out.append(
            report.fixed_claim(
                "a larger stride gives a smaller output",
                "held" if shrinks else "contradicted",
                f"last-layer side at strides {strides}: {sides} px (formula = traced model)",
            )
        )
    kernels = (1, 3, 5, 7)
    depths = {k: max_depth(k, 1, "VALID", size) for k in kernels}
    monotone = all(depths[a] >= depths[b] for a, b in zip(kernels[1:], kernels[2:]))
    text = ", ".join(f"k{k}: {'any' if d >= MAX_DEPTH else d}" for k, d in depths.items())
    out.append(
        report.fixed_claim(
            "small kernels shrink the maps less, so allow deeper nets",
            "held" if monotone else "contradicted",
            f"most VALID stride-1 layers on {size}x{size}: {text}",
        )
    )
    same = max_depth(3, 1, "SAME", size)
    out.append(
        report.fixed_claim(
            "padding preserves the spatial size (so any depth fits)",
            "held" if same >= MAX_DEPTH else "contradicted",
            f"SAME at stride 1 keeps {size}x{size} at every depth; VALID 3x3 fits "
            f"{depths[3]} layers",
        )
    )
    return out
