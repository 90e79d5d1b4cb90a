"""Shared helpers of the CNN-anatomy studies: budgets, per-image matrices, claim verdicts, tables.

Every trained claim is a paired comparison of two variants on the same seeds and test images
(`cnn_jax.stats.paired_difference` on [seeds, images] 0/1 correctness), or, for a per-seed
quantity such as steps to a target training error, a paired t-test over seeds. All p's of a
study (every claim at every budget) form one Holm family (`stats.adjust`); each claim gets
`stats.verdict` at each budget and `stats.budget_verdict` across budgets. Claims settled by a
formula or an exact identity carry their own verdict and are outside the family.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from scipy import stats as scipy_stats

from cnn_jax import stats
from cnn_jax.outputs import predictions
from cnn_jax.outputs.writers import read_metrics
from cnn_jax.runs.sweep import run_sweep
from cnn_jax.system.preemption import NonFiniteError

ALPHA = 0.05
DIVERGED = "DIVERGED.txt"


# ----------------------------------------------------------------------------- training


def _sweep_each(configs, root: Path, seeds: list[int], vmap_seeds: bool) -> list[dict]:
    """run_sweep variant by variant; a diverged variant (NaN/Inf) is marked and left out.

    For a learning-rate grid divergence is a result, not an error: the marker file
    <root>/<variant>/DIVERGED.txt keeps the message, so a rerun does not retrain it.
    """
    rows = []
    for name, config in configs.items():
        marker = root / name / DIVERGED
        if marker.exists():
            continue
        try:
            rows += run_sweep({name: config}, root, seeds, vmap_seeds=vmap_seeds)
        except NonFiniteError as e:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"{e}\n")
            print(f"{name}: diverged ({e}); left out", flush=True)
    return rows


def diverged(root: str | Path, budget: str, name: str) -> bool:
    """Whether `name` diverged at `budget` (see `_sweep_each`)."""
    return (Path(root) / budget / name / DIVERGED).exists()


def train_budgets(
    configs: Mapping[str, ml_collections.ConfigDict],
    root: str | Path,
    seeds: Sequence[int],
    budgets: Mapping[str, float],
    vmap_seeds: bool,
    allow_diverged: bool = False,
    only: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """{budget: rows}: every config at each budget factor (train.budget_factor), via run_sweep.

    Variants with identical configs (e.g. a depth-3 VALID stack that is also a kernel-study
    stack) train once; the duplicate names get copies of the first one's rows. With
    `allow_diverged`, a variant whose training diverges has no rows (see `_sweep_each`).
    `only[budget]`: the variants trained at that budget (default: all).
    """
    unique, alias = {}, {}
    for name, config in configs.items():
        key = json.dumps(config.to_dict(), sort_keys=True, default=str)
        alias[name] = unique.setdefault(key, name)
    out, seeds = {}, [int(s) for s in seeds]
    for budget, factor in budgets.items():
        scaled = {}
        wanted = set((only or {}).get(budget, alias))
        for name in dict.fromkeys(a for n, a in alias.items() if n in wanted):
            scaled[name] = configs[name].copy_and_resolve_references()
            scaled[name].train.budget_factor = float(factor)
        print(f"budget {budget} (x{factor}): {len(scaled)} variants x {len(seeds)} seeds")
        where = Path(root) / budget
        if allow_diverged:
            rows = _sweep_each(scaled, where, seeds, vmap_seeds)
        else:
            rows = run_sweep(scaled, where, seeds, vmap_seeds=vmap_seeds)
        by_name = by_variant(rows)
        out[budget] = [
            dict(row, variant=name)
            for name, first in alias.items()
            if name in wanted
            for row in by_name.get(first, [])
        ]
    return out


def by_variant(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows grouped by variant, each group in seed order."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (r["variant"], r["seed"])):
        out.setdefault(row["variant"], []).append(row)
    return out


def correct_sn(rows: Sequence[Mapping[str, Any]], split: str = "test") -> np.ndarray:
    """[seeds, images] 0/1 correctness of one variant's rows (the trainer's predictions)."""
    return predictions.correct_matrix([r["run_dir"] for r in rows], split)


def accuracy_interval(correct: np.ndarray) -> stats.Interval:
    """Mean accuracy over seeds and images with the seeds-x-images interval."""
    if correct.shape[0] < 2:
        return stats.wilson(int(correct.sum()), int(correct.size))
    return stats.hierarchical_bootstrap(correct)


def seed_values_fmt(values: Sequence[float], digits: int = 0) -> str:
    """'123 [98, 150]': mean and bootstrap interval over seeds (or the single value)."""
    x = np.asarray([v for v in values if v is not None], np.float64)
    if x.size == 0:
        return "-"
    if x.size == 1 or np.ptp(x) == 0:
        return f"{x.mean():.{digits}f}"
    iv = stats.percentile_bootstrap(x)
    return f"{iv.estimate:.{digits}f} [{iv.low:.{digits}f}, {iv.high:.{digits}f}]"


# ----------------------------------------------------------------------------- claims


@dataclasses.dataclass(frozen=True)
class ClaimSpec:
    """A seed claim tested as variant a vs variant b: claimed sign of (a - b) on `metric`.

    metric 'accuracy': per-image test correctness (or `split`); 'seed:<key>': one number per
    seed from the caller's table (e.g. steps to a target). margin: equivalence margin (TOST).
    """

    claim: str
    a: str
    b: str
    claimed_sign: int
    what: str = ""
    metric: str = "accuracy"
    split: str = "test"
    margin: float | None = None


def seed_comparison(a: Sequence[float], b: Sequence[float], name: str) -> stats.Comparison:
    """Paired t-test over seeds of one per-seed number (no images to cross)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = x - y
    n = d.size
    if n < 2:
        raise ValueError(f"{name}: {n} paired seeds; allowed: >= 2")
    se = float(d.std(ddof=1) / math.sqrt(n))
    if se == 0:  # identical differences: an exact two-sided sign test (n of n the same sign)
        p, low, high = (1.0 if d[0] == 0 else min(1.0, 2 * 0.5**n)), float(d[0]), float(d[0])
    else:
        p = float(scipy_stats.ttest_rel(x, y).pvalue)
        half = float(scipy_stats.t.ppf(1 - ALPHA / 2, n - 1)) * se
        low, high = float(d.mean() - half), float(d.mean() + half)
    return stats.Comparison(
        name=name, delta=float(d.mean()), low=low, high=high, p_value=p, p_adjusted=None,
        n_seeds=n, n_images=1, method="paired t over seeds", se=se or None, df=float(n - 1),
    )  # fmt: skip


