r"""Activations: training speed with each learning rate tuned, BN for sigmoid, linear collapse.

    python -m experiments.anatomy.activations \
        --config=experiments/anatomy/configs/activations_smoke.py --workdir=runs/activations_smoke
    python -m experiments.anatomy.activations \
        --config=experiments/anatomy/configs/activations_full.py --workdir=runs/activations

Krizhevsky et al. 2012 (Fig. 1): a 4-layer CNN with ReLU reached 25% training error on
CIFAR-10 six times faster than with tanh, each net's learning rate chosen for speed. Here a
4-layer CNN is trained with each activation (ReLU, tanh, sigmoid, and sigmoid with batch
norm: Ioffe & Szegedy 2015 report sigmoid Inception stuck at chance without BN, 69.8% with)
over a learning-rate grid at the tuning budget (experiment.tune_budget); per activation the
learning rate is chosen on validation accuracy there, only the chosen one's test predictions
are read, and only the chosen ones train at the other budgets. From each seed's
metrics.jsonl: the first logged step whose windowed training accuracy reaches each target
(1 - training error), and its seconds (steps x steady s/step, compile excluded). Linear
collapse: `experiments.anatomy.collapse`. The study declares its claims; the claims engine
judges them (`experiments.anatomy.claims`: one Holm family, steps to a target compared as
restricted mean times, the identity checked exactly). Writes to --workdir:
runs/<budget>/<variant>/..., results.json, grid.md, speed.md, claims.md, readme.md,
activation_curves.png; full configs publish to results/<experiment.record_as>.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from cnn_jax import stats
from cnn_jax.nn import activation_kinds
from cnn_jax.outputs.claims_report import claims_markdown
from cnn_jax.outputs.markdown import markdown_table
from cnn_jax.outputs.writers import atomic_write_json, atomic_write_text
from cnn_jax.run_setup import load_dataset
from cnn_jax.runs import progress, record
from cnn_jax.stats.budgets import ClaimResult
from cnn_jax.stats.claims import Claim

from .. import cli
from . import claims, collapse, plots, report
from .variants import describe

# Every conv and dense layer uses Flax's default initialiser (noted in every table row).
INIT = "LeCun normal, var 1/fan_in (Flax default; Glorot: 2/(fan_in+fan_out), He: 2/fan_in)"


def variant_name(activation: str, lr: float) -> str:
    """'relu_lr0.03'."""
    return f"{activation}_lr{lr:g}"


def activation_configs(config: ml_collections.ConfigDict) -> dict[str, ml_collections.ConfigDict]:
    """Every activation x learning rate on the same 4-layer CNN ('sigmoid_bn': with BN).

    Each name is an `activation_kinds` name, optionally with '_bn'; any other is a ValueError.
    """
    exp, out = config.experiment, {}
    for act in exp.activations:
        activation_kinds.get(act.removesuffix("_bn"), "experiment.activations")
    for act in exp.activations:
        name, bn = act.removesuffix("_bn"), act.endswith("_bn")
        for lr in learning_rates(exp, act):
            cfg = config.copy_and_resolve_references()
            with cfg.unlocked():
                cfg.model.blocks = [dict(b, activation=name, batch_norm=bn) for b in exp.blocks]
                cfg.optim.learning_rate = float(lr)
            out[variant_name(act, lr)] = cfg
    return out


def learning_rates(exp: ml_collections.ConfigDict, act: str) -> tuple[float, ...]:
    """The grid of one activation: experiment.lr_grid[act] if given, else learning_rates."""
    grid = dict(exp.get("lr_grid") or {})
    return tuple(float(lr) for lr in grid.get(act, exp.learning_rates))


def seed_speed(rows: Sequence[Mapping[str, Any]], targets: Sequence[float]) -> dict[str, list]:
    """Per seed: steps and seconds to each target (None if never), budget steps, curves."""
    out: dict[str, list] = {"curve": [], "total_steps": []}
    for row in rows:
        curve = report.train_curve(row["run_dir"])
        out["curve"].append(curve)
        out["total_steps"].append(int(row["results"]["steps"]))
        for t in targets:
            hit = report.steps_to_target(curve, t)
            out.setdefault(f"steps_{t:g}", []).append(hit["steps"])
            out.setdefault(f"seconds_{t:g}", []).append(hit["seconds"])
    for t in targets:  # unreached counts as the whole budget: a lower bound on the true steps
        out[f"censored_steps_{t:g}"] = [
            total if s is None else s for s, total in zip(out[f"steps_{t:g}"], out["total_steps"])
        ]
    return out


def choose_lr(groups: Mapping[str, Sequence], act: str, lrs: Sequence[float]) -> str:
    """The learning rate with the best mean validation accuracy (the lower one on ties)."""

    def val(name: str) -> float:
        rows = groups[name]
        return float(np.mean([r["results"]["final"]["validation"]["accuracy"] for r in rows]))

    names = [variant_name(act, lr) for lr in sorted(lrs) if variant_name(act, lr) in groups]
    if not names:
        raise ValueError(
            f"experiment.learning_rates: every {act} run diverged; allowed: lower rates"
        )
    return max(names, key=val)


def lr_edge(lrs: Sequence[float], chosen: float) -> str:
    """'' when `chosen` lies inside the grid `lrs`; else which edge it sits at and that the
    grid should be widened there (the best rate may lie outside what was tried). A one-point
    grid tunes nothing; on a two-point grid every choice is an edge."""
    grid = sorted({float(lr) for lr in lrs})
    if len(grid) == 1:
        return f"one rate ({grid[0]:g}): not tuned; widen the grid"
    if float(chosen) == grid[0]:
        return f"low edge: widen the grid below {grid[0]:g}"
    if float(chosen) == grid[-1]:
        return f"high edge: widen the grid above {grid[-1]:g}"
    return ""


def lr_edges(rates: Mapping[str, Sequence[float]], chosen: Mapping[str, str]) -> dict[str, str]:
    """{activation: `lr_edge` note} of every chosen rate (chosen: activation -> variant name)."""
    out = {}
    for act, name in chosen.items():
        if act in rates:
            out[act] = lr_edge(rates[act], float(name.split("_lr")[-1]))
    return out


def grid_table(
    groups_by_budget, exp, root: Path, chosen: Mapping[str, str] | None = None
) -> tuple[list[str], list[list[Any]]]:
    """Validation accuracy of every activation x learning rate (test not read here); the
    last column marks the chosen rate and whether it sits at a grid edge (`lr_edge`)."""
    budgets, chosen = list(groups_by_budget), dict(chosen or {})
    headers = ["activation", "description", "learning rate"]
    headers += [f"validation acc % {b}" for b in budgets]
    headers.append("chosen (grid edge?)")
    rows = []
    for act in exp.activations:
        lrs = learning_rates(exp, act)
        for lr in lrs:
            name, cells = variant_name(act, lr), []
            for b in budgets:
                g = groups_by_budget[b].get(name)
                vals = [r["results"]["final"]["validation"]["accuracy"] for r in g or []]
                if report.diverged(root, b, name):
                    cells.append("diverged (NaN)")
                elif not vals and b != exp.tune_budget:
                    cells.append(f"tuned at {exp.tune_budget}")
                else:
                    cells.append(
                        report.seed_values_fmt([100 * v for v in vals], 1) if vals else "-"
                    )
            mark = ""
            if chosen.get(act) == name:
                mark = "chosen" + (f"; {e}" if (e := lr_edge(lrs, lr)) else "")
            rows.append([act, describe(act), f"{lr:g}"] + cells + [mark])
    return headers, rows


def speed_table(
    chosen, speed, groups_by_budget, targets, edges: Mapping[str, str] | None = None
) -> tuple[list[str], list[list[Any]]]:
    """Per budget and activation: chosen lr (with its grid-edge note, `lr_edges`), steps /
    seconds to each target, accuracies."""
    headers = ["budget", "activation", "description", "chosen lr", "init"]
    for t in targets:
        headers += [f"steps to {1 - t:.0%} train error", f"s to {1 - t:.0%}"]
    headers += ["test acc %"]
    rows = []
    for budget, per_act in chosen.items():
        for act, name in per_act.items():
            if name not in speed[budget]:
                continue  # not trained at this budget (experiment.budget_variants)
            sp = speed[budget][name]
            edge = (edges or {}).get(act)
            lr = name.split("_lr")[-1] + (f" ({edge})" if edge else "")
            row = [budget, act, describe(act), lr, INIT.split(",")[0]]
            for t in targets:
                steps = sp[f"steps_{t:g}"]
                reached = [s for s in steps if s is not None]
                n = f" ({len(reached)}/{len(steps)} reached)" if len(reached) < len(steps) else ""
                total = max(sp["total_steps"])
                row.append((report.seed_values_fmt(reached) if reached else f"> {total}") + n)
                row.append(report.seed_values_fmt(sp[f"seconds_{t:g}"], 2))
            correct = report.correct_sn(groups_by_budget[budget][name])
            row.append(report.accuracy_interval(correct).fmt())
            rows.append(row)
    return headers, rows


def speedup(speed_a: Mapping[str, list], speed_b: Mapping[str, list], target: float) -> dict:
    """Steps of b / steps of a to `target`, per seed (censored b: a lower bound)."""
    a = np.asarray(speed_a[f"censored_steps_{target:g}"], np.float64)
    b = np.asarray(speed_b[f"censored_steps_{target:g}"], np.float64)
    ratio = b / a
    iv = stats.percentile_bootstrap(ratio) if ratio.size > 1 and np.ptp(ratio) > 0 else None
    censored = any(s is None for s in speed_b[f"steps_{target:g}"])
    return {"ratio_per_seed": ratio.tolist(), "mean": float(ratio.mean()),
            "interval": None if iv is None else iv.as_dict(), "lower_bound": censored}  # fmt: skip


def declare(exp: ml_collections.ConfigDict, reference_known: bool) -> list[Claim]:
    """The trained claims: speed on the chosen learning rates, BN for sigmoid, then collapse.

    Speed: steps to experiment.krizhevsky_target, better = fewer (Krizhevsky et al. 2012);
    BN: test accuracy (Ioffe & Szegedy 2015). Only claims whose activations were trained.
    """
    target = float(exp.krizhevsky_target)
    chosen = "each at its chosen lr"
    declared = [
        claims.time_to_target("ReLU trains faster than tanh (Krizhevsky 2012)", "relu", "tanh",
                              target, chosen),
        claims.time_to_target("ReLU trains faster than sigmoid (seed notes)", "relu", "sigmoid",
                              target, chosen),
        claims.accuracy("batch norm lets a sigmoid CNN train (Ioffe & Szegedy 2015)",
                        "sigmoid_bn", "sigmoid", f"test accuracy, {chosen}"),
    ]  # fmt: skip
    present = set(exp.activations)
    declared = [c for c in declared if c.a in present and c.b in present]
    return declared + collapse.declare(exp, reference_known)


def judge_study(
    exp: ml_collections.ConfigDict,
    random_check: Mapping[str, Any],
    trained: Sequence[Mapping[str, Any]],
    speed: Mapping[str, Mapping[str, Mapping[str, Any]]],
    accuracy_of: claims.AccuracySource,
    reference_known: bool,
) -> list[ClaimResult]:
    """Every claim of the study through the engine (fresh runs and re-analysed records alike)."""
    budgets = list(report.budgets_in_order(exp.budgets))
    evidence = [collapse.identity_evidence(random_check, trained, budgets)]
    evidence += claims.gather(
        declare(exp, reference_known), accuracy_of, speed, float(exp.krizhevsky_target)
    )
    return claims.judge_claims(evidence)


def edge_line(meta: Mapping[str, Any]) -> str:
    """One line naming every chosen rate at a grid edge (from meta['lr_edges'], or for an older
    record from its grids and choices), or '' when none is."""
    edges = meta.get("lr_edges")
    if edges is None and meta.get("chosen"):
        edges = lr_edges(meta.get("learning_rates", {}), next(iter(meta["chosen"].values())))
    at_edge = {a: e for a, e in (edges or {}).items() if e}
    if not at_edge:
        return ""
    listed = "; ".join(f"{a} ({e})" for a, e in at_edge.items())
    return (
        f"Chosen learning rate at a grid edge: {listed}. The best rate may lie outside the "
        "grid: the grid should be widened before these speeds are read as tuned."
    )


def readme_text(meta: Mapping[str, Any], speed_md: str, speedups: Mapping, claims_md: str) -> str:
    """The record's readme: setup line, speed table, grid-edge line, speed-ups, claims (fresh
    or re-analysed)."""
    lines = [
        f"**Activations** on {meta['dataset']} {meta['image_shape']}: 4-layer CNN, "
        f"{len(meta['seeds'])} seeds, learning rate per activation chosen on validation from "
        f"{meta['learning_rates']} at the {meta['tune_budget']} budget; budgets "
        f"{meta['budgets']} x {meta['epochs']} epochs; "
        f"wall {meta['wall_time_sec'] / 60:.1f} min.",
        "",
        speed_md,
    ]
    if edge_line(meta):
        lines += ["", edge_line(meta), ""]
    for budget, s in speedups.items():
        iv = s["interval"]
        text = f"{s['mean']:.2f}x" + (f" [{iv['low']:.2f}, {iv['high']:.2f}]" if iv else "")
        bound = " (a lower bound: tanh did not always reach it)" if s["lower_bound"] else ""
        lines.append(
            f"- ReLU vs tanh speed-up to {meta['krizhevsky_error']:.0%} training error, {budget}: "
            f"{text}{bound}; Krizhevsky 2012: about 6x on CIFAR-10 (32x32x3, 50k images, larger "
            f"nets, his own lr choice for speed); ours: {meta['dataset']} "
            f"{'x'.join(map(str, meta['image_shape']))}, {meta['train_images']:,} training "
            f"images, convs of {'/'.join(map(str, meta['filters']))} filters, lr chosen on "
            "validation."
        )
    return "\n".join(lines + ["", claims_md])


def _rest_plan(exp, grid, collapse_cfgs, chosen_names) -> tuple[dict, dict]:
    """(configs, only) of the budgets after tuning: each activation at its chosen rate and the
    collapse nets; experiment.budget_variants: a subset per budget ('relu' = its chosen lr)."""
    again = {n: grid[n] for n in chosen_names.values()} | collapse_cfgs
    only = {
        b: [chosen_names.get(n, n) for n in names]
        for b, names in dict(exp.get("budget_variants") or {}).items()
    }
    return again, only


def _rest_runs(exp, grid, collapse_cfgs, chosen_names, root: Path, rest) -> int:
    """The runs the budgets after tuning will sweep (`report.planned_runs`)."""
    if not rest:
        return 0
    again, only = _rest_plan(exp, grid, collapse_cfgs, chosen_names)
    return report.planned_runs(again, root, exp.seeds, list(rest), True, only)


def train_study(
    config: ml_collections.ConfigDict, root: Path
) -> tuple[dict[str, list], dict[str, str]]:
    """Trains the rate grid at the tuning budget, then the chosen rates at the other budgets.

    Returns the finished rows per budget and the chosen variant name per activation."""
    exp = config.experiment
    grid, collapse_cfgs = activation_configs(config), collapse.collapse_configs(config)
    budgets, tune = report.budgets_in_order(exp.budgets), str(exp.tune_budget)
    rest = {b: f for b, f in budgets.items() if b != tune}
    tuning = {**grid, **collapse_cfgs}
    # The whole study counted before it trains; the other budgets with a stand-in rate per
    # activation (the count is the same whichever rate is chosen), recounted once chosen.
    stand_in = {a: variant_name(a, learning_rates(exp, a)[0]) for a in exp.activations}
    progress.expect_rest(report.planned_runs(tuning, root, exp.seeds, [tune], True)
                         + _rest_runs(exp, grid, collapse_cfgs, stand_in, root, rest))  # fmt: skip
    rows = report.train_budgets(
        tuning, root, exp.seeds, {tune: budgets[tune]}, bool(exp.vmap_seeds), True
    )
    tuned = report.by_variant(rows[tune])
    chosen_names = {a: choose_lr(tuned, a, learning_rates(exp, a)) for a in exp.activations}
    if rest:  # the chosen learning rates (and the collapse nets) at the other budgets
        again, only = _rest_plan(exp, grid, collapse_cfgs, chosen_names)
        progress.expect_rest(_rest_runs(exp, grid, collapse_cfgs, chosen_names, root, rest))
        rows |= report.train_budgets(again, root, exp.seeds, rest, bool(exp.vmap_seeds), True, only)
    return {b: rows[b] for b in budgets}, chosen_names


def speeds_by_budget(
    rows: Mapping[str, list], chosen_names: Mapping[str, str], exp: ml_collections.ConfigDict
) -> tuple[dict, dict, dict, dict, dict]:
    """Per budget: runs by variant, time-to-target per seed, the chosen rate per activation,
    runs keyed by activation too, and ReLU's speed-up over tanh (Krizhevsky et al. 2012)."""
    targets = [float(t) for t in exp.target_accuracies]
    groups, speed, chosen, aliased, speedups = {}, {}, {}, {}, {}
    for budget, budget_rows in rows.items():
        g = groups[budget] = report.by_variant(budget_rows)
        speed[budget] = {name: seed_speed(r, targets) for name, r in g.items()}
        chosen[budget] = dict(chosen_names)
        aliased[budget] = {**g, **{a: g[n] for a, n in chosen[budget].items() if n in g}}
        for a, n in chosen[budget].items():
            if n in speed[budget]:
                speed[budget][a] = speed[budget][n]
        if {"relu", "tanh"} <= set(speed[budget]):
            speedups[budget] = speedup(
                speed[budget]["relu"], speed[budget]["tanh"], float(exp.krizhevsky_target)
            )
    return groups, speed, chosen, aliased, speedups


