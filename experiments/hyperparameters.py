r"""Conv hyperparameters: kernel size, stride, padding and depth, checked against the seed notes.

    python -m experiments.hyperparameters \
        --config=experiments/configs/hyperparameters_smoke.py --workdir=runs/hyper_smoke
    python -m experiments.hyperparameters \
        --config=experiments/configs/hyperparameters_full.py --workdir=runs/hyperparameters

A plain CNN of `depth` conv blocks (same features, kernel, stride, padding; ReLU; no pooling;
flatten + dense head) is varied one factor at a time around a base setting (kernel sizes,
strides), plus a grid of depth x kernel x padding. Per setting: output size of every layer
and the receptive field (by formula, `cnn_jax.receptive_field`), parameters and FLOPs
(`cnn_jax.summary`), and over seeds the test accuracy and train time. Settings whose map
would shrink below one pixel are reported as infeasible and not trained. Each seed claim
gets a verdict: Welch's t-test on per-seed test accuracies, or the layer-size formula.

With experiment.vmap_seeds the seeds of a setting train as one vmapped program (one compile;
train time is then that program's time / K). Writes to --workdir: runs/<variant>/... (the
trainer's run dirs), results.json, table.csv, table.md, claims.md, hyperparameters.png.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax import datasets
from cnn_jax.layers import PADDING_MODES, check_choice
from cnn_jax.model_spec import spec_from_config
from cnn_jax.models import CNN
from cnn_jax.receptive_field import receptive_fields
from cnn_jax.results import atomic_write_json, atomic_write_text
from cnn_jax.summary import summary
from experiments import anatomy_report as report
from experiments import cli

MAX_DEPTH = 64  # "unlimited" in the geometry table


def setting_name(s: Mapping[str, Any]) -> str:
    """'k3_s1_same_d2'."""
    return f"k{s['kernel_size']}_s{s['stride']}_{s['padding'].lower()}_d{s['depth']}"


def settings(exp: ml_collections.ConfigDict) -> list[dict[str, Any]]:
    """Every setting once: kernel sweep, stride sweep (at the base), depth x kernel x padding."""
    base = dict(exp.base)
    out: dict[str, dict[str, Any]] = {}

    def add(**changes: Any) -> None:
        s = dict(base, **changes)
        check_choice("experiment.paddings", s["padding"], PADDING_MODES)
        out.setdefault(setting_name(s), s)

    add()
    for k in exp.kernel_sizes:
        add(kernel_size=int(k))
    for stride in exp.strides:
        add(stride=int(stride))
    for padding in exp.paddings:
        for k in exp.depth_kernels:
            for depth in exp.depths:
                add(padding=padding, kernel_size=int(k), depth=int(depth))
    return list(out.values())


def variant_config(
    config: ml_collections.ConfigDict, s: Mapping[str, Any]
) -> ml_collections.ConfigDict:
    """The training config of one setting: `depth` identical conv blocks."""
    exp = config.experiment
    block = {
        "features": int(exp.features),
        "kernel_size": int(s["kernel_size"]),
        "stride": int(s["stride"]),
        "padding": s["padding"],
        "activation": exp.activation,
    }
    out = config.copy_and_resolve_references()
    with out.unlocked():
        out.model.blocks = [dict(block) for _ in range(int(s["depth"]))]
    return out


def geometry(config: ml_collections.ConfigDict, image_shape, num_classes: int) -> dict[str, Any]:
    """Layer sizes and receptive fields by formula; params and FLOPs; or infeasible."""
    spec = spec_from_config(config.model.to_dict(), num_classes)
    try:
        rows = receptive_fields(spec, image_shape[:2])
    except ValueError as e:
        return {"feasible": False, "reason": str(e)}
    model_summary = summary(CNN(spec), tuple(image_shape))
    traced = [r.output_shape[0] for r in model_summary.rows if r.kind == "Conv"]
    formula = [r.output_size[0] for r in rows[1:]]
    if traced != formula:  # the formula and the real network must agree
        raise AssertionError(f"layer sides: formula {formula} != traced model {traced}")
    return {
        "feasible": True,
        "layer_sizes": [r.output_size[0] for r in rows],
        "receptive_fields": [r.size[0] for r in rows[1:]],
        "params": model_summary.total_params,
        "conv_params": sum(r.params for r in model_summary.rows if r.kind == "Conv"),
        "flops": model_summary.total_flops,
    }


def max_depth(kernel: int, stride: int, padding: str, size: int) -> int:
    """How many identical conv layers fit before the map shrinks below 1 pixel (capped)."""
    depth = 0
    while depth < MAX_DEPTH:
        size = (size - kernel) // stride + 1 if padding == "VALID" else -(-size // stride)
        if size < 1:
            break
        depth += 1
        if padding != "VALID" and stride == 1:
            return MAX_DEPTH  # SAME at stride 1 never shrinks
    return depth


def _acc(entry: Mapping[str, Any] | None) -> list[float]:
    return [] if entry is None else entry.get("test_accuracy", [])


def _cmp(entries, a: str, b: str, sign: int, text: str, what: str) -> dict[str, str] | None:
    ea, eb = entries.get(a), entries.get(b)
    if not _acc(ea) or not _acc(eb):
        return None
    c = report.compare(_acc(ea), _acc(eb))
    p = "n/a" if c["p_value"] is None else f"{c['p_value']:.3f}"
    evidence = (
        f"{what}: {a} {report.fmt_ci(_acc(ea))} vs {b} {report.fmt_ci(_acc(eb))} % test "
        f"accuracy; difference {100 * c['diff']:+.1f} points, Welch p = {p}"
    )
    return report.claim(text, report.verdict(c, sign), evidence)


def check_claims(
    exp: ml_collections.ConfigDict, entries: Mapping[str, Any], size: int
) -> list[dict[str, str]]:
    """The seed notes' kernel / stride / padding claims, each with a verdict and numbers."""
    base = dict(exp.base)
    name = lambda **c: setting_name(dict(base, **c))  # noqa: E731
    claims = []
    strides = sorted(int(s) for s in exp.strides)
    sizes = [entries[name(stride=s)]["geometry"].get("layer_sizes", [0])[-1] for s in strides]
    shrinks = all(a > b for a, b in zip(sizes, sizes[1:]))
    claims.append(
        report.claim(
            "a larger stride gives a smaller output",
            "held" if shrinks else "failed",
            f"last-layer side at strides {strides}: {sizes} pixels (formula, checked "
            "against the traced model)",
        )
    )
    claims.append(
        _cmp(
            entries,
            name(stride=strides[0]),
            name(stride=strides[-1]),
            +1,
            "a larger stride extracts less (lower accuracy)",
            f"depth {base['depth']}",
        )
    )
    kernels = sorted(int(k) for k in exp.kernel_sizes)
    depths = {k: max_depth(k, 1, "VALID", size) for k in kernels}
    monotone = all(depths[a] >= depths[b] for a, b in zip(kernels, kernels[1:]))
    claims.append(
        report.claim(
            "small kernels shrink the maps less, so allow deeper nets",
            "held" if monotone else "failed",
            "most VALID stride-1 layers on a "
            f"{size}x{size} input: "
            + ", ".join(
                f"k={k}: {'unlimited' if d >= MAX_DEPTH else d}" for k, d in depths.items()
            ),
        )
    )
    small, large = min(k for k in kernels if k > 1), kernels[-1]
    claims.append(
        _cmp(
            entries,
            name(kernel_size=small),
            name(kernel_size=large),
            +1,
            "small kernels perform better than large ones",
            f"{base['padding']} padding, depth {base['depth']}",
        )
    )
    for padding in exp.paddings:
        ranked = {}
        for k in (min(exp.depth_kernels), max(exp.depth_kernels)):
            cands = [
                n
                for n, e in entries.items()
                if e["setting"]["kernel_size"] == k
                and e["setting"]["padding"] == padding
                and e["setting"]["stride"] == base["stride"]
                and _acc(e)
            ]
            if cands:
                ranked[k] = max(cands, key=lambda n: sum(_acc(entries[n])) / len(_acc(entries[n])))
        if len(ranked) == 2:
            k_small, k_large = sorted(ranked)
            claims.append(
                _cmp(
                    entries,
                    ranked[k_small],
                    ranked[k_large],
                    +1,
                    "small kernels do better because more layers can be stacked",
                    f"best depth of each kernel, {padding} padding",
                )
            )
    claims.append(
        report.claim(
            "padding preserves the spatial size (and so allows deeper nets)",
            "held" if max_depth(base["kernel_size"], 1, "SAME", size) >= MAX_DEPTH else "failed",
            f"SAME at stride 1 keeps {size}x{size} at every depth; VALID k={large} allows "
            f"{depths.get(large)} layers",
        )
    )
    for k in exp.depth_kernels:
        claims.append(
            _cmp(
                entries,
                name(kernel_size=int(k), padding="SAME"),
                name(kernel_size=int(k), padding="VALID"),
                +1,
                "padding keeps border information (SAME beats VALID)",
                f"k={k}, depth {base['depth']}",
            )
        )
    return [c for c in claims if c is not None]


