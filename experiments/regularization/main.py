r"""Regularizer study, measured fairly: strengths and learning rates tuned on the
validation split, every variant trained to convergence and at fixed 1x/3x budgets, the gain over
the tuned baseline against training-set size, compute-matched controls, literature anchors.

    python -m experiments.regularization.main \
        --config=experiments/regularization/configs/smoke.py --workdir=runs/regularization_smoke
    python -m experiments.regularization.main \
        --config=experiments/regularization/configs/fashion_mnist.py \
        --workdir=runs/regularization_fashion_mnist
    python -m experiments.regularization.main \
        --config=experiments/regularization/configs/mnist.py --workdir=runs/regularization_mnist

Phases (each resumable: finished runs are cache hits of `cnn_jax.runs.sweep.run_sweep`):
1. tune (`regularization_tuning`): grids on validation at experiment.tune_size;
2. sizes: the chosen settings of experiment.variants at every experiment.sizes x draws x seeds,
   converged (early stopping under 3x the budget);
3. budgets: the same at tune_size at fixed 1x and 3x budgets (draws experiment.budget_draws);
4. controls: pooling vs strided at matched parameters / FLOPs, L1/L2/decoupled decay under SGD
   with momentum and AdamW (converged, at tune_size);
5. literature (experiment.literature.variants): Srivastava-style dropout/L2/max-norm runs.
Then `analysis` measures the claims the study declares (`claims`: paired per-image estimates on
matched draws x seeds) and the claims engine judges them (one Holm family for the study, budget
dependence as an interaction); `report` writes results.json, summary.md, readme.md and the
figures; a full config (experiment.record_as) publishes them with `cnn_jax.runs.record`.
A record is re-judged without retraining by `python -m experiments.regularization.reanalyse`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax import datasets
from cnn_jax.config.specs import DatasetSpec
from cnn_jax.outputs.writers import read_json
from cnn_jax.run_setup import load_dataset
from cnn_jax.runs import progress, record

from .. import cli
from ..config_cli import with_dotted
from . import analysis as regularization_analysis
from . import report, stopping
from .claims import margin_of
from .runs import check_epochs, parse_size, size_label, train_cells
from .tuning import chosen_at, chosen_settings, retune, tune_all, validation_view
from .variants import Setting

RECORD_FILES = ("results.json", "summary.md", "readme.md", "*.png")


def _full_dataset(config: ml_collections.ConfigDict) -> datasets.Dataset:
    data = DatasetSpec.from_config(config.dataset)
    drop = ("train_subset", "subset_seed")
    options = tuple((k, v) for k, v in data.options if k not in drop)
    return load_dataset(dataclasses.replace(data, options=options))


def _train_size_all(config: ml_collections.ConfigDict) -> int:
    return len(_full_dataset(config).train)


def _unit_walls(root: Path) -> dict[str, float]:
    """Summed wall and train seconds of every trainer call under `root` (a resumed study's
    true training time, whichever process trained each run); vmapped seeds share one call."""
    wall = train = count = 0.0
    for path in root.rglob("seed_*/results.json"):
        res = read_json(path)
        k = res.get("num_seeds", 1)
        wall += res["wall_time_sec"] / k
        train += res["train_time_sec"] / k
        count += 1 / k
    return {"wall": wall, "train": train, "count": round(count)}


def _validation_train(config, root: Path, size_all: int, n: int | None):
    """The tuning `TrainFn` at size n: trains settings on draw experiment.tune_draw with
    experiment.tune_seeds (converged) and hands back only their mean validation numbers."""
    exp = config.experiment

    def train(settings: Sequence[Setting], strengths: Mapping[str, float | None]):
        rows = train_cells(
            config, root, settings, n=n, draws=[exp.tune_draw], mode="converged",
            seeds=exp.tune_seeds, strengths=strengths, train_size_all=size_all,
            verbose=False,  # the sweep's progress line shows test accuracy: not while tuning
        )  # fmt: skip
        views: dict[str, list[dict[str, float]]] = {}
        for row in rows:  # only validation numbers leave this function
            view = validation_view(row["results"])
            views.setdefault(row["setting"].name, []).append(view)
            progress.say(f"tune {row['key']} seed {row['seed']}: validation accuracy "
                         f"{view['validation_accuracy']:.4f} ({row['status']})")  # fmt: skip
        return {name: _mean_view(v) for name, v in views.items()}

    return train


def tuning_phase(config, root: Path, size_all: int) -> dict[str, Any]:
    """Grids on validation (see regularization_tuning); the test split is not read here.
    With experiment.retune_size, the choices are re-tuned there too (record['retuned'])."""
    exp = config.experiment
    record = tune_all(exp, _validation_train(config, root, size_all, parse_size(exp.tune_size)))
    if exp.get("retune_size") is not None:
        n = parse_size(exp.retune_size)
        record["retuned"] = retune(exp, record, _validation_train(config, root, size_all, n))
    return record


def _mean_view(views: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {k: sum(v[k] for v in views) / len(views) for k in views[0]}


def evaluation_phase(config, root: Path, tuning: Mapping[str, Any], size_all: int) -> list[dict]:
    """Trains the chosen settings for the size curve, the budgets, controls and literature."""
    exp = config.experiment
    chosen = chosen_settings(tuning)
    strengths = tuning.get("all_strengths", {})
    main = [chosen[v] for v in exp.variants]
    common = {"seeds": exp.seeds, "strengths": strengths, "train_size_all": size_all}
    tune_n = parse_size(exp.tune_size)
    rows = []
    for n in [parse_size(s) for s in exp.sizes]:
        draws = exp.draws if n is not None else exp.draws[:1]  # one 'all': draws would repeat
        here, here_strengths = chosen_at(tuning, size_label(n))  # re-tuned at retune_size
        rows += train_cells(
            config, root, [here[v] for v in exp.variants], n=n, draws=draws, mode="converged",
            **dict(common, strengths=here_strengths),
        )  # fmt: skip
    for mode in ("1x", "3x"):
        rows += train_cells(
            config, root, main, n=tune_n, draws=exp.budget_draws, mode=mode, **common
        )
    controls = [chosen[c if c in chosen else c.split(".")[1]] for c in exp.controls]
    controls += [chosen[k] for k in chosen if k.endswith(".baseline")]
    if controls:
        rows += train_cells(
            config, root, controls, n=tune_n, draws=exp.budget_draws, mode="converged", **common
        )
    lit = exp.get("literature") or {}
    if lit.get("variants"):
        opt = lit.get("optimizer", "adamw")
        lr = chosen["baseline" if opt == "adamw" else f"{opt}.baseline"].learning_rate
        settings = [Setting(name, s, lr, opt) for name, s in lit.variants]
        lit_config = with_dotted(config, {"train.batch_size": lit.get("batch_size", 50)})
        rows += train_cells(
            lit_config, root, settings, n=parse_size(lit.size), draws=[0],
            mode=lit.get("mode", "converged"), epochs=lit.get("epochs"),
            **dict(common, seeds=lit.seeds),
        )  # fmt: skip
    return rows


# What a planned run hands back to the study's code: a validation view that ties every choice.
PLANNED_RESULTS = {"final": {"validation": {"accuracy": 0.0, "loss": 0.0}}, "test_accuracy": 0.0}


def planned_runs(config, root: Path, size_all: int, tuning: Mapping | None = None) -> int:
    """The runs the study's sweeps will still announce: its phases run inside
    `progress.planning` (sweeps count, nothing trains). Without `tuning`, the tuning phase
    too, its choices stand-ins (every setting ties: the runs after tuning may differ by a
    neighbour or two, recounted with the real `tuning` once it is done)."""
    with progress.planning(PLANNED_RESULTS) as plan:
        if tuning is None:
            tuning = tuning_phase(config, root, size_all)
        evaluation_phase(config, root, tuning, size_all)
    return plan.runs


def run_experiment(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """The whole study (resuming); writes the tables and plots; publishes a full config."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0, load_at_start = time.time(), record.load_average()
    config = config.copy_and_resolve_references()
    margin_of(config.experiment)  # a bad margin stops here, before any training
    check_epochs(config)  # so does an epoch field the study would not read
    root = workdir / "runs"
    size_all = _train_size_all(config)
    progress.expect_rest(planned_runs(config, root, size_all))  # every phase, before the first
    tuning = tuning_phase(config, root, size_all)
    progress.expect_rest(planned_runs(config, root, size_all, tuning))  # the real choices
    rows = evaluation_phase(config, root, tuning, size_all)
    analysis = regularization_analysis.analyse(config, tuning, rows)
    units = _unit_walls(root)
    patience = stopping.patience_of(config)
    summaries = list({r["key"] + f"/{r['seed']}": regularization_analysis.run_summary(r, patience)
                      for r in rows}.values())  # fmt: skip
    results = {
        "config": config.to_dict(),
        "dataset": config.dataset.name,
        "train_size_all": size_all,
        "tuning": tuning,
        "analysis": analysis,
        "runs": summaries,
        "vmap_speed": regularization_analysis.vmap_speed(summaries),
        "wall_time_sec": time.time() - t0,
        "units_wall_sec_total": units["wall"],  # every trainer call, this process or earlier
        "units_train_sec_total": units["train"],
        "units": units["count"],
        "load_average_at_start": load_at_start,
        "load_average_at_end": record.load_average(),
    }
    report.write_all(results, workdir)
    print(report.summary_markdown(results))
    record.maybe_publish(
        config, workdir, RECORD_FILES, dataset=_full_dataset(config),
        wall_time_sec=max(results["wall_time_sec"], units["wall"]), load_at_start=load_at_start,
    )  # fmt: skip
    print(f"Results, tables and plots in {workdir}/ ({results['wall_time_sec']:.1f} s)")
    return results


if __name__ == "__main__":
    cli.main(
        run_experiment,
        default_config="experiments/regularization/configs/smoke.py",
        default_workdir="runs/regularization_smoke",  # the default --config is the smoke one
    )
