"""Tables and figures of the regularizer study from its results dict (pure functions of it).

summary.md holds every table; readme.md (what `python -m cnn_jax.runs.readme_blocks` puts into
the README) holds the headline: the claims table of the claims engine (`claims_markdown`: each
'helps' claim at every size, with the 1x / 3x / converged budgets at the tuning size and the
budget interaction), the controls and pairs, the literature rows and the Zhang et al. 2017
check. Figures: validation accuracy against strength per regularizer (tuning.png) and gain
against size (gain_vs_size.png).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cnn_jax.outputs import plots
from cnn_jax.outputs.claims_report import claims_markdown
from cnn_jax.outputs.markdown import markdown_table
from cnn_jax.outputs.writers import atomic_write_json, atomic_write_text

from .claims import BUDGETS
from .stopping import stopping_table
from .variants import describe

# Srivastava et al. 2014, "Dropout: a simple way to prevent neural networks from overfitting",
# JMLR 15:1929-1958, Table 9: MNIST test error % of one 784-1024-1024-2048-10 ReLU MLP under
# each regularizer (the shared literature notes, B1). Rows in the paper's order; the key is our
# variant of the same regularizer, None where the study has none.
SRIVASTAVA_TABLE9: tuple[tuple[str, str | None, float], ...] = (
    ("L2", "l2", 1.62),
    ("L2 + L1 applied towards the end of training", None, 1.60),
    ("L2 + KL-sparsity", None, 1.55),
    ("Max-norm", "max_norm", 1.35),
    ("Dropout + L2", "dropout_l2", 1.25),
    ("Dropout + max-norm", "dropout_max_norm", 1.05),
)
SRIVASTAVA_CITE = "Srivastava et al. 2014 (JMLR 15:1929-1958), Table 9"


def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:+.{digits}f}"


def _variant(name: str) -> str:
    return name.split("_lr")[0]


def grid_edges(grid: Sequence[Mapping[str, Any]], chosen: Mapping[str, Any]) -> list[str]:
    """The grid axes (strength, factor, lr) on which `chosen` sits at the lowest or highest
    value of a grid with at least 3 values: the optimum may lie outside what was tried."""
    out = []
    for axis in ("strength", "factor", "learning_rate"):
        values = sorted({g.get(axis) for g in grid if g.get(axis) is not None})
        if len(values) >= 3 and chosen.get(axis) in (values[0], values[-1]):
            low = chosen[axis] == values[0]
            out.append(f"{'lr' if axis == 'learning_rate' else axis} {'low' if low else 'high'}")
    return out


def _with_reason(
    edges: Sequence[str], tuning: Mapping[str, Any], chosen: Mapping[str, Any]
) -> list[str]:
    """Edges, with why a weakest-strength choice needs no wider grid: below it the setting
    tends to strength 0, the optimizer's tuned baseline, whose validation accuracy is shown."""
    key = "baseline" if chosen["optimizer"] == "adamw" else f"{chosen['optimizer']}.baseline"
    if "strength low" not in edges or key not in tuning["chosen"]:
        return list(edges)
    name = _setting_name(tuning["chosen"][key])
    base = next(g for g in tuning["grids"][key] if _setting_name(g) == name)
    reason = (f"strength low: the weakest tried; strength 0 is the tuned {key} "
              f"({100 * base['validation_accuracy']:.2f})")  # fmt: skip
    return [reason if e == "strength low" else e for e in edges]


def chosen_table(tuning: Mapping[str, Any]) -> str:
    heads = ["tuned", "description", "strength", "x", "lr", "optimizer", "validation acc.",
             "stop epoch", "at grid edge"]  # fmt: skip
    rows = []
    for key, ch in tuning["chosen"].items():
        name = _setting_name(ch)
        val = next(g for g in tuning["grids"][key] if _setting_name(g) == name)
        s = "-" if ch["strength"] is None else f"{ch['strength']:g}"
        x = "-" if ch.get("factor") is None else f"{ch['factor']:g}"
        edge = ", ".join(_with_reason(grid_edges(tuning["grids"][key], ch), tuning, ch)) or "-"
        rows.append([key, describe(key), s, x, f"{ch['learning_rate']:g}", ch["optimizer"],
                     f"{100 * val['validation_accuracy']:.2f}", f"{val['best_epoch']:.0f}",
                     edge])  # fmt: skip
    return markdown_table(heads, rows)


