"""Tables and plots of the regularizer study (`experiments.regularization`).

Pure functions of the study's rows (one per variant x seed): mean, std and 95% t-interval
per variant (`cnn_jax.stats.mean_ci`), the paired difference to the baseline (same seeds,
so same data order), CSV and Markdown tables, and matplotlib figures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cnn_jax.results import atomic_write_json, atomic_write_text  # noqa: E402
from cnn_jax.stats import mean_ci  # noqa: E402

METRICS = (
    "test_accuracy",
    "gap",
    "test_loss",
    "train_accuracy",
    "validation_accuracy",
    "best_epoch",
    "val_loss_min_epoch",
    "epochs_trained",
    "weights_l1",
    "weights_l2",
    "weights_near_zero_0.001",
    "wall_time_sec",
)
STATS = ("mean", "std", "ci_low", "ci_high", "n")


def _order(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["variant"] for r in rows))


def summarize(rows: Sequence[Mapping[str, Any]], baseline: str = "baseline") -> dict[str, Any]:
    """{variant: {metric: mean_ci}} plus 'delta_test_accuracy' and 'delta_gap': the paired
    (same seed) difference to `baseline`, when the baseline ran with those seeds."""
    base = {r["seed"]: r for r in rows if r["variant"] == baseline}
    summary: dict[str, Any] = {}
    for variant in _order(rows):
        mine = [r for r in rows if r["variant"] == variant]
        entry = {m: mean_ci([r[m] for r in mine]) for m in METRICS if m in mine[0]}
        paired = [r for r in mine if r["seed"] in base]
        if paired and variant != baseline:
            for m in ("test_accuracy", "gap"):
                entry[f"delta_{m}"] = mean_ci([r[m] - base[r["seed"]][m] for r in paired])
        summary[variant] = entry
    return summary


def runs_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line per run, every scalar column."""
    columns = [k for k, v in rows[0].items() if not isinstance(v, list | dict)]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def summary_csv(summary: Mapping[str, Any]) -> str:
    """One line per variant: <metric>_<stat> for every metric and stat."""
    metrics = list(dict.fromkeys(m for entry in summary.values() for m in entry))
    columns = ["variant"] + [f"{m}_{s}" for m in metrics for s in STATS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for variant, entry in summary.items():
        cells = [variant]
        for m in metrics:
            cells += [entry[m][s] if m in entry else "" for s in STATS]
        writer.writerow(cells)
    return out.getvalue()


def _pct(stat: Mapping[str, float]) -> str:
    """'93.12 ± 0.40' in percent: mean ± half-width of the 95% CI."""
    half = (stat["ci_high"] - stat["ci_low"]) / 2
    return f"{100 * stat['mean']:.2f} ± {100 * half:.2f}"


def markdown_table(summary: Mapping[str, Any], order: Sequence[str] | None = None) -> str:
    """The headline table: test accuracy, paired change vs baseline, gap, epochs, weights."""
    lines = [
        "| variant | test acc % (95% CI) | Δ vs baseline (pts) | gap train−test (pts) "
        "| best epoch | val-loss min epoch | L2 norm | |w|<1e-3 % | wall s/run | n |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant in order or list(summary):
        e = summary[variant]
        delta = _pct(e["delta_test_accuracy"]) if "delta_test_accuracy" in e else "—"
        lines.append(
            f"| {variant} | {_pct(e['test_accuracy'])} | {delta} | {_pct(e['gap'])} "
            f"| {e['best_epoch']['mean']:.1f} | {e['val_loss_min_epoch']['mean']:.1f} "
            f"| {e['weights_l2']['mean']:.2f} | {100 * e['weights_near_zero_0.001']['mean']:.1f} "
            f"| {e['wall_time_sec']['mean']:.1f} | {e['test_accuracy']['n']} |"
        )
    return "\n".join(lines) + "\n"


def _bars(ax, summary: Mapping[str, Any], metric: str, title: str) -> None:
    names = list(summary)
    means = np.array([100 * summary[n][metric]["mean"] for n in names])
    lows = np.array([100 * summary[n][metric]["ci_low"] for n in names])
    highs = np.array([100 * summary[n][metric]["ci_high"] for n in names])
    x = np.arange(len(names))
    colors = ["0.6" if n == "baseline" else f"C{i % 10}" for i, n in enumerate(names)]
    ax.bar(x, means, yerr=[means - lows, highs - means], capsize=3, color=colors)
    if "baseline" in summary:
        ax.axhline(100 * summary["baseline"][metric]["mean"], color="0.3", ls="--", lw=1)
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_title(title)
    ax.set_ylabel("percent")


def plot_accuracy_and_gap(summary: Mapping[str, Any]):
    """Test accuracy and generalization gap per variant: mean with 95% CI error bars."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    _bars(ax1, summary, "test_accuracy", "test accuracy (mean, 95% CI)")
    low = min(100 * e["test_accuracy"]["ci_low"] for e in summary.values())
    ax1.set_ylim(max(0.0, low - 3), 100)
    _bars(ax2, summary, "gap", "generalization gap: train − test accuracy")
    fig.tight_layout()
    return fig


def _seed_curves(curves: Mapping[str, Any], variant: str, key: str) -> list[tuple]:
    return [(c["epoch"], c[key]) for name, c in curves.items() if name.split("/")[0] == variant]


def plot_learning_curves(curves: Mapping[str, Any], variants: Sequence[str]):
    """Per variant: training (running, train mode) and validation accuracy per epoch, each seed."""
    cols = min(4, len(variants))
    rows = -(-len(variants) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, variant in zip(axes.flat, variants):
        for key, color in (("train_accuracy", "C0"), ("val_accuracy", "C1")):
            for i, (epochs, values) in enumerate(_seed_curves(curves, variant, key)):
                label = key.replace("_", " ") if i == 0 else None
                ax.plot(epochs, values, color=color, alpha=0.7, lw=1, label=label)
        ax.set_title(variant, fontsize=9)
        ax.set_ylim(0.5, 1.01)
        ax.set_xlabel("epoch", fontsize=8)
    for ax in list(axes.flat)[len(variants) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_validation_loss(curves: Mapping[str, Any], variants: Sequence[str]):
    """Validation loss per epoch, mean over seeds: where it turns up, overfitting starts."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, variant in enumerate(variants):
        seed_curves = _seed_curves(curves, variant, "val_loss")
        length = min(len(e) for e, _ in seed_curves)
        epochs = seed_curves[0][0][:length]
        mean = np.mean([v[:length] for _, v in seed_curves], axis=0)
        style = "--" if variant == "baseline" else "-"
        ax.plot(epochs, mean, style, color=f"C{i % 10}", label=variant, lw=1.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss (mean over seeds)")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_weight_histograms(
    histograms: Mapping[str, Sequence[int]], edges: Sequence[float], variants: Sequence[str]
):
    """Kernel-value histograms (all seeds pooled) of the given variants, log counts."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    centres = (np.asarray(edges[1:]) + np.asarray(edges[:-1])) / 2
    for i, variant in enumerate(variants):
        counts = [np.asarray(h) for name, h in histograms.items() if name.split("/")[0] == variant]
        if counts:
            total = np.sum(counts, axis=0)
            ax.step(centres, np.maximum(total, 0.5), where="mid", label=variant, color=f"C{i}")
    ax.set_yscale("log")
    ax.set_xlabel("kernel weight value")
    ax.set_ylabel("count (all seeds)")
    ax.set_title("weights: L1 vs L2 vs weight decay vs none")
    ax.legend()
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(results: Mapping[str, Any], workdir: str | Path) -> None:
    """results.json, runs.csv, summary.csv, summary.md and the four PNG figures."""
    workdir = Path(workdir)
    summary, variants = results["summary"], list(results["summary"])
    atomic_write_json(workdir / "results.json", results)
    atomic_write_text(workdir / "runs.csv", runs_csv(results["runs"]))
    atomic_write_text(workdir / "summary.csv", summary_csv(summary))
    header = (
        f"Regularizer study on {results['dataset']} ({len(results['seeds'])} seeds; "
        "± is the half-width of the 95% t-interval; Δ is paired by seed)\n\n"
    )
    atomic_write_text(workdir / "summary.md", header + markdown_table(summary, variants))
    _save(plot_accuracy_and_gap(summary), workdir / "test_accuracy.png")
    _save(plot_learning_curves(results["curves"], variants), workdir / "learning_curves.png")
    _save(plot_validation_loss(results["curves"], variants), workdir / "validation_loss.png")
    hist_variants = [v for v in ("baseline", "l1", "l2", "weight_decay") if v in summary]
    _save(
        plot_weight_histograms(results["histograms"], results["histogram_edges"], hist_variants),
        workdir / "weight_histograms.png",
    )
