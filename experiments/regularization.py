r"""Regularizer study: each of the seed notes' regularizers alone and all together, over seeds.

    python -m experiments.regularization \
        --config=experiments/configs/regularization_smoke.py --workdir=runs/regularization_smoke
    python -m experiments.regularization --config=experiments/configs/regularization_full.py \
        --workdir=runs/regularization_full [--vmap_seeds] [--strength_sweeps] [--speed_test]

A small-data regime (e.g. 1,000 MNIST training images) where an unregularized CNN overfits.
The baseline has no regularizer at all (strided convs instead of pooling, no decay); each
variant switches one regularizer on (batch_norm, dropout, l1, l2, weight_decay,
early_stopping, augment, noise, pooling), `all` switches every one on. `--strength_sweeps`
adds the strengths listed in config.experiment.sweeps (e.g. `dropout_0.3`).

Every run trains through the one trainer: `cnn_jax.sweep.run_sweep` (seeds one after the
other) or, with `--vmap_seeds`, `train_and_evaluate` with `train.num_seeds = K` (the K seeds
of a variant as one vmapped program; seeds must then be consecutive). Both write
runs/<variant>/seed_<s>/{metrics.jsonl,results.json}; finished runs are skipped on re-runs.

Writes to --workdir: results.json (settings, one row per run, summary with mean/std/95% CI,
learning curves, weight histograms), runs.csv, summary.csv, summary.md, test_accuracy.png,
learning_curves.png, validation_loss.png, weight_histograms.png. `--speed_test` instead
times K vmapped seeds against K sequential runs of the baseline (speed/speed.json).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import flags

from cnn_jax import datasets
from cnn_jax.layers import check_choice
from cnn_jax.results import atomic_write_json, read_json, read_metrics
from cnn_jax.runs import load_run
from cnn_jax.sweep import run_dir, run_sweep
from cnn_jax.train import train_and_evaluate
from cnn_jax.weight_stats import weight_histogram, weight_stats
from experiments import cli, regularization_report

REGULARIZERS: dict[str, str] = {
    "baseline": "no regularizer (strided convs, no pooling, no decay)",
    "batch_norm": "batch normalization after every conv",
    "dropout": "dropout after conv blocks and in the head",
    "l1": "L1 penalty in the loss (kernels)",
    "l2": "L2 penalty in the loss (kernels)",
    "weight_decay": "decoupled weight decay (AdamW, kernels)",
    "early_stopping": "early stopping on validation accuracy, best parameters restored",
    "augment": "random rotation, scaling and crop-with-padding",
    "noise": "Gaussian noise on inputs and hidden activations",
    "pooling": "2x2 max pooling (stride-1 convs) instead of strided convs",
    "all": "every regularizer above together",
}
SWEEPABLE = ("dropout", "weight_decay", "l1", "l2", "noise")
HISTOGRAM_EDGES = np.linspace(-0.3, 0.3, 121)


def regularizer_overrides(
    name: str, exp: ml_collections.ConfigDict, strength: float | None = None
) -> dict[str, Any]:
    """Dotted config overrides that switch regularizer `name` on (at `strength` if given).

    A dropout strength r sets the head rate to r and the conv rate to r / 2; a noise
    strength s sets both the input and the hidden noise std to s.
    """
    check_choice("experiment.variants", name, tuple(REGULARIZERS))
    s = exp.strength
    if name == "baseline":
        return {}
    if name == "batch_norm":
        return {"model.batch_norm": True}
    if name == "dropout":
        head = s.head_dropout if strength is None else strength
        conv = s.conv_dropout if strength is None else strength / 2
        return {"model.head_dropout": float(head), "model.conv_dropout": float(conv)}
    if name in ("l1", "l2", "weight_decay"):
        return {f"optim.{name}": float(s[name] if strength is None else strength)}
    if name == "early_stopping":
        return {"early_stopping.enabled": True}
    if name == "augment":
        return {f"augment.{key}": value for key, value in exp.augment.items()}
    if name == "noise":
        inp = s.input_noise_std if strength is None else strength
        hidden = s.hidden_noise_std if strength is None else strength
        return {"model.input_noise_std": float(inp), "model.hidden_noise_std": float(hidden)}
    if name == "pooling":
        return {"model.pool": "max", "model.stride": 1}
    overrides: dict[str, Any] = {"optim.allow_l2_with_weight_decay": True}  # name == "all"
    for other in REGULARIZERS:
        if other not in ("baseline", "all"):
            overrides.update(regularizer_overrides(other, exp))
    return overrides


def describe(variant: str) -> str:
    """What a variant is: the regularizer's description, with the strength of a sweep point."""
    if variant in REGULARIZERS:
        return REGULARIZERS[variant]
    name, _, strength = variant.rpartition("_")
    return f"{REGULARIZERS.get(name, name)}, strength {strength}"