def _setting_name(d: Mapping[str, Any]) -> str:
    from .variants import Setting

    return Setting(d["regularizer"], d["strength"], d["learning_rate"], d["optimizer"],
                   d.get("factor")).name  # fmt: skip


def retune_table(results: Mapping[str, Any]) -> str:
    """The choices re-tuned at experiment.retune_size beside the tune_size ones: validation
    accuracy of both there, and whether the tune_size choice still won ('' if none)."""
    tuning = results["tuning"]
    again = tuning.get("retuned")
    if not again:
        return ""
    tune_n = results["config"]["experiment"]["tune_size"]
    heads = ["tuned", "description", f"chosen at n={tune_n}", f"chosen at n={again['n']}",
             f"validation acc. of each at n={again['n']}", "same", "at grid edge"]  # fmt: skip
    rows = []
    for key, ch in again["chosen"].items():
        names = (_setting_name(tuning["chosen"][key]), _setting_name(ch))
        grid = {_setting_name(g): g for g in again["grids"][key]}
        accs = [grid.get(name, {}).get("validation_accuracy") for name in names]
        shown = " / ".join("-" if a is None else f"{100 * a:.2f}" for a in accs)
        edge = ", ".join(grid_edges(again["grids"][key], ch)) or "-"
        rows.append([key, describe(key), _variant(names[0]), _variant(names[1]), shown,
                     "yes" if again["same"][key] else "no", edge])  # fmt: skip
    return markdown_table(heads, rows)


def stopped_share(levels: Sequence[Mapping[str, Any]]) -> str:
    """'Early stopping ended X of Y converged runs (Z%)': the cap is high enough when Z >= 95."""
    flags = [c for lv in levels if lv.get("stopping") for c in lv["stopping"]["capped_runs"]]
    if not flags:
        return ""
    stopped = len(flags) - sum(flags)
    share = 100 * stopped / len(flags)
    return (f"Early stopping ended {stopped} of {len(flags)} converged runs ({share:.0f}%; "
            "the epoch cap is high enough at >= 95%).")  # fmt: skip


