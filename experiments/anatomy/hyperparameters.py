r"""Conv hyperparameters without confounds: stride, kernel size, depth, padding, borders.

    python -m experiments.anatomy.hyperparameters \
        --config=experiments/anatomy/configs/hyperparameters_smoke.py --workdir=runs/hyper_smoke
    python -m experiments.anatomy.hyperparameters \
        --config=experiments/anatomy/configs/hyperparameters_full.py --workdir=runs/hyperparameters

The variants (`experiments.anatomy.variants`): stride at a fixed classifier (GAP head, and a
parameter-matched flatten head, beside the current flatten head); a 3x3 stack against one
large kernel at the same receptive field, matched in parameters and in FLOPs; accuracy
against depth for k3 SAME / VALID and a large VALID kernel (only depths that fit); SAME /
VALID / CIRCULAR on digits touching the canvas edge (`experiments.anatomy.border`). Every variant
trains over seeds through `cnn_jax.runs.sweep.run_sweep` at each budget of experiment.budgets
(train.budget_factor); the study declares its claims
(`experiments.anatomy.hyperparameters_claims`) and the claims engine judges them. Writes to
--workdir: runs/<budget>/<variant>/..., results.json, table_<part>.md, claims.md, readme.md,
hyperparameters.png; full configs publish them to results/<experiment.record_as>
(`cnn_jax.runs.record`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from cnn_jax import datasets
from cnn_jax.config.specs import DatasetSpec
from cnn_jax.outputs.claims_report import claims_markdown
from cnn_jax.outputs.markdown import markdown_table
from cnn_jax.outputs.predictions import path_of
from cnn_jax.outputs.writers import atomic_write_json, atomic_write_text
from cnn_jax.run_setup import check_dataset, load_dataset
from cnn_jax.runs import progress, record

from .. import cli
from . import border, claims, plots, report, variants
from . import hyperparameters_claims as hclaims

PARTS = ("stride", "kernels", "depth", "border")


def score_borders(rows: Sequence[Mapping[str, Any]], canvas: int) -> None:
    """Scores every border_* seed on the edge / centre test sets (once per run)."""
    sets = None
    for row in rows:
        if (
            row["variant"].startswith("border_")
            and not path_of(row["run_dir"], "test_edge").exists()
        ):
            sets = sets or border.test_sets(canvas)
            border.score_run(row["run_dir"], sets)


def loaded_datasets(configs: Mapping[str, ml_collections.ConfigDict]) -> list[datasets.Dataset]:
    """Each distinct dataset the variants train on (the border part: randomly placed digits),
    from each config's validated dataset section (`DatasetSpec`)."""
    seen = {}
    for c in configs.values():
        spec = DatasetSpec.from_config(c.dataset)
        key = (spec.name, spec.options)
        if key not in seen:
            seen[key] = load_dataset(spec)
    return list(seen.values())


def _acc(groups, name: str, split: str = "test") -> str:
    if name not in groups:
        return "-"
    return report.accuracy_interval(report.correct_sn(groups[name], split)).fmt()


def _seconds(rows: Sequence[Mapping[str, Any]]) -> str:
    per_seed = [r["results"]["train_time_sec"] / r["results"].get("num_seeds", 1) for r in rows]
    return f"{np.mean(per_seed):.1f}"


def part_table(names, geometries, groups_by_budget, splits=("test",)) -> tuple[list, list]:
    """One row per variant: what it is (`variants.describe`), geometry, params, FLOPs, accuracy
    per budget (and split), time."""
    budgets = list(groups_by_budget)
    headers = ["variant", "description", "layer sides", "RF", "params", "head params", "MFLOPs"]
    headers += [f"{s} acc % {b}" for b in budgets for s in splits]
    headers += [f"train s/seed {b}" for b in budgets]
    rows = []
    for name in names:
        g = geometries[name]
        sides = "→".join(str(x) for x in g["layer_sizes"])
        row = [name, variants.describe(name), sides, g["receptive_field"], g["params"]]
        row += [g["head_params"], f"{g['flops'] / 1e6:.3f}"]
        row += [_acc(groups_by_budget[b], name, s) for b in budgets for s in splits]
        row += [_seconds(groups_by_budget[b][name]) if name in groups_by_budget[b] else "-"
                for b in budgets]  # fmt: skip
        rows.append(row)
    return headers, rows