def compare(
    spec: ClaimSpec,
    groups: Mapping[str, Sequence[Mapping[str, Any]]],
    seed_tables: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    name: str = "",
) -> stats.Comparison | None:
    """The comparison of one claim at one budget, or None when a variant was not trained."""
    if spec.a not in groups or spec.b not in groups:
        return None
    if spec.metric.startswith("seed:"):
        key = spec.metric.removeprefix("seed:")
        table = seed_tables or {}
        return seed_comparison(table[spec.a][key], table[spec.b][key], name)
    a, b = correct_sn(groups[spec.a], spec.split), correct_sn(groups[spec.b], spec.split)
    return stats.paired_difference(a, b, name=name, margin=spec.margin)


def judge(
    specs: Sequence[ClaimSpec],
    groups_by_budget: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    seed_tables_by_budget: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]] | None = None,
) -> list[dict[str, Any]]:
    """Every claim at every budget: one Holm family, a verdict per budget and across budgets."""
    keys, comparisons = [], []
    for i, spec in enumerate(specs):
        for budget, groups in groups_by_budget.items():
            tables = (seed_tables_by_budget or {}).get(budget)
            c = compare(spec, groups, tables, name=f"{spec.a} - {spec.b} @{budget}")
            if c is not None:
                keys.append((i, budget))
                comparisons.append(c)
    adjusted = dict(zip(keys, stats.adjust(comparisons)))
    out = []
    for i, spec in enumerate(specs):
        per_budget = {}
        for budget in groups_by_budget:
            c = adjusted.get((i, budget))
            if c is None:
                continue
            v = stats.verdict(c, claimed_sign=spec.claimed_sign, margin=spec.margin)
            per_budget[budget] = {"verdict": v, **c.as_dict()}
        if per_budget:
            overall = stats.budget_verdict({b: e["verdict"] for b, e in per_budget.items()})
            if len(per_budget) < len(groups_by_budget):
                overall += f" ({', '.join(per_budget)} only)"
            out.append({**dataclasses.asdict(spec), "budgets": per_budget, "result": overall})
    return out