def helps_claims(claims: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [c for c in claims if c["role"] == "helps"]


def other_claims(claims: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [c for c in claims if c["role"] != "helps"]


def helps_table(claims: Sequence[Mapping[str, Any]]) -> str:
    """'Each regularizer helps' at every size; the tuning size's row has the three budgets."""
    return claims_markdown(helps_claims(claims), BUDGETS)


def controls_table(claims: Sequence[Mapping[str, Any]]) -> str:
    """Early stopping, the controls and the pairs (converged, at the tuning size)."""
    return claims_markdown(other_claims(claims), ["converged"])


def levels_table(levels: Sequence[Mapping[str, Any]], only: Sequence[str] | None = None) -> str:
    heads = ["setting", "description", "n", "budget", "rows", "test acc. % [95% CI]",
             "stop epoch", "max epochs", "params", "FLOPs/example", "train s/run"]  # fmt: skip
    rows = []
    for lv in levels:
        if only is not None and lv["setting"] not in only:
            continue
        acc = lv["test_accuracy"]
        stop = "-" if lv["best_epoch_mean"] is None or lv["mode"] != "converged" else (
            f"{lv['best_epoch_mean']:.1f}")  # fmt: skip
        if lv.get("stopping"):
            stop += f" ({lv['stopping']['capped']}/{lv['rows']} capped)"
        name = _variant(lv["setting"])
        rows.append([
            name, describe(name), lv["n"], lv["mode"], lv["rows"],
            f"{100 * acc['estimate']:.2f} [{100 * acc['low']:.2f}, {100 * acc['high']:.2f}]",
            stop, lv["epochs_max"], f"{lv['num_params']:,}",
            f"{lv['forward_flops_per_example']:,}", f"{lv['train_time_sec_mean']:.1f}",
        ])  # fmt: skip
    return markdown_table(heads, rows)


def literature_table(results: Mapping[str, Any]) -> str:
    """Every row of Srivastava et al. 2014 Table 9 beside our run of the same regularizer
    (test error, 95% interval, budget and rows), '-' where the study ran none of it."""
    lit = results["config"]["experiment"].get("literature") or {}
    if not lit.get("variants"):
        return ""
    opt = lit.get("optimizer", "adamw")
    prefix = "" if opt == "adamw" else f"{opt}."
    wanted = {f"{prefix}{r}_s{s:g}": r for r, s in lit["variants"]}
    size = str(lit.get("size", "all"))
    ours = {wanted[lv["setting"].split("_lr")[0]]: lv for lv in results["analysis"]["levels"]
            if lv["setting"].split("_lr")[0] in wanted and lv["n"] == size}  # fmt: skip
    heads = [f"{SRIVASTAVA_CITE} (MLP)", "their test error %", "our variant (small CNN)",
             "description", "our test error % [95% CI]", "our budget, rows"]  # fmt: skip
    rows = []
    for label, key, paper in SRIVASTAVA_TABLE9:
        lv = ours.get(key) if key else None
        if lv is None:
            rows.append([label, f"{paper:.2f}", "- (not run)", "-", "-", "-"])
            continue
        acc = lv["test_accuracy"]
        err = (f"{100 * (1 - acc['estimate']):.2f} "
               f"[{100 * (1 - acc['high']):.2f}, {100 * (1 - acc['low']):.2f}]")  # fmt: skip
        name = _variant(lv["setting"])
        rows.append([label, f"{paper:.2f}", f"{name} (n={lv['n']})", describe(name), err,
                     f"{lv['mode']}, {lv['rows']}"])  # fmt: skip
    if not ours:
        return ""
    return markdown_table(heads, rows)


def literature_protocol(results: Mapping[str, Any]) -> str:
    """How our literature runs trained, from the config (experiment.literature)."""
    config = results["config"]
    exp = config["experiment"]
    lit = exp.get("literature") or {}
    opt = {"adamw": "AdamW", "momentum": "SGD with momentum"}.get(lit.get("optimizer", "adamw"))
    seeds = len(lit.get("seeds", (0,)))
    if lit.get("mode", "converged") == "converged":
        cap = exp.get("converged_epochs")
        budget = "early stopping on validation" + (f" (cap >= {cap} epochs)" if cap else "")
    elif lit.get("epochs"):
        budget = f"a fixed {lit['epochs']} epoch(s) at batch {lit.get('batch_size', 50)}"
    else:  # the study's 1x budget at that size (train.num_epochs scaled by size)
        budget = f"the study's {lit.get('mode')} budget at batch {lit.get('batch_size', 50)}"
    rate = "the learning rate of the tuned baseline of that optimizer (chosen on validation)"
    return f"{opt}, {budget}, n={lit.get('size', 'all')} images, {seeds} seed(s), {rate}"


def literature_text(results: Mapping[str, Any]) -> list[str]:
    """The literature block of the readme: the table and how the two protocols differ."""
    table = literature_table(results)
    if not table:
        return []
    return [
        f"**{SRIVASTAVA_CITE}, MNIST, beside ours:**", "", table, "",
        "Protocol differences: theirs is one MLP (784-1024-1024-2048-10 ReLU) trained with SGD, "
        "momentum and a decaying rate on 60k images (dropout defaults: 0.5 on hidden, 0.2 on "
        "input units); its learning rates are not in our literature notes, so "
        f"ours are tuned. Ours: a small CNN, {literature_protocol(results)}. The columns put "
        "the same regularizers side by side; the architectures differ, so only the ordering of "
        "the regularizers, not the error levels, is comparable.", "",
    ]  # fmt: skip


def zhang_text(zhang: Mapping[str, Any]) -> str:
    """One clause per size: the best gain and the 'helps' claims the family supports."""
    parts = []
    for n, z in zhang.items():
        held = ", ".join(_variant(h) for h in z["held"]) or "none"
        parts.append(f"n={n}: best {_variant(z['best'])} {_pct(z['best_delta'])} pts; "
                     f"'helps' held (Holm over the study): {held}")  # fmt: skip
    return "; ".join(parts)


def capped_text(analysis: Mapping[str, Any]) -> str:
    """How many converged claims rest on capped runs, and what that means for their labels."""
    k = analysis.get("capped_claims")
    if k is None:
        return ""
    if not k:
        return "Every converged row stopped early (no run hit the epoch cap)."
    return (
        f"{k} converged claim(s) rest on capped runs (early stopping never triggered: the run "
        "ended at the epoch cap; each such claim names its counts): there 'converged' means "
        "'trained to the cap', and a label may reflect a variant that was still learning. The "
        "capped rows are kept, not dropped: dropping only the slow runs would bias the pairs."
    )


def design_line(results: Mapping[str, Any]) -> str:
    """The design, the claims family and the margin rule, in one paragraph."""
    a, exp = results["analysis"], results["config"]["experiment"]
    family = max((v["family_size"] for c in a["claims"] for v in c["budgets"].values()), default=0)
    m, load = a["margin"], results.get("load_average_at_start")
    tally = ", ".join(f"{k} {v}" for k, v in sorted(a["counts"].items()))
    return (
        f"Dataset {results['dataset']}; tuned on validation at n={exp['tune_size']} "
        f"(seeds {list(exp['tune_seeds'])}); evaluated on {len(exp['draws'])} subset draws x "
        f"{len(exp['seeds'])} seeds; {len(a['claims'])} claims judged by the claims engine "
        f"(`cnn_jax.stats.judge`: Holm over the study's {family} one-sided hypotheses, alpha "
        f"{a['alpha']:g}); equivalence margin {100 * m['relative']:g}% of the baseline's test "
        f"error, at least {100 * m['floor']:g} pt{_cap_text(m)}. Results: {tally}. "
        f"Training {results.get('units_wall_sec_total', 0) / 60:.1f} min summed over "
        f"{results.get('units', 0)} trainer calls (whichever process made them); this "
        f"analysis {results['wall_time_sec'] / 60:.1f} min (load average at start {load})."
    )


def readme_markdown(results: Mapping[str, Any]) -> str:
    """The README section: the claims (size curve, budgets), controls, literature, Zhang."""
    a = results["analysis"]
    out = [
        design_line(results), "", "![gain vs n](gain_vs_size.png)", "",
        "**Each regularizer helps** (variant minus the tuned baseline; at the tuning size the "
        "fixed 1x / 3x budgets and converged are one claim, their dependence tested as an "
        "interaction):", "", helps_table(a["claims"]), "",
        "**Early stopping, controls and pairs** (converged, at the tuning size):", "",
        controls_table(a["claims"]), "", capped_text(a), "",
        "**Stopping epochs of the converged runs** (best epoch per run; * capped: early "
        "stopping never triggered):", "", stopping_table(a["levels"]), "",
    ]  # fmt: skip
    out += [stopped_share(a["levels"]), ""]
    again = retune_table(results)
    if again:
        out += ["**Re-tuned at the largest n** (validation only; the size curve there uses these):",
                "", again, ""]  # fmt: skip
    out += literature_text(results)
    out += [f"**Zhang et al. 2017 check:** {zhang_text(a['zhang'])}.", ""]
    speed = results.get("vmap_speed") or {}
    if speed.get("median_speedup"):
        out += [f"Seeds vmapped (K = {max(speed['seeds_per_vmapped_program'])}) vs one seed per "
                f"program: {speed['median_speedup']:.2f}x training time per seed and step "
                f"(median over {speed['cells']} matched cells, shared machine); grids "
                f"{speed['grid_vmapping']}.", ""]  # fmt: skip
    return "\n".join(out)


def summary_markdown(results: Mapping[str, Any]) -> str:
    a = results["analysis"]
    return "\n".join([
        f"# Regularizer study: {results['dataset']}", "", design_line(results), "",
        "## Chosen on validation", "", chosen_table(results["tuning"]), "",
        "## Each regularizer helps (sizes, budgets)", "", helps_table(a["claims"]), "",
        "## Early stopping, controls and pairs", "", controls_table(a["claims"]), "",
        capped_text(a), "",
        "## Stopping epochs (converged runs; * capped)", "", stopping_table(a["levels"]), "",
        stopped_share(a["levels"]), "",
        "## Re-tuned at the largest n", "", retune_table(results) or "(no re-tuning)", "",
        "## Levels (test accuracy, stopping epoch, compute)", "", levels_table(a["levels"]), "",
    ])  # fmt: skip


def _tuning_x(key: str, g: Mapping[str, Any]) -> float:
    return g["factor"] if key == "all" else g["strength"]


def plot_tuning(tuning: Mapping[str, Any], dataset: str = ""):
    """Validation accuracy (%) against strength, one panel per tuned regularizer, a line per lr."""
    keys = [k for k, g in tuning["grids"].items() if any(x["strength"] is not None for x in g)
            or k == "all"]  # fmt: skip
    n = max(len(keys), 1)
    fig, axes = plots.figure(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        grid = tuning["grids"][key]
        lrs = sorted({g["learning_rate"] for g in grid})
        colors = plots.variant_colors([f"lr {lr:g}" for lr in lrs])
        for lr in lrs:
            pts = sorted((_tuning_x(key, g), plots.PERCENT * g["validation_accuracy"])
                         for g in grid if g["learning_rate"] == lr)  # fmt: skip
            ax.plot(*zip(*pts), marker="o", color=colors[f"lr {lr:g}"], label=f"lr {lr:g}")
        plots.log_xaxis(ax, [_tuning_x(key, g) for g in grid])
        ax.set_title(describe(key), fontsize=9)
        ax.set_xlabel("joint factor" if key == "all" else "strength")
        ax.set_ylabel("validation accuracy (%)")
        plots.legend(ax, fontsize=7)
    fig.suptitle(plots.title("tuning grid", dataset), fontsize=9)
    return fig


def _converged_gains(results: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(variant, n, converged verdict dict) of every 'helps' claim measured converged."""
    return [
        (_variant(c["a"]).split("_s")[0], c["n"], c["budgets"]["converged"])
        for c in helps_claims(results["analysis"]["claims"])
        if "converged" in c["budgets"]
    ]


def plot_gain_vs_size(results: Mapping[str, Any]):
    """The headline: paired gain over the tuned baseline against n, one colour per variant."""
    rows = _converged_gains(results)
    names = list(dict.fromkeys(name for name, _, _ in rows))
    colors = plots.variant_colors(names)
    labels = plots.spelled(names, describe)
    x_of = {n: results["train_size_all"] if n == "all" else int(n) for _, n, _ in rows}
    fig, ax = plots.figure(figsize=(8.4, 4.0))
    for i, name in enumerate(names):
        mine = [(n, v) for nm, n, v in rows if nm == name]
        xs = [x_of[n] * (1 + 0.04 * (i - len(names) / 2)) for n, _ in mine]
        ivs = [{"estimate": v["estimate"]["delta"], "low": v["low"], "high": v["high"]}
               for _, v in mine]  # fmt: skip
        plots.interval_errorbar(ax, xs, ivs, label=labels[name], color=colors[name],
                                scale=plots.PERCENT, linestyle="-")  # fmt: skip
    ax.axhline(0, color="black", linewidth=0.8)
    plots.log_xaxis(ax, x_of.values())
    ax.set_xlabel("training images n")
    ax.set_ylabel("test accuracy gain over\ntuned baseline (% points)")
    ax.set_title(plots.title(results["dataset"], "converged budget (early stopping)",
                             "paired gain, 95% CI (draws x seeds)"), fontsize=9)  # fmt: skip
    plots.legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return fig


def write_all(results: Mapping[str, Any], workdir: str | Path) -> None:
    """results.json, summary.md, readme.md, tuning.png, gain_vs_size.png in `workdir`."""
    workdir = Path(workdir)
    atomic_write_json(workdir / "results.json", results)
    atomic_write_text(workdir / "summary.md", summary_markdown(results) + "\n")
    atomic_write_text(workdir / "readme.md", readme_markdown(results) + "\n")
    plots.save(plot_tuning(results["tuning"], results["dataset"]), workdir / "tuning.png")
    plots.save(plot_gain_vs_size(results), workdir / "gain_vs_size.png")


def _cap_text(margin: Mapping[str, Any]) -> str:
    """', at most 1 pt' when the margin rule has a cap (older analyses had none)."""
    cap = margin.get("cap")
    return "" if cap is None else f", at most {100 * cap:g} pt"