def table(entries: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """One row per setting (infeasible ones included)."""
    headers = [
        "setting",
        "kernel",
        "stride",
        "padding",
        "depth",
        "layer sides",
        "receptive field",
        "params",
        "conv params",
        "MFLOPs",
        "test accuracy %",
        "train accuracy %",
        "train s",
    ]
    rows = []
    for name, e in entries.items():
        s, g = e["setting"], e["geometry"]
        base = [name, s["kernel_size"], s["stride"], s["padding"], s["depth"]]
        if not g["feasible"]:
            rows.append(base + ["infeasible (map < 1 px)"] + ["-"] * 7)
            continue
        times = e.get("train_time_sec", [])
        rows.append(
            base
            + [
                "→".join(str(x) for x in g["layer_sizes"]),
                g["receptive_fields"][-1],
                g["params"],
                g["conv_params"],
                f"{g['flops'] / 1e6:.2f}",
                report.fmt_ci(e.get("test_accuracy", [])),
                report.fmt_ci(e.get("train_accuracy", [])),
                f"{sum(times) / len(times):.1f}" if times else "-",
            ]
        )
    return headers, rows


def plot(exp: ml_collections.ConfigDict, entries: Mapping[str, Any], size: int, path: Path):
    """Accuracy vs kernel size, vs stride, vs depth; layer side vs depth (formula)."""
    base = dict(exp.base)
    name = lambda **c: setting_name(dict(base, **c))  # noqa: E731
    fig, axes = report.new_figure(4, 1, size=(4.2, 3.4))
    kernels = sorted(int(k) for k in exp.kernel_sizes)
    report.errorbar(
        axes[0, 0],
        kernels,
        [_acc(entries.get(name(kernel_size=k))) for k in kernels],
        f"{base['padding']}, depth {base['depth']}",
    )
    axes[0, 0].set(xlabel="kernel size", ylabel="test accuracy", title="kernel size")
    axes[0, 0].set_xticks(kernels)
    strides = sorted(int(s) for s in exp.strides)
    report.errorbar(
        axes[0, 1],
        strides,
        [_acc(entries.get(name(stride=s))) for s in strides],
        f"k={base['kernel_size']}, depth {base['depth']}",
    )
    axes[0, 1].set(xlabel="stride", title="stride")
    axes[0, 1].set_xticks(strides)
    depths = sorted(int(d) for d in exp.depths)
    for padding in exp.paddings:
        for k in exp.depth_kernels:
            groups = [
                _acc(entries.get(name(kernel_size=int(k), padding=padding, depth=d)))
                for d in depths
            ]
            report.errorbar(
                axes[0, 2],
                depths,
                groups,
                f"k={k} {padding}",
                linestyle="-" if padding == "SAME" else "--",
            )
    axes[0, 2].set(xlabel="depth (conv layers)", title="depth x kernel x padding")
    axes[0, 2].set_xticks(depths)
    for k in kernels:
        sides, side = [size], size
        for _ in range(8):
            side = side - k + 1
            if side < 1:
                break
            sides.append(side)
        axes[0, 3].plot(range(len(sides)), sides, marker="o", label=f"k={k} VALID")
    axes[0, 3].axhline(size, color="grey", linestyle=":", label="SAME (any k)")
    axes[0, 3].set(xlabel="depth", ylabel="feature-map side", title="layer size (formula)")
    for ax in axes.flat:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    report.save_figure(fig, path)


def run_experiment(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains every feasible setting x seed (resuming), then writes tables, claims, plot."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    exp = config.experiment
    data = config.dataset
    ds = datasets.check(data.name, data_dir=data.get("data_dir"), **dict(data.options or {}))
    t0 = time.time()
    entries: dict[str, dict[str, Any]] = {}
    configs = {}
    for s in settings(exp):
        cfg = variant_config(config, s)
        entries[setting_name(s)] = {
            "setting": s,
            "geometry": geometry(cfg, ds.image_shape, ds.num_classes),
        }
        if entries[setting_name(s)]["geometry"]["feasible"]:
            configs[setting_name(s)] = cfg
    print(
        f"{len(configs)} feasible settings of {len(entries)}, seeds {list(exp.seeds)}", flush=True
    )
    rows = report.train_seeds(configs, workdir / "runs", exp.seeds, exp.get("vmap_seeds", False))
    for row in rows:
        e, r, k = entries[row["variant"]], row["results"], row["num_seeds"]
        e.setdefault("seeds", []).append(row["seed"])
        e.setdefault("test_accuracy", []).append(r["test_accuracy"])
        e.setdefault("train_accuracy", []).append(r["final"]["train"]["accuracy"])
        e.setdefault("train_time_sec", []).append(r["train_time_sec"] / k)  # share of K seeds
        e.setdefault("wall_time_sec", []).append(r["wall_time_sec"] / k)
        e.setdefault("run_dirs", []).append(row["run_dir"])
    size = int(ds.image_shape[0])
    claims = check_claims(exp, entries, size)
    headers, rows = table(entries)
    results = {
        "dataset": ds.name,
        "image_shape": list(ds.image_shape),
        "seeds": list(exp.seeds),
        "epochs": config.train.num_epochs,
        "vmap_seeds": bool(exp.get("vmap_seeds", False)),
        "settings": entries,
        "max_valid_depth": {int(k): max_depth(int(k), 1, "VALID", size) for k in exp.kernel_sizes},
        "claims": claims,
        "wall_time_sec": time.time() - t0,
    }
    atomic_write_json(workdir / "results.json", results)
    atomic_write_text(workdir / "table.csv", report.csv_text(headers, rows))
    atomic_write_text(workdir / "table.md", report.markdown_table(headers, rows))
    atomic_write_text(workdir / "claims.md", report.claims_markdown(claims))
    plot(exp, entries, size, workdir / "hyperparameters.png")
    print(report.markdown_table(headers, rows))
    print(report.claims_markdown(claims))
    print(
        f"Wrote {workdir}/results.json, table.md, claims.md, hyperparameters.png "
        f"({time.time() - t0:.0f} s)"
    )
    return results


if __name__ == "__main__":
    cli.main(
        run_experiment,
        default_config="experiments/configs/hyperparameters_smoke.py",
        default_workdir="runs/hyperparameters",
    )
