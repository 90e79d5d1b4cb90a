r"""Translation invariance: what pooling, padding, the head and augmentation really buy.

    python -m experiments.translation_invariance \
        --config=experiments/configs/invariance_smoke.py --workdir=runs/invariance_smoke

Trains a family of otherwise identical CNNs (variants x seeds, through `cnn_jax.sweep`), then
measures every trained model on shifted test images (`cnn_jax.invariance`): Zhang 2019's
consistency, Azulay & Weiss 2019's 1-pixel top-1 change and MAC, accuracy over a 2-D shift
grid, and per-layer equivariance error. Also measures the seed notes' two-dots picture.

Writes to --workdir: results.json (settings, per-run metrics and curves, mean and 95% CI per
variant), results.csv (one row per variant x seed x metric, plus seed='mean' rows),
consistency.png, accuracy_vs_shift.png, accuracy_maps.png, equivariance_by_depth.png,
two_dots.png, and the training runs under runs/<variant>/seed_<s>/. Re-running resumes:
finished runs and measurements are read back, not recomputed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from cnn_jax import invariance, two_dots  # noqa: E402
from cnn_jax.augment import default_augment_config  # noqa: E402
from cnn_jax.layers import check_choice  # noqa: E402
from cnn_jax.model_spec import spec_from_config  # noqa: E402
from cnn_jax.models import forward_order_key  # noqa: E402
from cnn_jax.results import atomic_write_json, atomic_write_text, read_json  # noqa: E402
from cnn_jax.runs import load_run  # noqa: E402
from cnn_jax.stats import mean_ci  # noqa: E402
from cnn_jax.sweep import run_dir, run_sweep  # noqa: E402
from cnn_jax.train import train_and_evaluate  # noqa: E402
from experiments import cli  # noqa: E402

# name -> (what it is, dotted config overrides). The baseline is the preset with max pooling,
# SAME padding and a flatten head; each variant changes one thing (max_blur_gap: two).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "max": ("max pooling (baseline)", {"model.pool": "max"}),
    "avg": ("average pooling", {"model.pool": "avg"}),
    "max_blur": ("MaxBlurPool, anti-aliased (Zhang 2019)", {"model.pool": "max_blur"}),
    "strided": ("strided conv, no pooling", {"model.pool": "none", "model.stride": 2}),
    "strided_blur": ("conv + BlurPool: anti-aliased strided conv", {}),  # blocks: see below
    "none": ("no downsampling", {"model.pool": "none", "model.stride": 1}),
    "gap": ("global average pooling head", {"model.head": "global_avg"}),
    "max_blur_gap": (
        "MaxBlurPool + global average pooling",
        {"model.pool": "max_blur", "model.head": "global_avg"},
    ),
    "valid": ("VALID padding", {"model.padding": "VALID"}),
    "circular": ("circular padding", {"model.padding": "CIRCULAR"}),
    "augment": ("max pooling + random shift augmentation", {}),  # augment.translate: see below
}
PLOTS = (
    "consistency.png",
    "accuracy_vs_shift.png",
    "accuracy_maps.png",
    "equivariance_by_depth.png",
    "two_dots.png",
)
SCALARS = (
    "test_accuracy",
    "consistency",
    "p_top1_change_1px",
    "mean_abs_prob_change_1px",
    "accuracy_unshifted",
    "accuracy_mean_over_shifts",
    "accuracy_worst_shift",
)


def _set(config: ml_collections.ConfigDict, path: str, value: Any) -> None:
    section, key = path.split(".")
    config[section][key] = value


def variant_config(
    base: ml_collections.ConfigDict, name: str, num_classes: int = 10
) -> ml_collections.ConfigDict:
    """The training config of one variant: `base` with the variant's overrides."""
    check_choice("experiment.variants", name, tuple(VARIANTS))
    exp = base.experiment
    config = base.copy_and_resolve_references()
    config.unlock()  # the base config locks its sections; variants add model keys (blur_size)
    config.model.blur_size = int(exp.blur_size)
    for path, value in VARIANTS[name][1].items():
        _set(config, path, value)
    if name == "strided_blur":  # stride-1 conv, then blur + subsample where the preset pools
        spec = spec_from_config(config.model.to_dict(), num_classes)
        blocks = []
        for b in spec.blocks:
            fields = dataclasses.asdict(b)
            if b.pool != "none" or b.stride > 1:
                fields.update(stride=1, pool="blur", pool_stride=b.stride * b.pool_stride)
                fields.update(pool_padding="SAME", blur_size=int(exp.blur_size))
            blocks.append(fields)
        config.model.blocks = blocks
    if name == "augment":
        if config.get("augment") is None:
            config.augment = default_augment_config()
        config.augment.translate = float(exp.augment_translate)
    return config


