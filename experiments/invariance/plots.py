"""Figures of the translation-invariance study, drawn from the analysis results (JSON-able).

Every interval comes from `cnn_jax.stats` (bounded to [0, 1] for accuracies and
consistencies), every variant has its own colour (`plots.variant_colors`), and legends list
only the series drawn (`plots.legend`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnn_jax.outputs import plots

BOUNDS = plots.ACCURACY_BOUNDS
SIGNED = ("drop",)  # differences of two accuracies: within [-1, 1]


def metric_panels(summary: Mapping[str, Mapping[str, Any]], variants: Sequence[str], metrics):
    """One panel per metric: each variant's estimate with its interval (a point per variant)."""
    fig, axes = plots.figure(1, len(metrics), figsize=(4.2 * len(metrics), 4.0), squeeze=False)
    colors = plots.variant_colors(variants)
    for ax, metric in zip(axes[0], metrics):
        bounds = (-1.0, 1.0) if metric in SIGNED else BOUNDS
        for i, v in enumerate(variants):
            plots.interval_errorbar(
                ax, [i], [summary[v][metric]], label=v, color=colors[v], bounds=bounds
            )
        ax.set_xticks(range(len(variants)), variants, rotation=60, fontsize=8)
        ax.set_title(metric.replace("_", " "))
        ax.grid(axis="y", alpha=0.3)
        plots.fit_ylim(ax, bounds=bounds)
    axes[0][0].set_ylabel("mean over seeds and images, 95% interval")
    return fig


def accuracy_vs_shift(curves: Mapping[str, Mapping[str, Any]], variants: Sequence[str]):
    """Accuracy and consistency with the unshifted prediction against shift distance."""
    fig, axes = plots.figure(1, 2, figsize=(12, 4.4))
    colors = plots.variant_colors(variants)
    for v in variants:
        c = curves[v]
        for ax, key in zip(axes, ("accuracy", "consistency")):
            plots.interval_band(
                ax, c["distances"], c[key], label=v, color=colors[v], bounds=BOUNDS, marker="o",
                ms=3,
            )  # fmt: skip
    axes[0].set_ylabel("test accuracy at horizontal shift +-d")
    axes[1].set_ylabel("P(top-1 equals the unshifted top-1)")
    for ax in axes:
        ax.set_xlabel("shift distance d (pixels)")
        ax.grid(alpha=0.3)
        plots.fit_ylim(ax, bounds=BOUNDS)
    plots.legend(axes[1], fontsize=7, ncol=2)
    return fig


def red_green(summary: Mapping[str, Mapping[str, Any]], paper: Mapping[str, tuple]):
    """Similar vs dissimilar test accuracy per padding, ours (intervals) beside the paper's."""
    variants = list(summary)
    fig, ax = plots.figure(figsize=(7.5, 4.2))
    colors = plots.variant_colors(["similar", "dissimilar"])
    x = np.arange(len(variants))
    for k, (split, off) in enumerate((("similar", -0.12), ("dissimilar", 0.12))):
        ivs = [summary[v][split] for v in variants]
        plots.interval_errorbar(
            ax, x + off, ivs, label=f"ours: {split}", color=colors[split], bounds=BOUNDS
        )
        ref = [paper[v][k] / 100 if v in paper else np.nan for v in variants]
        ax.plot(x + off, ref, "x", color=colors[split], ms=9, label=f"paper: {split}")
    ax.set_xticks(x, variants, rotation=20)
    ax.set_ylabel("test accuracy")
    ax.set_title("Red-green absolute position (Kayhan & van Gemert 2020)")
    ax.grid(axis="y", alpha=0.3)
    plots.fit_ylim(ax, bounds=BOUNDS)
    plots.legend(ax, fontsize=8)
    return fig


def two_dots(raw: Sequence[Mapping[str, Any]], learned: Mapping[str, Sequence[Mapping]]):
    """Poolings until two dots merge against their distance: raw pixels vs trained layers."""
    series = {f"raw {k}": [r for r in raw if r["kind"] == k] for k in dict.fromkeys(
        r["kind"] for r in raw)}  # fmt: skip
    series.update({f"learned {v}": rows for v, rows in learned.items()})
    fig, ax = plots.figure(figsize=(7, 4.2))
    colors = plots.variant_colors(list(series))
    for name, rows in series.items():
        rows = [r for r in rows if r["mean"] is not None]
        if not rows:
            continue
        d = [r["distance"] for r in rows]
        ax.plot(d, [r["mean"] for r in rows], marker="o", color=colors[name], label=name)
        ax.fill_between(
            d, [r["min"] for r in rows], [r["max"] for r in rows], color=colors[name], alpha=0.12
        )
    ax.set_xlabel("distance between the dots (pixels)")
    ax.set_ylabel("poolings until merged (mean; band: min-max over phase)")
    ax.grid(alpha=0.3)
    plots.legend(ax, fontsize=8)
    return fig
