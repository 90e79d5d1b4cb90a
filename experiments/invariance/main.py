r"""Translation invariance under the literature's protocols.

    python -m experiments.invariance.main \
        --config=experiments/invariance/configs/smoke.py --workdir=runs/invariance_smoke

Protocols (`config.experiment.protocols`; variants in `invariance_variants`):
- 'zhang': Zhang 2019 (ICML): shift-augmented training, two random shifts per test image;
  max vs MaxBlurPool (Rect-2, Tri-3, Bin-5) vs GAP head vs strided vs strided + BlurPool.
- 'azulay': Azulay & Weiss 2019 (JMLR): black canvas, P(top-1 change) and MAC for 1-pixel
  diagonal shifts, with and without shift augmentation.
- 'budget': the Zhang comparisons again at 3x training budget (train.budget_factor), for the
  variants named in experiment.budget_variants.
- 'depth': the seed's claim, accuracy and consistency against shift distance for 0..3
  downsampling stages (max, strided, blurred; with and without augmentation), the distance
  at which above-chance accuracy halves, and the two-dots test through trained layers.
- 'kayhan': Kayhan & van Gemert 2020 (CVPR): red-green absolute position, V / S-zero /
  S-circular / F-zero padding, similar vs dissimilar test sets.
- 'learned': learned vs built-in invariance, the Zhang nets (max, Tri-3, GAP, strided) trained
  with random shifts up to r px, accuracy and consistency against test shifts beyond r.

Training goes through `cnn_jax.runs.sweep.run_sweep` (seeds vmapped, finished runs reused);
each run's shifted predictions are saved once (`invariance_eval`) and every number is
computed from those files (`invariance_analysis`). Writes results.json, readme.md (tables
and verdicts) and the figures to --workdir; with `experiment.record_as` set, publishes them
to results/<study>/ (`cnn_jax.runs.record.publish`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax.config.checks import check_choice
from cnn_jax.outputs.writers import atomic_write_json, atomic_write_text
from cnn_jax.run_setup import check_dataset, load_dataset
from cnn_jax.runs import record
from cnn_jax.runs.sweep import run_sweep, without_diverged

from .. import cli
from . import evaluate, report
from .variants import variant_config

PROTOCOLS = ("zhang", "azulay", "budget", "depth", "kayhan", "learned")
SETS = {
    "learned": ("zhang", "azulay", "learned"),
    "zhang": ("zhang", "azulay"),
    "azulay": ("zhang", "azulay"),
    "budget": ("zhang", "azulay"),
    "depth": ("zhang", "azulay", "distance"),
    "kayhan": ("zhang", "azulay", "dissimilar"),
}
PUBLISHED = ("results.json", "readme.md", "*.png")


def study_variants(exp: ml_collections.ConfigDict) -> dict[str, tuple[str, ...]]:
    """Variant -> the shift sets it is evaluated on, over every protocol of the study."""
    out: dict[str, set[str]] = {}
    for protocol in exp.protocols:
        check_choice("experiment.protocols", protocol, PROTOCOLS)
        for v in exp[f"{protocol}_variants"]:
            out.setdefault(v, set()).update(SETS[protocol])
    order = evaluate.SETS + ("dissimilar",)
    return {v: tuple(s for s in order if s in sets) for v, sets in out.items()}


def _num_classes(config: ml_collections.ConfigDict) -> int:
    return check_dataset(config).num_classes


def train_and_evaluate_all(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, list]:
    """Trains every variant x seed (run_sweep) and saves their shifted predictions."""
    exp = config.experiment
    variants = study_variants(exp)
    classes = _num_classes(config)
    configs = {v: variant_config(config, v, classes) for v in variants}
    seeds = [int(s) for s in exp.seeds]
    print(f"Training {len(configs)} variants x {len(seeds)} seeds in {workdir / 'runs'}")
    rows = run_sweep(configs, workdir / "runs", seeds, vmap_seeds=bool(exp.vmap_seeds))
    rows = without_diverged(rows)  # a diverged member has no model to evaluate
    by_variant: dict[str, list] = {}
    for i, row in enumerate(rows):
        t0 = time.time()
        evaluate.evaluate_run(row["run_dir"], exp, variants[row["variant"]])
        by_variant.setdefault(row["variant"], []).append(row)
        print(f"evaluated [{i + 1}/{len(rows)}] {row['variant']} seed {row['seed']} "
              f"({time.time() - t0:.1f} s)", flush=True)  # fmt: skip
    return by_variant


def run_experiment(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains, evaluates and analyses every protocol; writes results, tables and figures."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0, load_at_start = time.time(), record.load_average()
    by_variant = train_and_evaluate_all(config, workdir)
    results = report.analyse(config, by_variant, workdir)
    results["wall_time_sec"] = time.time() - t0
    atomic_write_json(workdir / "results.json", results)
    atomic_write_text(workdir / "readme.md", report.markdown(results))
    print(report.markdown(results))
    print(f"Results, tables and figures in {workdir}/ ({results['wall_time_sec']:.0f} s)")
    _publish(config, workdir, results, load_at_start)
    return results


def _publish(config, workdir: Path, results: Mapping, load_at_start) -> None:
    """results/<record_as>/ with provenance (the dataset as the baseline variant loads it)."""
    study = config.experiment.get("record_as")
    if not study:
        return
    dataset = load_dataset(config)  # the validated dataset section (`DatasetSpec`)
    record.publish(
        study, workdir, PUBLISHED, config=config, dataset=dataset, load_at_start=load_at_start,
        wall_time_sec=float(results["wall_time_sec"]),
    )  # fmt: skip


if __name__ == "__main__":
    cli.main(
        run_experiment,
        default_config="experiments/invariance/configs/smoke.py",
        default_workdir="runs/translation_invariance",
    )