def train_variants(
    configs: Mapping[str, ml_collections.ConfigDict],
    runs_dir: Path,
    seeds: Sequence[int],
    vmap_seeds: bool,
) -> list[dict[str, Any]]:
    """Trains every variant x seed; rows {variant, seed, run_dir} in `cnn_jax.sweep`'s layout.

    With `vmap_seeds` and consecutive seeds, each variant's seeds train as one vmapped run of
    the trainer (`train.num_seeds`), which writes `<variant>/seed_<s>/` itself: one compile per
    variant instead of one per seed. Otherwise `run_sweep` trains them one by one.
    """
    consecutive = list(seeds) == list(range(seeds[0], seeds[0] + len(seeds)))
    if not (vmap_seeds and consecutive and len(seeds) > 1):
        return run_sweep(configs, runs_dir, seeds)
    rows = []
    for i, (variant, base_config) in enumerate(configs.items()):
        t0, status = time.time(), "cached"
        if not all((run_dir(runs_dir, variant, s) / "results.json").exists() for s in seeds):
            config = base_config.copy_and_resolve_references()
            config.seed, config.train.num_seeds = int(seeds[0]), len(seeds)
            config.train.quiet = True
            train_and_evaluate(config, runs_dir / variant)
            status = "trained"
        accuracies = []
        for s in seeds:
            path = run_dir(runs_dir, variant, s)
            accuracies.append(read_json(path / "results.json")["test_accuracy"])
            rows.append({"variant": variant, "seed": int(s), "run_dir": str(path)})
        print(
            f"[{i + 1}/{len(configs)}] {variant} seeds {list(seeds)}: test accuracy "
            f"{', '.join(f'{a:.4f}' for a in accuracies)} ({status}, {time.time() - t0:.1f} s)",
            flush=True,
        )
    return rows


def _layer_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    out = {}
    for row in rows:
        for key in ("error_aligned", "error_off_grid", "pooled_cosine"):
            if row[key] is not None:
                out[f"{key}/{row['layer']}"] = row[key]
    return out


def measure_run(run_dir: str | Path, exp: ml_collections.ConfigDict) -> dict[str, Any]:
    """Invariance metrics of one trained run (cached in run_dir/invariance.json)."""
    run_dir = Path(run_dir)
    settings = {
        k: exp[k] for k in ("max_shift", "mode", "num_images", "eq_max_shift", "eq_num_images")
    }
    cache = run_dir / "invariance.json"
    if cache.exists() and (cached := read_json(cache)).get("settings") == settings:
        return cached
    run = load_run(run_dir)
    test = run.dataset.test
    n = min(int(exp.num_images), len(test.labels))
    images, labels = test.images[:n].astype(np.float32), np.asarray(test.labels[:n])
    predict = invariance.make_predict_fn(run.model, run.dataset.mean, run.dataset.std)
    m, mode = int(exp.max_shift), exp.mode
    logits = invariance.grid_logits(predict, run.variables, images, m, mode, int(exp.batch_size))
    acc_map = np.asarray(invariance.accuracy_map(logits, labels, m))
    prob_map = np.asarray(invariance.correct_prob_map(logits, labels, m))
    change = invariance.one_pixel_change(logits, m)
    strides = invariance.cumulative_strides(run.spec)
    n_eq = min(int(exp.eq_num_images), n)
    layers = invariance.summarize_layers(
        invariance.layer_equivariance(
            predict,
            run.variables,
            images[:n_eq],
            strides,
            int(exp.eq_max_shift),
            mode,
            int(exp.eq_batch_size),
        )
    )
    metrics = {
        "test_accuracy": float(read_json(run_dir / "results.json")["test_accuracy"]),
        "consistency": float(invariance.expected_consistency(logits)),
        "p_top1_change_1px": float(change["p_top1_change"]),
        "mean_abs_prob_change_1px": float(change["mean_abs_prob_change"]),
        "accuracy_unshifted": float(acc_map[m, m]),
        "accuracy_mean_over_shifts": float(acc_map.mean()),
        "accuracy_worst_shift": float(acc_map.min()),
        **_layer_metrics(layers),
    }
    out = {
        "settings": settings,
        "metrics": metrics,
        "accuracy_map": acc_map.tolist(),
        "correct_prob_map": prob_map.tolist(),
        "layers": layers,
        "num_images": n,
    }
    atomic_write_json(cache, out)
    return out


