"""Shared helpers of the CNN-anatomy experiments: seed-claim verdicts, tables, curves, figures.

Pure functions of finished runs (results.json, metrics.jsonl) so the experiments and the
notebook render the same tables from the same files.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats as scipy_stats

from cnn_jax.results import read_json, read_metrics
from cnn_jax.stats import mean_ci
from cnn_jax.sweep import run_sweep

ALPHA = 0.05


def train_seeds(
    configs: Mapping[str, ml_collections.ConfigDict],
    root: str | Path,
    seeds: Sequence[int],
    vmap_seeds: bool,
) -> list[dict[str, Any]]:
    """Trains every config x seed through `run_sweep`; one row per (variant, seed).

    With `vmap_seeds` each variant's seeds train as one vmapped program
    (train.num_seeds = K: one compile instead of K; seeds must be consecutive), in
    root/<variant>/seed_<first>/seed_<s>/. Rows: variant, seed, run_dir (that seed's
    metrics.jsonl and results.json), results, num_seeds (seeds sharing the program).
    """
    seeds = [int(s) for s in seeds]
    if not vmap_seeds or len(seeds) == 1:
        rows = run_sweep(configs, root, seeds)
        return [dict(r, num_seeds=1) for r in rows]
    if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
        raise ValueError(
            f"experiment.seeds: {seeds} with experiment.vmap_seeds; allowed: consecutive integers"
        )
    vmapped = {}
    for name, config in configs.items():
        vmapped[name] = config.copy_and_resolve_references()
        vmapped[name].train.num_seeds = len(seeds)
    out = []
    for row in run_sweep(vmapped, root, seeds[:1]):
        for seed in seeds:
            seed_dir = Path(row["run_dir"]) / f"seed_{seed}"
            out.append(
                {
                    "variant": row["variant"],
                    "seed": seed,
                    "run_dir": str(seed_dir),
                    "results": read_json(seed_dir / "results.json"),
                    "num_seeds": len(seeds),
                }
            )
    return out


def compare(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """mean(a) - mean(b) with Welch's t-test p-value (None when it cannot be computed)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    p = None
    if a.size > 1 and b.size > 1 and (a.std() > 0 or b.std() > 0):
        p = float(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    return {
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
        "diff": float(a.mean() - b.mean()),
        "p_value": p,
        "n_a": int(a.size),
        "n_b": int(b.size),
    }


def verdict(comparison: Mapping[str, Any], claimed_sign: int) -> str:
    """'held' (claimed direction, p < 0.05), 'failed' (opposite direction, p < 0.05),
    or 'not significant' (no difference at this many seeds)."""
    diff, p = comparison["diff"], comparison["p_value"]
    significant = p is not None and p < ALPHA or p is None and diff != 0
    if not significant:
        return "not significant"
    return "held" if np.sign(diff) == claimed_sign else "failed"


def claim(text: str, result: str, evidence: str) -> dict[str, str]:
    """One checked seed claim: what the seed says, the verdict, the numbers behind it."""
    return {"claim": text, "result": result, "evidence": evidence}


def fmt_ci(values: Sequence[float], scale: float = 100.0, digits: int = 1) -> str:
    """'97.3 ± 0.8 (n=3)': mean and 95% t-interval half-width, in percent by default."""
    if not values:
        return "-"
    s = mean_ci(values)
    half = (s["ci_high"] - s["ci_low"]) / 2
    return f"{s['mean'] * scale:.{digits}f} ± {half * scale:.{digits}f} (n={s['n']})"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


def claims_markdown(claims: Sequence[Mapping[str, str]]) -> str:
    """The claims as a table: claim, verdict, evidence."""
    return markdown_table(
        ("seed claim", "result", "evidence"),
        [(c["claim"], f"**{c['result']}**", c["evidence"]) for c in claims],
    )


def train_curve(run_dir: str | Path) -> dict[str, list[float]]:
    """Logged train rows of one run: step, loss, accuracy (window means), time (seconds)."""
    rows = [r for r in read_metrics(run_dir) if r.get("split") == "train"]
    return {k: [float(r[k]) for r in rows] for k in ("step", "loss", "accuracy", "time")}


def steps_to_target(curve: Mapping[str, Sequence[float]], target: float) -> dict[str, Any]:
    """First logged step whose windowed train accuracy reaches `target`, and its time.

    Seconds are steps x the run's steady-state seconds per step (from the logged times,
    first logging window left out because it holds the compile), so compilation and
    evaluation do not count; `wall_since_first_log` is the raw clock difference.
    """
    steps, acc, times = curve["step"], curve["accuracy"], curve["time"]
    per_step = None
    if len(steps) >= 3:
        per_step = (times[-1] - times[0]) / max(steps[-1] - steps[0], 1)
    hit = next((i for i, a in enumerate(acc) if a >= target), None)
    if hit is None:
        return {"steps": None, "seconds": None, "sec_per_step": per_step}
    seconds = None if per_step is None else steps[hit] * per_step
    return {
        "steps": int(steps[hit]),
        "seconds": seconds,
        "sec_per_step": per_step,
        "wall_since_first_log": times[hit] - times[0],
    }


def new_figure(ncols: int = 1, nrows: int = 1, size=(4.5, 3.4)) -> tuple[Figure, np.ndarray]:
    """An Agg figure (no pyplot state) and its axes as a 2-D array."""
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), dpi=100)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig: Figure, path: str | Path) -> None:
    """Writes the figure as PNG."""
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, format="png")


def errorbar(ax, xs: Sequence[Any], groups: Sequence[Sequence[float]], label: str, **kw) -> None:
    """Mean and 95% interval of each group of per-seed values, as points with error bars."""
    means, halves, keep = [], [], []
    for x, values in zip(xs, groups):
        if values:
            s = mean_ci(values)
            means.append(s["mean"])
            halves.append((s["ci_high"] - s["ci_low"]) / 2)
            keep.append(x)
    if keep:
        ax.errorbar(keep, means, yerr=halves, marker="o", capsize=3, label=label, **kw)


def finite_or_none(value: float | None) -> float | None:
    """JSON-safe float: None for missing, NaN or inf."""
    return None if value is None or not math.isfinite(value) else float(value)
