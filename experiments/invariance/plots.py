"""Figures of the translation-invariance study, drawn from the analysis results (JSON-able).

Every interval comes from `cnn_jax.stats` (bounded to [0, 1] for accuracies and
consistencies, drawn in percent as the tables print them), every variant has its own colour
(`plots.variant_colors`), legends list only the series drawn (`plots.legend`) and spell each
variant out with the tables' description (`variants.describe`). `context` ("mnist, 3 epochs")
goes into every title.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np

from cnn_jax.outputs import plots

from .tables import COLUMNS
from .variants import describe, learned_net

BOUNDS = plots.ACCURACY_BOUNDS
SIGNED = ("drop",)  # differences of two accuracies: within [-1, 1]
PCT = plots.PERCENT
_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 7}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_STYLES = ("-", "--", "-.", ":")


def metric_panels(
    summary: Mapping[str, Mapping[str, Any]], variants: Sequence[str], metrics, context: str = ""
):
    """One panel per metric: each variant's estimate with its interval (a point per variant)."""
    fig, axes = plots.figure(1, len(metrics), figsize=(2.6 * len(metrics) + 3.6, 3.6),
                             squeeze=False)  # fmt: skip
    colors = plots.variant_colors(variants)
    labels = plots.spelled(variants, describe)
    for ax, metric in zip(axes[0], metrics):
        bounds = (-1.0, 1.0) if metric in SIGNED else BOUNDS
        for i, v in enumerate(variants):
            plots.interval_errorbar(ax, [i], [summary[v][metric]], label=labels[v],
                                    color=colors[v], bounds=bounds, scale=PCT)  # fmt: skip
        ax.set_xticks(range(len(variants)), [])
        ax.set(title=COLUMNS.get(metric, metric), xlabel="variant (legend)",
               ylabel=f"{COLUMNS.get(metric, metric)} %")  # fmt: skip
        ax.grid(axis="y", alpha=0.3)
        plots.fit_ylim(ax, bounds=tuple(PCT * b for b in bounds))
    plots.legend(axes[0][-1], **_OUTSIDE)
    fig.suptitle(plots.title("mean over seeds and images, 95% interval", context), fontsize=9)
    return fig


def accuracy_vs_shift(
    curves: Mapping[str, Mapping[str, Any]], variants: Sequence[str], context: str = ""
):
    """Accuracy and consistency with the unshifted prediction against shift distance."""
    fig, axes = plots.figure(1, 2, figsize=(12, 4.4))
    colors = plots.variant_colors(variants)
    labels = plots.spelled(variants, describe)
    for k, v in enumerate(variants):
        c = curves[v]
        for ax, key in zip(axes, ("accuracy", "consistency")):
            plots.interval_band(
                ax, c["distances"], c[key], label=labels[v], color=colors[v], bounds=BOUNDS,
                scale=PCT, marker=_MARKERS[k % len(_MARKERS)], ms=3,
            )  # fmt: skip
    axes[0].set_ylabel("test accuracy at horizontal shift +-d (%)")
    axes[1].set_ylabel("top-1 equals the unshifted top-1 (%)")
    for ax in axes:
        ax.set_xlabel("shift distance d (pixels)")
        ax.grid(alpha=0.3)
        plots.fit_ylim(ax, bounds=(0.0, PCT))
    plots.legend(axes[1], **_OUTSIDE)
    fig.suptitle(plots.title("accuracy and consistency under shift", context), fontsize=9)
    return fig


def learned_vs_shift(
    curves: Mapping[str, Mapping[str, Any]], variants: Sequence[str], context: str = ""
):
    """Learned vs built-in invariance: one column per net, accuracy (top) and consistency
    (bottom) against shift distance, one line per training shift range r (darker: larger r),
    with the trained range ending at the dotted line of the same colour."""
    nets: dict[str, dict[int, str]] = {}  # the net in words -> r -> variant
    for v in variants:
        _, words, r = learned_net(v)
        nets.setdefault(words, {})[r] = v
    ranges = sorted({r for by_r in nets.values() for r in by_r})
    cmap = matplotlib.colormaps["viridis_r"]
    colour = {r: cmap(0.15 + 0.8 * k / max(len(ranges) - 1, 1)) for k, r in enumerate(ranges)}
    fig, axes = plots.figure(2, len(nets), figsize=(3.0 * len(nets) + 2.6, 6.2), squeeze=False)
    rows = (("accuracy", "test accuracy (%)"), ("consistency", "top-1 = unshifted top-1 (%)"))
    for col, (words, by_r) in enumerate(nets.items()):
        for row, (key, ylabel) in enumerate(rows):
            ax = axes[row][col]
            for r, v in sorted(by_r.items()):
                label = f"trained with shifts up to r = {r} px" if r else "trained without shifts"
                plots.interval_band(ax, curves[v]["distances"], curves[v][key], label=label,
                                    color=colour[r], bounds=BOUNDS, scale=PCT, marker="o",
                                    ms=2.5)  # fmt: skip
                if r:
                    ax.axvline(r, color=colour[r], ls=":", lw=1)
            ax.set(xlabel="shift distance d (px)", ylabel=ylabel)
            ax.grid(alpha=0.3)
            ax.set_ylim(0.0, PCT * 1.02)
        axes[0][col].set_title(textwrap.fill(words, 28), fontsize=9)
    plots.legend(axes[0][-1], **_OUTSIDE)
    what = "built-in vs learned invariance (dotted: end of the trained shift range)"
    fig.suptitle(plots.title(what, context), fontsize=9)
    return fig