def summarize(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """variant -> metric -> mean_ci over the seeds that have the metric."""
    values: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        for metric, value in r["metrics"].items():
            values.setdefault(r["variant"], {}).setdefault(metric, []).append(value)
    return {v: {k: mean_ci(x) for k, x in ms.items()} for v, ms in values.items()}


def to_csv(runs: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    """One row per variant x seed x metric, then one seed='mean' row per variant x metric."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["variant", "seed", "metric", "value", "std", "ci_low", "ci_high", "n"])
    for r in runs:
        for metric, value in r["metrics"].items():
            w.writerow([r["variant"], r["seed"], metric, f"{value:.6g}", "", "", "", 1])
    for variant, metrics in summary.items():
        for metric, s in metrics.items():
            cells = [f"{s[k]:.6g}" for k in ("mean", "std", "ci_low", "ci_high")]
            w.writerow([variant, "mean", metric, *cells, s["n"]])
    return buf.getvalue()


def format_table(summary: Mapping[str, Any], metrics: Sequence[str] = SCALARS[:3]) -> str:
    """Plain-text table: mean [95% CI] per variant for a few metrics."""
    lines = [f"{'variant':<14}" + "".join(f"{m:>30}" for m in metrics)]
    for variant, ms in summary.items():
        cells = [
            f"{ms[m]['mean']:.4f} [{ms[m]['ci_low']:.4f}, {ms[m]['ci_high']:.4f}]" for m in metrics
        ]
        lines.append(f"{variant:<14}" + "".join(f"{c:>30}" for c in cells))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plots


def plot_consistency(summary: Mapping[str, Any]):
    """Bars with 95% CIs: consistency, 1-pixel top-1 change and test accuracy per variant."""
    names = list(summary)
    metrics = ("consistency", "p_top1_change_1px", "test_accuracy")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    for ax, metric in zip(axes, metrics):
        s = [summary[n][metric] for n in names]
        mean = np.array([x["mean"] for x in s])
        err = np.array(
            [[x["mean"] - x["ci_low"] for x in s], [x["ci_high"] - x["mean"] for x in s]]
        )
        ax.bar(names, mean, yerr=err, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_title(metric.replace("_", " "))
        ax.tick_params(axis="x", rotation=60)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("mean over seeds, 95% CI")
    return fig


def _seed_curves(runs, variant, key):
    return np.array([np.asarray(r[key]) for r in runs if r["variant"] == variant])


def plot_accuracy_vs_shift(runs: Sequence[Mapping[str, Any]], max_shift: int):
    """Accuracy along the diagonal (dy = dx) and along dx (dy = 0), mean and CI over seeds."""
    shifts = np.arange(-max_shift, max_shift + 1)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained", sharey=True)
    for variant in dict.fromkeys(r["variant"] for r in runs):
        maps = _seed_curves(runs, variant, "accuracy_map")
        for ax, curves in zip(axes, (np.stack([np.diagonal(m) for m in maps]), maps[:, max_shift])):
            stats = [mean_ci(curves[:, i]) for i in range(len(shifts))]
            line = ax.plot(shifts, [s["mean"] for s in stats], marker="o", ms=3, label=variant)
            low, high = [s["ci_low"] for s in stats], [s["ci_high"] for s in stats]
            ax.fill_between(shifts, low, high, color=line[0].get_color(), alpha=0.12)
    axes[0].set_xlabel("diagonal shift dy = dx (pixels)")
    axes[1].set_xlabel("horizontal shift dx (pixels), dy = 0")
    axes[0].set_ylabel("test accuracy (mean, 95% CI over seeds)")
    axes[1].legend(fontsize=8, ncol=2)
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig


def plot_accuracy_maps(runs: Sequence[Mapping[str, Any]], max_shift: int):
    """2-D maps of accuracy over (dy, dx), mean over seeds, one panel per variant."""
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    cols = min(4, len(variants))
    rows = -(-len(variants) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), layout="constrained")
    axes = np.atleast_1d(axes).ravel()
    extent = (-max_shift - 0.5, max_shift + 0.5, max_shift + 0.5, -max_shift - 0.5)
    for ax, variant in zip(axes, variants):
        image = ax.imshow(
            _seed_curves(runs, variant, "accuracy_map").mean(0), vmin=0, vmax=1, extent=extent
        )
        ax.set_title(variant, fontsize=9)
        ax.set_xlabel("dx")
        ax.set_ylabel("dy")
    for ax in axes[len(variants) :]:
        ax.axis("off")
    fig.colorbar(image, ax=axes.tolist(), label="accuracy")
    return fig


def plot_equivariance(runs: Sequence[Mapping[str, Any]]):
    """Per-layer equivariance error (off-grid, aligned) and pooled cosine by depth."""
    layers = {row["layer"] for r in runs for row in r["layers"]}
    names = sorted(layers, key=forward_order_key)
    x_of = {n: i for i, n in enumerate(names)}
    keys = ("error_off_grid", "error_aligned", "pooled_cosine")
    titles = ("off-grid shifts", "shifts aligned with the stride", "GAP features")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), layout="constrained")
    for variant in dict.fromkeys(r["variant"] for r in runs):
        seeds = [r for r in runs if r["variant"] == variant]
        for ax, key in zip(axes, keys):
            points = []
            for name in names:
                vals = [row[key] for r in seeds for row in r["layers"] if row["layer"] == name]
                vals = [v for v in vals if v is not None]
                if vals:
                    points.append((x_of[name], float(np.mean(vals))))
            if points:
                ax.plot(*zip(*points), marker="o", ms=3, label=variant)
    for ax, key, title in zip(axes, keys, titles):
        ax.set_xticks(range(len(names)), names, rotation=60, fontsize=8)
        ax.set_title(title)
        ax.set_ylabel("cosine similarity" if key == "pooled_cosine" else "relative error")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, ncol=2)
    return fig


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- driver


def run_experiment(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains every variant x seed, measures them, writes results and plots; returns results."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    exp = config.experiment
    check_choice("experiment.mode", exp.mode, invariance.SHIFT_MODES)
    configs = {name: variant_config(config, name) for name in exp.variants}
    print(f"Training {len(configs)} variants x {len(exp.seeds)} seeds in {workdir / 'runs'}")
    seeds = [int(s) for s in exp.seeds]
    rows = train_variants(configs, workdir / "runs", seeds, bool(exp.get("vmap_seeds", True)))
    runs = []
    for row in rows:
        measured = measure_run(row["run_dir"], exp)
        runs.append({"variant": row["variant"], "seed": row["seed"], "run_dir": row["run_dir"]})
        runs[-1].update(measured)
        print(
            f"measured {row['variant']} seed {row['seed']}: consistency "
            f"{measured['metrics']['consistency']:.4f}",
            flush=True,
        )
    summary = summarize(runs)
    print(format_table(summary))
    t_dots = time.time()
    table = two_dots.merge_table(list(exp.two_dots_distances), levels=int(exp.two_dots_levels))
    _save(two_dots.plot_two_dots(int(exp.two_dots_show), table), workdir / "two_dots.png")
    two_dots_time = time.time() - t_dots
    m = int(exp.max_shift)
    _save(plot_consistency(summary), workdir / "consistency.png")
    _save(plot_accuracy_vs_shift(runs, m), workdir / "accuracy_vs_shift.png")
    _save(plot_accuracy_maps(runs, m), workdir / "accuracy_maps.png")
    _save(plot_equivariance(runs), workdir / "equivariance_by_depth.png")
    results = {
        "config": config.to_dict(),
        "variants": {n: VARIANTS[n][0] for n in exp.variants},
        "seeds": [int(s) for s in exp.seeds],
        "runs": runs,
        "summary": summary,
        "two_dots": table,
        "two_dots_time_sec": two_dots_time,
        "wall_time_sec": time.time() - t0,
    }
    atomic_write_json(workdir / "results.json", results)
    atomic_write_text(workdir / "results.csv", to_csv(runs, summary))
    print(f"Results and plots in {workdir}/ ({results['wall_time_sec']:.1f} s)")
    return results


if __name__ == "__main__":
    cli.main(
        run_experiment,
        default_config="experiments/configs/invariance_smoke.py",
        default_workdir="runs/translation_invariance",
    )