def variant_config(
    config: ml_collections.ConfigDict, name: str, strength: float | None = None
) -> ml_collections.ConfigDict:
    """The training config of one variant: the baseline `config` plus its overrides."""
    out = config.copy_and_resolve_references()
    with out.unlocked():  # configs from --config files are locked; overrides may add keys
        for path, value in regularizer_overrides(name, config.experiment, strength).items():
            section, key = path.split(".")
            out[section][key] = value
    return out


def variant_configs(
    config: ml_collections.ConfigDict, strength_sweeps: bool = False
) -> dict[str, ml_collections.ConfigDict]:
    """{variant name: training config}: config.experiment.variants, then the sweeps if asked."""
    exp = config.experiment
    configs = {name: variant_config(config, name) for name in exp.variants}
    if strength_sweeps:
        for name, strengths in exp.sweeps.items():
            check_choice("experiment.sweeps", name, SWEEPABLE)
            for value in strengths:
                configs[f"{name}_{value:g}"] = variant_config(config, name, float(value))
    return configs


def resolve_dataset(config: ml_collections.ConfigDict) -> str | None:
    """Switches `config` to experiment.fallback_dataset when its dataset is not prepared.

    Returns the message printed on fallback, or None when the configured dataset is there.
    """
    data = config.dataset
    try:
        datasets.check(data.name, data_dir=data.get("data_dir"), **dict(data.options or {}))
        return None
    except FileNotFoundError as e:
        fallback = config.experiment.get("fallback_dataset")
        if not fallback:
            raise
        message = (
            f"dataset {data.name!r} is not available ({str(e).splitlines()[0]}); falling back "
            f"to {fallback.name!r} with options {dict(fallback.options)}. Run `make data` "
            "to measure on the configured dataset."
        )
        print(message, flush=True)
        data.name = fallback.name
        data.options = ml_collections.ConfigDict(dict(fallback.options))
        return message


def _check_consecutive(seeds: Sequence[int]) -> None:
    if list(seeds) != list(range(seeds[0], seeds[0] + len(seeds))):
        raise ValueError(
            f"experiment.seeds: {list(seeds)} with --vmap_seeds; allowed: consecutive "
            "integers (train.num_seeds trains seed, seed + 1, ...)"
        )


def train_vmapped(
    configs: Mapping[str, ml_collections.ConfigDict], root: Path, seeds: Sequence[int]
) -> None:
    """Each variant's K seeds as one `train_and_evaluate` with train.num_seeds = K."""
    _check_consecutive(seeds)
    for i, (name, base) in enumerate(configs.items()):
        t0 = time.time()
        if all((run_dir(root, name, s) / "results.json").exists() for s in seeds):
            status = "cached"
        else:
            config = base.copy_and_resolve_references()
            config.seed, config.train.num_seeds, config.train.quiet = seeds[0], len(seeds), True
            train_and_evaluate(config, root / name)
            status = "trained"
        print(
            f"[{i + 1}/{len(configs)}] {name} seeds {list(seeds)} vmapped "
            f"({status}, {time.time() - t0:.1f} s)",
            flush=True,
        )


def measure_weights(path: Path) -> dict[str, Any]:
    """Kernel norms, sparsity and histogram of one trained run (cached in weight_stats.json)."""
    cache = path / "weight_stats.json"
    if cache.exists():
        return read_json(cache)
    params = load_run(path).variables["params"]
    counts, _ = weight_histogram(params, HISTOGRAM_EDGES)
    out = {"stats": weight_stats(params), "histogram": counts.tolist()}
    atomic_write_json(cache, out)
    return out


