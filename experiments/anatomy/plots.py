"""Figures of the CNN-anatomy studies, drawn with `cnn_jax.outputs.plots` (distinct colours,
intervals).

Every accuracy point is the mean over seeds and test images with its seeds x images interval
(`report.accuracy_interval`), in percent as in the tables; one colour per series, never reused
in a figure; variant names on an axis are spelled out (`variants.describe`), and each title
names the dataset and budgets.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnn_jax.outputs import plots

from . import report
from .variants import depth_name, describe

_STYLES = ("-", "--", ":", "-.")


def _interval(groups: Mapping[str, Sequence], name: str, split: str = "test"):
    if name not in groups:
        return None
    return report.accuracy_interval(report.correct_sn(groups[name], split))


def _series(ax, xs, names_by_series, groups_by_budget, split="test", connect=True):
    """One errorbar series per (series, budget); x positions shared."""
    labels = [f"{s} ({b})".strip() for s in names_by_series for b in groups_by_budget]
    colors = plots.variant_colors(labels)
    for i, (series, names) in enumerate(names_by_series.items()):
        for j, (budget, groups) in enumerate(groups_by_budget.items()):
            label = f"{series} ({budget})".strip()
            ivs = [_interval(groups, n, split) for n in names]
            keep = [(x + 0.06 * j, iv) for x, iv in zip(xs, ivs) if iv is not None]
            if keep:
                plots.interval_errorbar(
                    ax, [k[0] for k in keep], [k[1] for k in keep], label=label,
                    color=colors[label], bounds=plots.ACCURACY_BOUNDS, scale=100,
                    linestyle=_STYLES[i % len(_STYLES)] if connect else "none",
                )  # fmt: skip
    ax.set_ylabel("test accuracy %" if split == "test" else f"{split} accuracy %")
    ax.grid(alpha=0.3)
    plots.legend(ax, fontsize=7)


def hyperparameters_figure(
    exp, by_part, geometries, groups_by_budget, size: int, path: Path, dataset: str = ""
):
    """Stride at fixed heads, kernels at the same RF, accuracy vs depth, border digits."""
    parts = list(by_part)
    fig, axes = plots.figure(1, len(parts), figsize=(4.6 * len(parts), 4.4), squeeze=False)
    for ax, part in zip(axes[0], parts):
        if part == "stride":
            strides = sorted(int(s) for s in exp.stride.strides)
            heads = {"flatten": "flatten", "gap": "GAP", "flatten_matched": "flatten, matched"}
            named = {
                label: [f"stride{s}_{h}" if f"stride{s}_{h}" in geometries else f"stride{s}_flatten"
                        for s in strides]
                for h, label in heads.items()
            }  # fmt: skip
            _series(ax, strides, named, groups_by_budget)
            ax.set(xlabel="stride (every layer)", xticks=strides, title="stride, per head")
        elif part == "kernels":
            names = list(by_part[part])
            _series(ax, list(range(len(names))), {"budget": names}, groups_by_budget, connect=False)
            ax.set_xticks(range(len(names)), [textwrap.fill(describe(n), 14) for n in names],
                          fontsize=6)  # fmt: skip
            ax.set(xlabel="body", title="same receptive field:\n3x3 stack vs one kernel")
        elif part == "depth":
            d = exp.depth
            depths = sorted(set(d.depths) | set(d.get("same_only_depths", ())))
            large = int(d.large_kernel)
            named = {
                "3x3 SAME": [depth_name(3, "SAME", n) for n in depths],
                "3x3 VALID": [depth_name(3, "VALID", n) for n in depths],
                f"{large}x{large} VALID": [
                    depth_name(large, "VALID", n) for n in depths if n in d.large_depths
                ],
            }
            _series(ax, depths, named, groups_by_budget)
            title = f"accuracy vs depth ({size}x{size};\nVALID stops when it runs out)"
            ax.set(xlabel="depth (conv layers)", xticks=depths, title=title)
        elif part == "border":
            splits = ("test", "test_edge", "test_center")
            named = {p: [f"border_{p.lower()}"] for p in exp.border.paddings}
            for k, split in enumerate(splits):
                _series(ax, [k], named, groups_by_budget, split, connect=False)
            ax.set_xticks(range(len(splits)), ["random\nposition", "touching\nedge", "centred"])
            ax.set(xlabel="test digits", ylabel="accuracy %", title="border digits, per padding")
    fig.suptitle(plots.title(dataset, "budgets " + ", ".join(groups_by_budget)), fontsize=9)
    plots.save(fig, path)
    return fig


def curves_figure(
    curves: Mapping[str, Sequence[Mapping[str, Any]]], target: float, path: Path, context: str = ""
):
    """Windowed training accuracy (%) vs step, one colour per variant, one line per seed."""
    fig, ax = plots.figure(1, 1, figsize=(6.4, 4.0))
    colors = plots.variant_colors(list(curves))
    for name, seeds in curves.items():
        for i, curve in enumerate(seeds):
            ax.plot(curve["step"], plots.PERCENT * np.asarray(curve["accuracy"]),
                    color=colors[name], label=name if i == 0 else None, alpha=0.8)  # fmt: skip
    ax.axhline(plots.PERCENT * target, color="grey", linestyle=":")
    what = f"chosen learning rate per activation; target {target:.0%}"
    ax.set(xlabel="step", ylabel="train accuracy % (logging window)")
    ax.set_title(plots.title(what, context), fontsize=9)
    ax.grid(alpha=0.3)
    plots.legend(ax, fontsize=7)
    plots.save(fig, path)
    return fig