def readme_text(tables: Mapping[str, str], claims_md: str, meta: Mapping[str, Any]) -> str:
    """The record's readme: setup line, one table per part, claims (fresh or re-analysed)."""
    lines = [
        f"**Conv hyperparameters** on {meta['dataset']} {meta['image_shape']}: "
        f"{len(meta['seeds'])} seeds, budgets {meta['budgets']} (x {meta['epochs']} epochs), "
        f"accuracy mean [95% seeds x images interval]; wall {meta['wall_time_sec'] / 60:.1f} min.",
        "",
    ]
    for part, text in tables.items():
        lines += [f"*{part}*", "", text]
    lines += ["*Claims* (a − b in points; the claims engine, one Holm family for the study)", ""]
    return "\n".join(lines + [claims_md])


def write_part_tables(
    by_part: Mapping[str, Mapping[str, Any]],
    geometries: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, list]],
    workdir: Path,
) -> dict[str, str]:
    """One Markdown and CSV table per part (the border part adds its edge and centre splits)."""
    tables = {}
    for part, named in by_part.items():
        splits = ("test", "test_edge", "test_center") if part == "border" else ("test",)
        headers, table_rows = part_table(list(named), geometries, groups, splits)
        tables[part] = markdown_table(headers, table_rows)
        atomic_write_text(workdir / f"table_{part}.md", tables[part])
        atomic_write_text(workdir / f"table_{part}.csv", report.csv_text(headers, table_rows))
    return tables


def run_experiment(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains every variant x seed x budget (resuming), then tables, claims, plot, record."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    exp = config.experiment
    for part in exp.parts:
        if part not in PARTS:
            raise ValueError(f"experiment.parts: unknown {part!r}; allowed: {', '.join(PARTS)}")
    t0, load_at_start = time.time(), record.load_average()
    ds = check_dataset(config)  # the validated dataset section (`DatasetSpec`)
    shape, size = tuple(ds.image_shape), int(ds.image_shape[0])
    by_part = variants.all_variants(config, shape, ds.num_classes)
    configs = {n: c for part in by_part.values() for n, c in part.items()}
    geometries = {n: variants.geometry(c, shape, ds.num_classes) for n, c in configs.items()}
    budgets = report.budgets_in_order(exp.budgets)
    print(f"{len(configs)} variants x seeds {list(exp.seeds)} x budgets {budgets}")
    only = {b: list(v) for b, v in dict(exp.get("budget_variants") or {}).items()}
    runs = report.planned_runs(configs, workdir / "runs", exp.seeds, list(budgets), False, only)
    progress.expect_rest(runs)  # every budget counted before the first trains
    rows = report.train_budgets(
        configs, workdir / "runs", exp.seeds, budgets, bool(exp.vmap_seeds), False, only
    )
    for budget_rows in rows.values():
        score_borders(budget_rows, size)
    groups = {b: report.by_variant(r) for b, r in rows.items()}
    choices = {b: hclaims.depth_choices(exp, g, size) for b, g in groups.items()}
    aliased = {b: hclaims.with_aliases(g, choices[b]) for b, g in groups.items()}
    judged = hclaims.judge_study(exp, geometries, size, claims.fresh_accuracy(aliased))
    claim_dicts = [r.as_dict() for r in judged]
    claims_md = claims_markdown(claim_dicts, list(budgets))
    tables = write_part_tables(by_part, geometries, groups, workdir)
    meta = {
        "dataset": ds.name,
        "image_shape": list(shape),
        "seeds": list(exp.seeds),
        "budgets": budgets,
        "epochs": int(config.train.num_epochs),
        "vmap_seeds": bool(exp.vmap_seeds),
        "budget_variants": only,
        "wall_time_sec": time.time() - t0,
        "load_at_start": list(load_at_start),
    }
    results = {
        **meta,
        "parts": {p: list(v) for p, v in by_part.items()},
        "geometry": geometries,
        "depth_choices": choices,
        "claims": claim_dicts,
        "verdicts": claims.counts(claim_dicts),
    }
    atomic_write_json(workdir / "results.json", results)
    atomic_write_text(workdir / "claims.md", claims_md)
    atomic_write_text(workdir / "readme.md", readme_text(tables, claims_md, meta))
    plots.hyperparameters_figure(exp, by_part, geometries, groups, size,
                                 workdir / "hyperparameters.png", ds.name)  # fmt: skip
    print("\n".join(tables.values()))
    print(claims_md)
    files = ["results.json", "claims.md", "readme.md", "table_*.md", "table_*.csv", "*.png"]
    record.maybe_publish(
        config, workdir, files, dataset=loaded_datasets(configs), wall_time_sec=time.time() - t0,
        command=" ".join(sys.argv), load_at_start=load_at_start,
    )  # fmt: skip
    print(f"Wrote {workdir}: results.json, tables, claims.md, readme.md ({time.time() - t0:.0f} s)")
    return results


if __name__ == "__main__":
    cli.main(
        run_experiment,
        default_config="experiments/anatomy/configs/hyperparameters_smoke.py",
        default_workdir="runs/hyperparameters",
    )
