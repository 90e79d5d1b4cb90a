r"""What a CNN sees: first-layer filters, every layer's feature maps, receptive fields, top images.

    python -m experiments.anatomy.feature_maps --config=anatomy/feature_maps \
        --workdir=runs/feature_maps [--config.model.preset=tiny_vgg]
    python -m experiments.anatomy.feature_maps --config=anatomy/feature_maps \
        --workdir=runs/feature_maps_of_x --config.experiment.run_dir=runs/digits/<run>

With experiment.run_dir set, the trained run there is loaded (`cnn_jax.runs.load.load_run`, any
preset or checkpoint). Otherwise `config` (any preset) is trained through
`cnn_jax.runs.sweep.run_sweep` into <workdir>/model/seed_<seed> (a finished run with the same
identity is reused, a different one refused), or left at its random initialisation with
experiment.train=False, to compare learned filters with random ones.

Inputs are scaled without subtracting the mean (`cnn_jax.steps.normalize`), so the black
background stays 0 and SAME zero padding adds no bright frame around the feature maps.
Each top_<layer>_ch<c>.png shows the test images that drive channel c of that layer most;
the title over each image is "<true label> | <score>", the score being the spatial maximum
of that channel's activation map for the image (`visualize.channel_scores`), in the layer's
own units (after the activation: ReLU outputs are >= 0).

Writes to --workdir: filters.png, feature_maps_<i>.png for the chosen test images (the CNN
Explainer view, receptive field per layer noted), top_<layer>_ch<c>.png (the test images
that drive a channel most), receptive_field.md, results.json.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from cnn_jax.measure import visualize
from cnn_jax.nn import receptive_field
from cnn_jax.outputs.markdown import markdown_table
from cnn_jax.outputs.writers import atomic_write_json, atomic_write_text, read_json
from cnn_jax.run_setup import build
from cnn_jax.runs.load import LoadedRun, load_run
from cnn_jax.runs.sweep import run_sweep
from cnn_jax.steps import normalize

from .. import cli


def obtain_run(config: ml_collections.ConfigDict, workdir: Path) -> tuple[LoadedRun, str]:
    """The model to look at: a given run dir, a freshly trained config, or random weights."""
    exp = config.experiment
    if exp.run_dir:
        return load_run(exp.run_dir, exp.get("seed_index")), f"loaded from {exp.run_dir}"
    if not exp.train:
        run = build(config)
        state = run.init_state()
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        loaded = LoadedRun(config, run.spec, run.model, variables, run.dataset, 0)
        return loaded, "random initialisation (untrained)"
    (row,) = run_sweep({"model": config}, workdir, [int(config.seed)], vmap_seeds=False)
    return load_run(row["run_dir"]), f"trained into {row['run_dir']} ({row['status']})"


TOP_TITLE = (
    "top_<layer>_ch<c>.png: each image's title is '<true label> | <score>', the score being the "
    "spatial maximum of channel c's activation map at <layer> for that test image"
)


def first_kernel(params: dict[str, Any]) -> np.ndarray:
    """The first conv layer's kernel [kh, kw, C_in, C_out] (plain or residual block 0)."""
    block = params["block0"]
    conv = block.get("conv") or block["conv1"]
    return np.asarray(conv["kernel"])


def label_name(ds, label) -> str:
    """A class name, or the label number when the dataset has no names."""
    names = ds.class_names or ()
    return str(names[int(label)]) if int(label) < len(names) else str(int(label))


def default_top_layer(run: LoadedRun) -> str:
    """The last block's activation: the most specific features before the head."""
    return f"block{len(run.spec.blocks) - 1}/act"


RF_HEADERS = ["layer", "kernel", "stride", "output side", "receptive field", "jump", "start"]


def write_receptive_fields(
    run: LoadedRun, workdir: Path
) -> tuple[list[receptive_field.FieldRow], list[list]]:
    """Per-layer receptive fields (Araujo et al. 2019, Distill) as receptive_field.md."""
    fields = receptive_field.receptive_fields(run.spec, tuple(run.dataset.image_shape[:2]))
    rf_rows = [
        [f.name, f.kernel, f.stride, f.output_size[0], f.size[0], f.jump[0], f.start[0]]
        for f in fields
    ]
    atomic_write_text(workdir / "receptive_field.md", markdown_table(RF_HEADERS, rf_rows))
    return fields, rf_rows