def curves(path: Path, steps_per_epoch: int) -> dict[str, list[float]]:
    """Per-epoch learning curves from metrics.jsonl: validation loss/accuracy, train (running)."""
    val: dict[int, dict] = {}
    train: dict[int, list[dict]] = {}
    for record in read_metrics(path):
        epoch = -(-int(record["step"]) // steps_per_epoch)  # ceil: step s is in epoch ceil(s/n)
        if record["split"] == "validation":
            val.setdefault(epoch, record)  # the end-of-run re-evaluation comes second: skip it
        elif record["split"] == "train":
            train.setdefault(epoch, []).append(record)
    epochs = sorted(val)
    return {
        "epoch": epochs,
        "val_accuracy": [val[e]["accuracy"] for e in epochs],
        "val_loss": [val[e]["loss"] for e in epochs],
        "train_accuracy": [
            float(np.mean([r["accuracy"] for r in train.get(e, [])] or [np.nan])) for e in epochs
        ],
        "train_loss": [
            float(np.mean([r["loss"] for r in train.get(e, [])] or [np.nan])) for e in epochs
        ],
    }


def collect_run(variant: str, seed: int, path: Path, batch_size: int) -> dict[str, Any]:
    """One row of the study: accuracies, losses, gap, epochs, weight stats, time, curves."""
    results = read_json(path / "results.json")
    final = results["final"]
    spe = results["train_examples"] // batch_size
    curve = curves(path, spe)
    weights = measure_weights(path)
    row = {
        "variant": variant,
        "seed": seed,
        "run_dir": str(path),
        "test_accuracy": final["test"]["accuracy"],
        "test_loss": final["test"]["loss"],
        "validation_accuracy": final["validation"]["accuracy"],
        "validation_loss": final["validation"]["loss"],
        "train_accuracy": final["train"]["accuracy"],
        "train_loss": final["train"]["loss"],
        "gap": final["train"]["accuracy"] - final["test"]["accuracy"],
        "epochs_trained": results["steps"] / spe,
        "best_epoch": results.get(
            "best_epoch", curve["epoch"][int(np.argmax(curve["val_accuracy"]))]
        ),
        "val_loss_min_epoch": curve["epoch"][int(np.argmin(curve["val_loss"]))],
        "wall_time_sec": results["wall_time_sec"] / results.get("num_seeds", 1),
        "train_time_sec": results["train_time_sec"] / results.get("num_seeds", 1),
        **{f"weights_{k}": v for k, v in weights["stats"].items()},
    }
    return {"row": row, "curves": curve, "histogram": weights["histogram"]}


def run_experiment(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    vmap_seeds: bool | None = None,
    strength_sweeps: bool | None = None,
) -> dict[str, Any]:
    """Trains every variant x seed (resuming), then writes the tables and plots."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    config = config.copy_and_resolve_references()
    config.unlock()
    exp = config.experiment
    vmap_seeds = exp.vmap_seeds if vmap_seeds is None else vmap_seeds
    strength_sweeps = exp.strength_sweeps if strength_sweeps is None else strength_sweeps
    fallback = resolve_dataset(config)
    configs = variant_configs(config, strength_sweeps)
    seeds = [int(s) for s in exp.seeds]
    root = workdir / "runs"
    mode = f"vmapped over {len(seeds)} seeds" if vmap_seeds else "seeds in sequence"
    print(f"Training {len(configs)} variants x {len(seeds)} seeds ({mode}) in {root}", flush=True)
    if vmap_seeds:
        train_vmapped(configs, root, seeds)
    else:
        run_sweep(configs, root, seeds)
    collected = [
        collect_run(name, s, run_dir(root, name, s), config.train.batch_size)
        for name in configs
        for s in seeds
    ]
    rows = [c["row"] for c in collected]
    summary = regularization_report.summarize(rows, baseline="baseline")
    results = {
        "config": config.to_dict(),
        "dataset": config.dataset.name,
        "dataset_fallback": fallback,
        "variants": {name: describe(name) for name in configs},
        "seeds": seeds,
        "vmap_seeds": bool(vmap_seeds),
        "runs": rows,
        "summary": summary,
        "curves": {f"{c['row']['variant']}/{c['row']['seed']}": c["curves"] for c in collected},
        "histogram_edges": HISTOGRAM_EDGES.tolist(),
        "histograms": {
            f"{c['row']['variant']}/{c['row']['seed']}": c["histogram"] for c in collected
        },
        "wall_time_sec": time.time() - t0,
    }
    regularization_report.write_all(results, workdir)
    print(regularization_report.markdown_table(summary, list(configs)))
    print(f"Results, tables and plots in {workdir}/ ({results['wall_time_sec']:.1f} s)")
    return results


def speed_test(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Wall time of K sequential baseline runs vs one K-seed vmapped run (same seeds)."""
    workdir = Path(workdir) / "speed"
    if workdir.exists() and any(workdir.iterdir()):
        raise FileExistsError(
            f"--speed_test: {workdir} is not empty, and finished or checkpointed runs would "
            "not be timed again; allowed: a workdir without speed/ (remove it to re-time)"
        )
    config = config.copy_and_resolve_references()
    config.unlock()
    resolve_dataset(config)
    seeds = [int(s) for s in config.experiment.seeds]
    _check_consecutive(seeds)
    base = variant_config(config, "baseline")
    base.train.quiet = True
    t0 = time.time()
    sequential = run_sweep({"sequential": base}, workdir, seeds)
    t_seq = time.time() - t0
    vm = base.copy_and_resolve_references()
    vm.seed, vm.train.num_seeds = seeds[0], len(seeds)
    t0 = time.time()
    vmapped = train_and_evaluate(vm, workdir / "vmapped")
    t_vm = time.time() - t0
    seq_acc = [r["results"]["test_accuracy"] for r in sequential]
    vm_acc = [r["test_accuracy"] for r in vmapped["per_seed"]]
    out = {
        "num_seeds": len(seeds),
        "dataset": config.dataset.name,
        "train_examples": vmapped["train_examples"],
        "epochs": config.train.num_epochs,
        "sequential_wall_sec": t_seq,
        "vmapped_wall_sec": t_vm,
        "speedup_wall": t_seq / t_vm,
        "sequential_train_sec": sum(r["results"]["train_time_sec"] for r in sequential),
        "vmapped_train_sec": vmapped["train_time_sec"],
        "speedup_train": sum(r["results"]["train_time_sec"] for r in sequential)
        / vmapped["train_time_sec"],
        "sequential_test_accuracy": seq_acc,
        "vmapped_test_accuracy": vm_acc,
        "max_abs_test_accuracy_difference": float(np.max(np.abs(np.subtract(seq_acc, vm_acc)))),
        "compilation_cache": jax.config.jax_compilation_cache_dir,
        "note": "wall times include compilation; with the persistent compilation cache on, "
        "sequential seeds after the first load the compiled step from it",
    }
    atomic_write_json(workdir / "speed.json", out)
    print(
        f"{len(seeds)} seeds: sequential {t_seq:.1f} s, vmapped {t_vm:.1f} s -> "
        f"speed-up {out['speedup_wall']:.2f}x (train loop only: {out['speedup_train']:.2f}x)"
    )
    return out


def run_from_flags(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """The command line: the study, or with --speed_test only the vmap-vs-sequential timing."""
    f = cli.FLAGS
    if f.speed_test:
        return speed_test(config, workdir)
    return run_experiment(
        config, workdir, vmap_seeds=f.vmap_seeds, strength_sweeps=f.strength_sweeps
    )


if __name__ == "__main__":
    flags.DEFINE_bool("vmap_seeds", None, "Train each variant's seeds as one vmapped program.")
    flags.DEFINE_bool("strength_sweeps", None, "Also run config.experiment.sweeps strengths.")
    flags.DEFINE_bool("speed_test", False, "Only time K vmapped seeds vs K sequential runs.")
    cli.main(
        run_from_flags,
        default_config="experiments/configs/regularization_smoke.py",
        default_workdir="runs/regularization_smoke",  # the default --config is the smoke one
    )