def fixed_claim(claim: str, result: str, evidence: str) -> dict[str, Any]:
    """A claim settled by a formula or an exact identity (outside the Holm family)."""
    return {"claim": claim, "result": result, "evidence": evidence, "budgets": {}}


def _delta_text(entry: Mapping[str, Any], metric: str) -> str:
    scale, unit = (100.0, " pt") if metric == "accuracy" else (1.0, "")
    p = entry.get("p_adjusted", entry["p_value"])
    return (
        f"{scale * entry['delta']:+.1f} [{scale * entry['low']:+.1f}, {scale * entry['high']:+.1f}]"
        f"{unit}, p_Holm {p:.2g}: {entry['verdict']}"
    )


def claims_markdown(claims: Sequence[Mapping[str, Any]], budgets: Sequence[str]) -> str:
    """Claim, comparison, delta [95% CI] with Holm p and verdict per budget, overall verdict."""
    headers = ["seed claim", "comparison (a - b)"] + [f"{b} budget" for b in budgets]
    rows = []
    for c in claims:
        if not c["budgets"]:
            rows.append([c["claim"], c["evidence"]] + ["-"] * len(budgets) + [f"**{c['result']}**"])
            continue
        metric = c.get("metric", "accuracy")
        label = f"{c['a']} - {c['b']}" + (f" ({c['what']})" if c.get("what") else "")
        cells = [
            _delta_text(c["budgets"][b], metric) if b in c["budgets"] else "-" for b in budgets
        ]
        rows.append([c["claim"], label] + cells + [f"**{c['result']}**"])
    return markdown_table(headers + ["verdict"], rows)


def verdict_counts(claims: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many claims got each overall verdict."""
    out: dict[str, int] = {}
    for c in claims:
        out[c["result"]] = out.get(c["result"], 0) + 1
    return out


# ----------------------------------------------------------------------------- tables, curves


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


def train_curve(run_dir: str | Path) -> dict[str, list[float]]:
    """Logged train rows of one run: step, loss, accuracy (window means), time (seconds)."""
    rows = [r for r in read_metrics(run_dir) if r.get("split") == "train"]
    return {k: [float(r[k]) for r in rows] for k in ("step", "loss", "accuracy", "time")}


def steps_to_target(curve: Mapping[str, Sequence[float]], target: float) -> dict[str, Any]:
    """First logged step whose windowed train accuracy reaches `target`, and its time.

    Seconds are steps x the run's steady-state seconds per step (from the logged times,
    first logging window left out because it holds the compile), so compilation and
    evaluation do not count.
    """
    steps, acc, times = curve["step"], curve["accuracy"], curve["time"]
    per_step = None
    if len(steps) >= 3:
        per_step = (times[-1] - times[0]) / max(steps[-1] - steps[0], 1)
    hit = next((i for i, a in enumerate(acc) if a >= target), None)
    if hit is None:
        return {"steps": None, "seconds": None, "sec_per_step": per_step}
    seconds = None if per_step is None else steps[hit] * per_step
    return {"steps": int(steps[hit]), "seconds": seconds, "sec_per_step": per_step}


def finite_or_none(value: float | None) -> float | None:
    """JSON-safe float: None for missing, NaN or inf."""
    return None if value is None or not math.isfinite(value) else float(value)