def draw_feature_maps(
    run: LoadedRun,
    fields: list[receptive_field.FieldRow],
    indices: list[int],
    max_channels: int,
    workdir: Path,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every layer's maps for the chosen test images, each panel noted with its receptive field."""
    ds = run.dataset
    x_bhwc = normalize(ds.test.images[np.asarray(indices)], ds.mean, ds.std)
    maps = visualize.feature_maps(run.model, run.variables, x_bhwc)
    notes = {}
    for name in maps:
        if name != "input":
            f = receptive_field.field_for(fields, name)
            notes[name] = f"RF {f.size[0]}, jump {f.jump[0]}"
    files = []
    for k, i in enumerate(indices):
        name = f"feature_maps_{i}.png"
        visualize.plot_feature_maps(
            maps,
            k,
            workdir / name,
            max_channels=max_channels,
            notes=notes,
            title=f"{run.spec.name}: test image {i} (label {label_name(ds, ds.test.labels[i])})",
        )
        files.append(name)
    return maps, files


def draw_top_images(
    run: LoadedRun, layer: str, channels: list[int], top_k: int, workdir: Path
) -> tuple[dict[int, dict[str, list]], list[str]]:
    """The test images that drive each channel of `layer` most (Zeiler & Fergus 2014)."""
    ds, test = run.dataset, run.dataset.test
    top, files = {}, []
    for channel in channels:
        scores = visualize.channel_scores(
            run.model, run.variables, test.images, ds.mean, ds.std, layer, channel
        )
        best = visualize.top_activating(scores, top_k)
        name = f"top_{layer.replace('/', '_')}_ch{channel}.png"
        titles = [f"{label_name(ds, test.labels[i])} | {scores[i]:.2f}" for i in best]
        visualize.plot_images(
            test.images[best],
            workdir / name,
            titles,
            title=f"{layer} channel {channel}: top {len(best)} test images\n"
            "each: true label | max of the channel's activation map",
        )
        files.append(name)
        top[channel] = {
            "indices": best.tolist(),
            "scores": scores[best].tolist(),
            "labels": test.labels[best].tolist(),
        }
    return top, files


def run_experiment(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Draws filters, feature maps, receptive fields and top images; returns the summary."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    exp = config.experiment
    t0 = time.time()
    run, source = obtain_run(config, workdir)
    print(f"model {run.spec.name} ({source}), step {run.step}", flush=True)
    ds = run.dataset

    fields, rf_rows = write_receptive_fields(run, workdir)
    visualize.save_filter_grid(
        first_kernel(run.variables["params"]),
        workdir / "filters.png",
        title=f"{run.spec.name} block0 filters",
    )
    indices = [int(i) for i in exp.input_indices if 0 <= int(i) < len(ds.test)]
    maps, map_files = draw_feature_maps(run, fields, indices, int(exp.max_channels), workdir)
    layer = exp.top_layer or default_top_layer(run)
    channels = [int(c) for c in exp.top_channels]
    top, top_files = draw_top_images(run, layer, channels, int(exp.top_k), workdir)
    files = ["filters.png", *map_files, *top_files]

    results = {
        "model": run.spec.name,
        "source": source,
        "step": int(run.step),
        "dataset": ds.name,
        "image_shape": list(ds.image_shape),
        "input_indices": indices,
        "feature_map_shapes": {k: list(v.shape[1:]) for k, v in maps.items()},
        "receptive_fields": [dict(zip(RF_HEADERS, r)) for r in rf_rows],
        "top_layer": layer,
        "top_activating": top,
        "files": files,
        "wall_time_sec": time.time() - t0,
    }
    model_results = workdir / "model" / f"seed_{int(config.seed)}" / "results.json"
    if not exp.run_dir and exp.train and model_results.exists():
        results["test_accuracy"] = read_json(model_results)["test_accuracy"]
    results["top_title"] = TOP_TITLE
    atomic_write_json(workdir / "results.json", results)
    print(markdown_table(RF_HEADERS, rf_rows))
    print(f"Wrote {', '.join(files)} and results.json to {workdir} ({time.time() - t0:.0f} s)")
    return results


if __name__ == "__main__":
    cli.main(
        run_experiment,
        default_config="experiments/anatomy/configs/feature_maps.py",
        default_workdir="runs/feature_maps",
    )
