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


def run_experiment(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Draws filters, feature maps, receptive fields and top images; returns the summary."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    exp = config.experiment
    t0 = time.time()
    run, source = obtain_run(config, workdir)
    print(f"model {run.spec.name} ({source}), step {run.step}", flush=True)
    ds = run.dataset
    test = ds.test
    image_hw = tuple(ds.image_shape[:2])

    rows = receptive_field.receptive_fields(run.spec, image_hw)
    rf_headers = ["layer", "kernel", "stride", "output side", "receptive field", "jump", "start"]
    rf_rows = [
        [r.name, r.kernel, r.stride, r.output_size[0], r.size[0], r.jump[0], r.start[0]]
        for r in rows
    ]
    atomic_write_text(workdir / "receptive_field.md", markdown_table(rf_headers, rf_rows))

    files = []
    visualize.save_filter_grid(
        first_kernel(run.variables["params"]),
        workdir / "filters.png",
        title=f"{run.spec.name} block0 filters",
    )
    files.append("filters.png")

    indices = [int(i) for i in exp.input_indices if 0 <= int(i) < len(test)]
    x_bhwc = normalize(test.images[np.asarray(indices)], ds.mean, ds.std)
    maps = visualize.feature_maps(run.model, run.variables, x_bhwc)
    notes = {}
    for name in maps:
        if name != "input":
            f = receptive_field.field_for(rows, name)
            notes[name] = f"RF {f.size[0]}, jump {f.jump[0]}"
    for k, i in enumerate(indices):
        name = f"feature_maps_{i}.png"
        label = label_name(ds, test.labels[i])
        visualize.plot_feature_maps(
            maps,
            k,
            workdir / name,
            max_channels=int(exp.max_channels),
            notes=notes,
            title=f"{run.spec.name}: test image {i} (label {label})",
        )
        files.append(name)

    layer = exp.top_layer or default_top_layer(run)
    top = {}
    for channel in exp.top_channels:
        scores = visualize.channel_scores(
            run.model, run.variables, test.images, ds.mean, ds.std, layer, int(channel)
        )
        best = visualize.top_activating(scores, int(exp.top_k))
        name = f"top_{layer.replace('/', '_')}_ch{int(channel)}.png"
        titles = [f"{label_name(ds, test.labels[i])} | {scores[i]:.2f}" for i in best]
        visualize.plot_images(
            test.images[best],
            workdir / name,
            titles,
            title=f"{layer} channel {channel}: top {len(best)} test images\n"
            "each: true label | max of the channel's activation map",
        )
        files.append(name)
        top[int(channel)] = {
            "indices": best.tolist(),
            "scores": scores[best].tolist(),
            "labels": test.labels[best].tolist(),
        }

    results = {
        "model": run.spec.name,
        "source": source,
        "step": int(run.step),
        "dataset": ds.name,
        "image_shape": list(ds.image_shape),
        "input_indices": indices,
        "feature_map_shapes": {k: list(v.shape[1:]) for k, v in maps.items()},
        "receptive_fields": [dict(zip(rf_headers, r)) for r in rf_rows],
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
    print(markdown_table(rf_headers, rf_rows))
    print(f"Wrote {', '.join(files)} and results.json to {workdir} ({time.time() - t0:.0f} s)")
    return results


if __name__ == "__main__":
    cli.main(
        run_experiment,
        default_config="experiments/anatomy/configs/feature_maps.py",
        default_workdir="runs/feature_maps",
    )
