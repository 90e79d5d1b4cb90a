r"""Memorization study (Zhang et al. 2017) on MNIST and Fashion-MNIST: time to fit true labels,
random labels and shuffled pixels, with and without explicit regularizers.

    python -m experiments.memorization.main \
        --config=experiments/memorization/configs/smoke.py --workdir=runs/memorization_smoke
    python -m experiments.memorization.main \
        --config=experiments/memorization/configs/mnist.py --workdir=runs/memorization_mnist

Trains every data x regularizer condition (`conditions`) x seed (`cnn_jax.runs.sweep`), reads
each run's epochs to the fit threshold (censored at the cap) and scores its training split per
image (`fit`), judges the declared claims with the claims engine (`claims`) and writes
results.json, conditions.md, claims.md and readme.md to --workdir; a config of record publishes
them to results/<experiment.record_as>.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax.outputs.claims_report import claims_markdown
from cnn_jax.outputs.writers import atomic_write_json, atomic_write_text
from cnn_jax.run_setup import load_dataset
from cnn_jax.runs import record
from cnn_jax.runs.sweep import run_sweep, without_diverged
from cnn_jax.stats.censored import km_median

from .. import cli
from . import claims, conditions, fit, report

FILES = ("results.json", "conditions.md", "claims.md", "readme.md")


def measure(config: ml_collections.ConfigDict, rows: list[dict]) -> dict[str, dict[str, list]]:
    """Per condition: per-seed epochs to fit, caps, training and test accuracy, KM median."""
    spe = conditions.steps_per_epoch(config)
    per = fit.per_condition(rows, float(config.experiment.fit_threshold), spe)
    claims.add_horizons(per, spe)
    for c in per.values():
        times = [h if e is None else e for e, h in zip(c["epochs"], c["horizon_epochs"])]
        c["km_median"] = km_median(times, [e is not None for e in c["epochs"]])[0]
    return per


def run_experiment(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains every condition, measures time to fit and fit, judges the claims, writes tables."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0, load_at_start = time.time(), record.load_average()
    exp = config.experiment
    cfgs = conditions.configs(config)
    rows = run_sweep(cfgs, workdir / "runs", exp.seeds, vmap_seeds=bool(exp.vmap_seeds))
    rows = without_diverged(rows)  # a diverged member has no accuracy to measure
    per = measure(config, rows)
    judged = [r.as_dict() for r in claims.judge_study(exp, per)]
    ds, spe = load_dataset(config), conditions.steps_per_epoch(config)
    results = {
        "dataset": ds.name, "train_images": len(ds.train), "seeds": list(exp.seeds),
        "epochs": int(config.train.num_epochs), "steps_per_epoch": spe,
        "fit_threshold": float(exp.fit_threshold), "fit_margin": float(exp.fit_margin),
        "conditions": {k: {f: v for f, v in c.items() if f != "run_dir"} for k, c in per.items()},
        "claims": judged, "verdicts": claims.counts(judged), "config": config.to_dict(),
        "wall_time_sec": time.time() - t0, "load_at_start": list(load_at_start),
    }  # fmt: skip
    claims_md = claims_markdown(judged, [claims.BUDGET])
    atomic_write_json(workdir / "results.json", results)
    atomic_write_text(workdir / "conditions.md", report.conditions_table(results) + "\n")
    atomic_write_text(workdir / "claims.md", claims_md)
    atomic_write_text(workdir / "readme.md", report.readme_markdown(results) + "\n")
    print(report.conditions_table(results), claims_md, sep="\n\n")
    record.maybe_publish(
        config, workdir, FILES, dataset=ds, wall_time_sec=time.time() - t0,
        command=" ".join(sys.argv), load_at_start=load_at_start,
    )  # fmt: skip
    print(f"Wrote {workdir}: {', '.join(FILES)} ({time.time() - t0:.0f} s)")
    return results


if __name__ == "__main__":
    cli.main(
        run_experiment,
        default_config="experiments/memorization/configs/smoke.py",
        default_workdir="runs/memorization_smoke",
    )