def run_experiment(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains all variants x seeds x budgets, chooses lrs on validation, judges the claims."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    exp = config.experiment
    t0, load_at_start = time.time(), record.load_average()
    rows, chosen_names = train_study(config, workdir / "runs")
    groups, speed, chosen, aliased, speedups = speeds_by_budget(rows, chosen_names, exp)
    targets = [float(t) for t in exp.target_accuracies]
    krizhevsky = float(exp.krizhevsky_target)
    random_check = collapse.random_collapse_check()
    trained = [
        dict(collapse.trained_collapse_check(r["run_dir"]), budget=budget)
        for budget, budget_rows in rows.items()
        for r in budget_rows
        if r["variant"] == "collapse_deep_linear"
    ]
    judged = judge_study(exp, random_check, trained, speed, claims.fresh_accuracy(aliased), True)
    claim_dicts = [r.as_dict() for r in judged]
    budgets = list(report.budgets_in_order(exp.budgets))
    claims_md = claims_markdown(claim_dicts, budgets)
    edges = lr_edges({a: learning_rates(exp, a) for a in exp.activations}, chosen_names)
    g_headers, g_rows = grid_table(groups, exp, workdir / "runs", chosen_names)
    s_headers, s_rows = speed_table(chosen, speed, groups, targets, edges)
    speed_md = markdown_table(s_headers, s_rows)
    ds = load_dataset(config)  # the validated dataset section (`DatasetSpec`)
    meta = {
        "dataset": ds.name, "image_shape": list(ds.image_shape), "seeds": list(exp.seeds),
        "train_images": len(ds.train.labels), "filters": [b["features"] for b in exp.blocks],
        "budgets": report.budgets_in_order(exp.budgets), "epochs": int(config.train.num_epochs),
        "learning_rates": {a: list(learning_rates(exp, a)) for a in exp.activations},
        "tune_budget": str(exp.tune_budget), "krizhevsky_error": 1 - krizhevsky,
        "lr_edges": edges, "wall_time_sec": time.time() - t0,
        "load_at_start": list(load_at_start), "init": INIT,
    }  # fmt: skip
    results = {
        **meta,
        "chosen": chosen,
        "speed": {
            b: {n: {k: v for k, v in s.items() if k != "curve"} for n, s in per.items()}
            for b, per in speed.items()
        },  # fmt: skip
        "speedup_relu_vs_tanh": speedups,
        "random_collapse_check": random_check,
        "trained_collapse_checks": trained,
        "claims": claim_dicts,
        "verdicts": claims.counts(claim_dicts),
    }
    atomic_write_json(workdir / "results.json", results)
    atomic_write_text(workdir / "grid.md", markdown_table(g_headers, g_rows))
    atomic_write_text(workdir / "speed.md", speed_md)
    atomic_write_text(workdir / "claims.md", claims_md)
    atomic_write_text(workdir / "readme.md", readme_text(meta, speed_md, speedups, claims_md))
    last = budgets[-1]
    curves = {a: speed[last][a]["curve"] for a in chosen[last] if a in speed[last]}
    context = f"{meta['dataset']}, budget {last}"
    plots.curves_figure(curves, krizhevsky, workdir / "activation_curves.png", context)
    print(markdown_table(g_headers, g_rows), speed_md, claims_md, sep="\n")
    files = ["results.json", "grid.md", "speed.md", "claims.md", "readme.md", "*.png"]
    record.maybe_publish(
        config, workdir, files, dataset=ds, wall_time_sec=time.time() - t0,
        command=" ".join(sys.argv), load_at_start=load_at_start,
    )  # fmt: skip
    print(f"Wrote {workdir}: results.json, grid.md, speed.md, claims.md ({time.time() - t0:.0f} s)")
    return results


if __name__ == "__main__":
    cli.main(
        run_experiment,
        default_config="experiments/anatomy/configs/activations_smoke.py",
        default_workdir="runs/activations",
    )