def red_green(
    summary: Mapping[str, Mapping[str, Any]], paper: Mapping[str, tuple], context: str = ""
):
    """Similar vs dissimilar test accuracy per padding, ours (intervals) beside the paper's."""
    variants = list(summary)
    fig, ax = plots.figure(figsize=(7.5, 4.6))
    colors = plots.variant_colors(["similar", "dissimilar"])
    x = np.arange(len(variants))
    for k, (split, off) in enumerate((("similar", -0.12), ("dissimilar", 0.12))):
        ivs = [summary[v][split] for v in variants]
        plots.interval_errorbar(ax, x + off, ivs, label=f"ours: {split}", color=colors[split],
                                bounds=BOUNDS, scale=PCT)  # fmt: skip
        ref = [paper[v][k] if v in paper else np.nan for v in variants]
        ax.plot(x + off, ref, "x", color=colors[split], ms=9, label=f"paper: {split}")
    ax.set_xticks(x, [textwrap.fill(describe(v), 16) for v in variants], fontsize=8)
    ax.set(xlabel="padding", ylabel="test accuracy (%)")
    ax.set_title(plots.title("Red-green absolute position (Kayhan & van Gemert 2020)", context),
                 fontsize=9)  # fmt: skip
    ax.grid(axis="y", alpha=0.3)
    plots.fit_ylim(ax, bounds=(0.0, PCT))
    plots.legend(ax, **_OUTSIDE)
    return fig


def _two_dots_series(raw, learned) -> dict[str, tuple[str, list[Mapping[str, Any]]]]:
    """Legend label -> (colour key, rows with a mean) for the raw kinds and the learned nets."""
    kinds = dict.fromkeys(r["kind"] for r in raw)
    out = {f"raw pixels, 2x2 {k} pooling": (f"raw {k}", [r for r in raw if r["kind"] == k])
           for k in kinds}  # fmt: skip
    out.update({f"learned {v}: {describe(v)}": (v, list(rows)) for v, rows in learned.items()})
    return {k: (c, [r for r in rows if r["mean"] is not None]) for k, (c, rows) in out.items()}


def two_dots(
    raw: Sequence[Mapping[str, Any]], learned: Mapping[str, Sequence[Mapping]], context: str = ""
):
    """Poolings until two dots merge against their distance: raw pixels vs trained layers.

    Series that coincide stay visible: each has its own marker and dash and a small sideways
    offset, drawn larger first so a later identical one does not hide it."""
    series = _two_dots_series(raw, learned)
    fig, ax = plots.figure(figsize=(8.5, 4.2))
    colors = plots.variant_colors([c for c, _ in series.values()])
    offsets = np.linspace(-0.12, 0.12, len(series)) if len(series) > 1 else [0.0]
    for k, (label, (key, rows)) in enumerate(series.items()):
        if not rows:
            continue
        d = np.array([r["distance"] for r in rows], dtype=float) + offsets[k]
        ax.plot(d, [r["mean"] for r in rows], color=colors[key], label=label,
                marker=_MARKERS[k % len(_MARKERS)], ms=9 - 1.5 * k,
                linestyle=_STYLES[k % len(_STYLES)], zorder=3 + k)  # fmt: skip
        ax.fill_between(d, [r["min"] for r in rows], [r["max"] for r in rows],
                        color=colors[key], alpha=0.12)  # fmt: skip
    ax.set(xlabel="distance between the dots (pixels)", ylabel="poolings until merged")
    ax.set_title(plots.title("two dots: mean over phase, band min-max", context), fontsize=9)
    ax.grid(alpha=0.3)
    plots.legend(ax, **_OUTSIDE)
    return fig
