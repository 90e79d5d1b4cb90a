r"""Activations: training speed of ReLU vs sigmoid vs tanh vs GELU vs none, and linear collapse.

    python -m experiments.activations \
        --config=experiments/configs/activations_smoke.py --workdir=runs/activations_smoke
    python -m experiments.activations \
        --config=experiments/configs/activations_full.py --workdir=runs/activations

Part 1 (the seed: "ReLU trains faster than sigmoid"): one CNN (conv blocks with average
pooling and a flatten + dense head, so with the identity activation the whole network is
linear) trained with each activation and each optimizer in config.experiment.optimizers,
over seeds. From each run's metrics.jsonl: the first logged step whose training accuracy
(mean over the logging window) reaches experiment.target_accuracy, its seconds (steps x the
run's steady seconds per step, compile excluded), final accuracies; curves plotted.

Part 2 (the seed: "without a nonlinearity, a deep CNN devolves into one convolution"):
(a) numerically, a random stack of convolutions equals one convolution with the composed
kernel (`cnn_jax.linear_collapse`) for VALID and CIRCULAR padding, while SAME zero padding
differs at the border; (b) each trained deep linear CNN is collapsed into a one-conv CNN that
gives the same logits; (c) the deep linear CNN, a single conv layer of the composed size and
the same deep CNN with ReLU are trained over seeds.

With experiment.vmap_seeds the K seeds of a variant train as one vmapped program (one
compile): steps to target stay per seed, while seconds and ms / step are then those of the
K-seed program, the same for every variant, so only their ratios compare activations.
Writes to --workdir: runs/<variant>/... (the trainer's run dirs), results.json, speed.csv,
speed.md, collapse.md, claims.md, activation_curves.png, collapse.png.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cnn_jax import im2col, linear_collapse
from cnn_jax.model_spec import spec_from_config
from cnn_jax.models import CNN
from cnn_jax.results import atomic_write_json, atomic_write_text
from cnn_jax.runs import load_run
from cnn_jax.steps import normalize
from experiments import anatomy_report as report
from experiments import cli

COLLAPSE_VARIANTS = ("deep_linear", "single_conv", "deep_relu")


def _with(config: ml_collections.ConfigDict, blocks: Sequence[Mapping[str, Any]], optim=None):
    out = config.copy_and_resolve_references()
    with out.unlocked():
        out.model.blocks = [dict(b) for b in blocks]
        for key, value in dict(optim or {}).items():
            out.optim[key] = value
    return out


def activation_configs(config: ml_collections.ConfigDict) -> dict[str, ml_collections.ConfigDict]:
    """{'relu_adamw': config, ...}: every activation x optimizer on the same architecture."""
    exp = config.experiment
    configs = {}
    for opt_name, optim in exp.optimizers.items():
        for act in exp.activations:
            blocks = [dict(b, activation=act) for b in exp.blocks]
            configs[f"{act}_{opt_name}"] = _with(config, blocks, optim)
    return configs


def collapse_blocks(exp: ml_collections.ConfigDict) -> dict[str, list[dict[str, Any]]]:
    """Blocks of the three collapse variants: k x k convs (identity / ReLU) and one big conv."""
    c = exp.collapse
    deep = [
        {"features": int(c.features), "kernel_size": int(c.kernel_size), "padding": "VALID"}
        for _ in range(int(c.depth))
    ]
    composed = int(c.depth) * (int(c.kernel_size) - 1) + 1
    return {
        "deep_linear": [dict(b, activation="identity") for b in deep],
        "single_conv": [
            {
                "features": int(c.features),
                "kernel_size": composed,
                "padding": "VALID",
                "activation": "identity",
            }
        ],
        "deep_relu": [dict(b, activation="relu") for b in deep],
    }


def collapse_configs(config: ml_collections.ConfigDict) -> dict[str, ml_collections.ConfigDict]:
    """{'collapse_deep_linear': config, ...}."""
    return {
        f"collapse_{name}": _with(config, blocks)
        for name, blocks in collapse_blocks(config.experiment).items()
    }


def random_collapse_check(seed: int = 0) -> dict[str, Any]:
    """Max |stack - composed| on random weights: VALID, CIRCULAR, and SAME (interior, border)."""
    rng = np.random.default_rng(seed)
    channels, kernels, strides = (3, 8, 8, 4), (3, 3, 5), (1, 2, 1)
    stack = [
        linear_collapse.make_layer(rng.normal(size=(k, k, a, b)) / k, rng.normal(size=b), s)
        for k, s, a, b in zip(kernels, strides, channels[:-1], channels[1:])
    ]
    one = linear_collapse.compose(stack)
    same_stack = [linear_collapse.make_layer(s.kernel_hwio, s.bias_o, 1) for s in stack]
    same_one = linear_collapse.compose(same_stack)
    border = (same_one.kernel_size[0] - 1) // 2

    def zero_padded(layer, x_bhwc):  # SAME zero padding, stride 1
        kernel = jnp.asarray(layer.kernel_hwio, jnp.float32)
        return im2col.conv_direct(x_bhwc, kernel, jnp.asarray(layer.bias_o, jnp.float32), 1, "SAME")

    @jax.jit
    def differences(x_bhwc):  # one compiled program instead of many eager ops
        out = {}
        for mode in linear_collapse.MODES:
            a = linear_collapse.apply_stack(stack, x_bhwc, mode)
            b = linear_collapse.apply_conv(one, x_bhwc, mode)
            out[f"max_abs_diff_{mode.lower()}"] = jnp.max(jnp.abs(a - b))
            out["output_scale"] = jnp.max(jnp.abs(a))
        y = x_bhwc
        for layer in same_stack:
            y = zero_padded(layer, y)
        diff = jnp.abs(y - zero_padded(same_one, x_bhwc))
        out["max_abs_diff_same_interior"] = jnp.max(diff[:, border:-border, border:-border])
        out["max_abs_diff_same_overall"] = jnp.max(diff)
        return out

    x_bhwc = jnp.asarray(rng.normal(size=(4, 24, 24, 3)), jnp.float32)
    measured = {k: float(v) for k, v in differences(x_bhwc).items()}
    return {
        "kernels": list(kernels),
        "strides": list(strides),
        "channels": list(channels),
        "composed_kernel": list(one.kernel_size),
        "composed_stride": one.stride,
        "same_border_width": border,
        **measured,
    }


def trained_collapse_check(run_dir: str | Path, max_images: int = 512) -> dict[str, Any]:
    """Collapses a trained deep linear CNN into one conv layer; compares logits on test images."""
    run = load_run(run_dir)
    params = run.variables["params"]
    one = linear_collapse.compose(linear_collapse.stack_from_params(params, run.spec))
    block = {
        "features": int(one.kernel_hwio.shape[-1]),
        "kernel_size": one.kernel_size[0],
        "stride": one.stride,
        "padding": "VALID",
        "activation": "identity",
    }
    model_cfg = dict(run.config.model.to_dict(), blocks=[block])
    single_spec = spec_from_config(model_cfg, run.dataset.num_classes)
    single_params = {
        "block0": {
            "conv": {
                "kernel": jnp.asarray(one.kernel_hwio, jnp.float32),
                "bias": jnp.asarray(one.bias_o, jnp.float32),
            }
        },
        **{k: v for k, v in params.items() if not k.startswith("block")},
    }
    images = run.dataset.test.images[:max_images]
    x_bhwc = normalize(jnp.asarray(images), run.dataset.mean, run.dataset.std)
    deep_logits, _ = jax.jit(partial(run.model.apply, train=False))(run.variables, x_bhwc)
    single_model = CNN(single_spec)
    single_logits, _ = jax.jit(partial(single_model.apply, train=False))(
        {"params": single_params}, x_bhwc
    )
    deep_logits, single_logits = np.asarray(deep_logits), np.asarray(single_logits)
    return {
        "run_dir": str(run_dir),
        "composed_kernel": list(one.kernel_size),
        "max_abs_logit_diff": float(np.max(np.abs(deep_logits - single_logits))),
        "logit_scale": float(np.max(np.abs(deep_logits))),
        "same_prediction_fraction": float(
            np.mean(deep_logits.argmax(-1) == single_logits.argmax(-1))
        ),
        "images": int(len(images)),
    }


def collapse_claim(random_check: Mapping[str, Any], trained: Sequence[Mapping[str, Any]]):
    """Held when every composed conv matches its stack to float32 round-off (1e-4 relative)."""
    scale = max(random_check["output_scale"], 1.0)
    relative = [random_check[f"max_abs_diff_{m.lower()}"] / scale for m in linear_collapse.MODES]
    relative += [c["max_abs_logit_diff"] / max(c["logit_scale"], 1.0) for c in trained]
    evidence = (
        f"random 3-layer stack ({random_check['kernels']} kernels, strides "
        f"{random_check['strides']}) -> one {random_check['composed_kernel'][0]}x"
        f"{random_check['composed_kernel'][1]} conv, stride {random_check['composed_stride']}: "
        f"max |difference| VALID {random_check['max_abs_diff_valid']:.1e}, CIRCULAR "
        f"{random_check['max_abs_diff_circular']:.1e} (outputs up to {scale:.0f}); SAME zero "
        f"padding: interior {random_check['max_abs_diff_same_interior']:.1e}, border "
        f"{random_check['max_abs_diff_same_overall']:.1f} (differs, as expected)"
    )
    if trained:
        evidence += "; trained deep linear CNNs collapsed to one conv: " + ", ".join(
            f"max logit difference {c['max_abs_logit_diff']:.1e}, same prediction "
            f"{c['same_prediction_fraction']:.0%}"
            for c in trained
        )
    return report.claim(
        "a stack of convolutions without activation equals one convolution",
        "held" if max(relative) < 1e-4 else "failed",
        evidence,
    )


def _collect(rows: Sequence[Mapping[str, Any]], target: float) -> dict[str, dict[str, list]]:
    per: dict[str, dict[str, list]] = {}
    for row in rows:
        r = row["results"]
        curve = report.train_curve(row["run_dir"])
        hit = report.steps_to_target(curve, target)
        e = per.setdefault(row["variant"], {})
        for key, value in (
            ("seed", row["seed"]),
            ("run_dir", row["run_dir"]),
            ("test_accuracy", r["test_accuracy"]),
            ("train_accuracy", r["final"]["train"]["accuracy"]),
            ("steps_to_target", hit["steps"]),
            ("seconds_to_target", hit["seconds"]),
            ("sec_per_step", hit["sec_per_step"]),
            ("num_seeds", row["num_seeds"]),
            ("train_time_sec", r["train_time_sec"]),
            ("curve", curve),
        ):
            e.setdefault(key, []).append(value)
    return per


def _reached(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def speed_table(per: Mapping[str, Any], total_steps: int) -> tuple[list[str], list[list[Any]]]:
    """One row per variant; seconds are per program (K vmapped seeds share one)."""
    k = max((max(e["num_seeds"]) for e in per.values()), default=1)
    program = f" ({k} seeds vmapped)" if k > 1 else ""
    headers = [
        "variant",
        "reached target",
        "steps to target",
        f"seconds to target{program}",
        f"ms / step{program}",
        "train accuracy %",
        "test accuracy %",
    ]
    rows = []
    for name, e in per.items():
        steps, secs = _reached(e["steps_to_target"]), _reached(e["seconds_to_target"])
        per_step = _reached(e["sec_per_step"])
        rows.append(
            [
                name,
                f"{len(steps)}/{len(e['steps_to_target'])}",
                report.fmt_ci(steps, scale=1, digits=0) if steps else f"> {total_steps}",
                report.fmt_ci(secs, scale=1, digits=2) if secs else "-",
                f"{1000 * sum(per_step) / len(per_step):.1f}" if per_step else "-",
                report.fmt_ci(e["train_accuracy"]),
                report.fmt_ci(e["test_accuracy"]),
            ]
        )
    return headers, rows


def _steps_or_budget(values: Sequence[int | None], total_steps: int) -> list[float]:
    """Steps to target; a run that never reached it counts as the whole budget (a lower bound)."""
    return [float(total_steps if v is None else v) for v in values]


def spread(a: Sequence[float], b: Sequence[float]) -> str:
    """A note when neither group varies across seeds (no t-test possible)."""
    return " (identical across seeds)" if np.ptp(a) == 0 and np.ptp(b) == 0 else ""


def check_claims(
    config: ml_collections.ConfigDict, per: Mapping[str, Any], total_steps: int
) -> list[dict[str, str]]:
    """ReLU reaches the target in fewer steps than sigmoid (per optimizer); linear collapse."""
    exp = config.experiment
    claims = []
    for opt in exp.optimizers:
        relu, sigm = per.get(f"relu_{opt}"), per.get(f"sigmoid_{opt}")
        if relu is None or sigm is None:
            continue
        a = _steps_or_budget(relu["steps_to_target"], total_steps)
        b = _steps_or_budget(sigm["steps_to_target"], total_steps)
        c = report.compare(a, b)
        p = "n/a" if c["p_value"] is None else f"{c['p_value']:.3f}"
        claims.append(
            report.claim(
                f"ReLU trains faster than sigmoid ({opt})",
                report.verdict(c, -1),
                f"steps to {exp.target_accuracy:.0%} train accuracy: ReLU {np.mean(a):.0f}, "
                f"sigmoid {np.mean(b):.0f} (unreached = budget {total_steps}); Welch p = {p}"
                f"{spread(a, b)}; final test "
                f"accuracy ReLU {report.fmt_ci(relu['test_accuracy'])}, sigmoid "
                f"{report.fmt_ci(sigm['test_accuracy'])} %",
            )
        )
    lin, one, relu = (per.get(f"collapse_{n}") for n in COLLAPSE_VARIANTS)
    if lin and one:
        c = report.compare(lin["test_accuracy"], one["test_accuracy"])
        result = report.verdict(c, +1)
        claims.append(
            report.claim(
                "a deep linear CNN does no better than one conv layer",
                {"held": "failed", "failed": "held", "not significant": "held"}[result],
                f"test accuracy deep linear {report.fmt_ci(lin['test_accuracy'])} vs single conv "
                f"{report.fmt_ci(one['test_accuracy'])} % (Welch: {result} that deep is better)",
            )
        )
    if lin and relu:
        c = report.compare(relu["test_accuracy"], lin["test_accuracy"])
        claims.append(
            report.claim(
                "the nonlinearity is what makes depth pay off (deep ReLU beats deep linear)",
                report.verdict(c, +1),
                f"test accuracy deep ReLU {report.fmt_ci(relu['test_accuracy'])} vs deep linear "
                f"{report.fmt_ci(lin['test_accuracy'])} %, difference "
                f"{100 * c['diff']:+.1f} points",
            )
        )
    return claims


def plot_curves(per: Mapping[str, Any], config: ml_collections.ConfigDict, path: Path) -> None:
    """Training accuracy and loss vs step, one panel pair per optimizer, one line per seed."""
    exp = config.experiment
    opts = list(exp.optimizers)
    fig, axes = report.new_figure(2, len(opts), size=(4.8, 3.3))
    colors = dict(zip(exp.activations, ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7")))
    for r, opt in enumerate(opts):
        for act in exp.activations:
            e = per.get(f"{act}_{opt}")
            if e is None:
                continue
            for i, curve in enumerate(e["curve"]):
                label = act if i == 0 else None
                axes[r, 0].plot(
                    curve["step"], curve["accuracy"], color=colors[act], label=label, alpha=0.8
                )
                axes[r, 1].plot(
                    curve["step"], curve["loss"], color=colors[act], label=label, alpha=0.8
                )
        axes[r, 0].axhline(exp.target_accuracy, color="grey", linestyle=":")
        axes[r, 0].set(xlabel="step", ylabel="train accuracy (window)", title=f"{opt}")
        axes[r, 1].set(xlabel="step", ylabel="train loss", yscale="log", title=f"{opt}")
        for ax in axes[r]:
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
    report.save_figure(fig, path)


def plot_collapse(per: Mapping[str, Any], path: Path) -> None:
    """Test accuracy of the three collapse variants (per seed and mean)."""
    fig, axes = report.new_figure(1, 1, size=(4.5, 3.3))
    ax = axes[0, 0]
    names = [n for n in COLLAPSE_VARIANTS if f"collapse_{n}" in per]
    groups = [per[f"collapse_{n}"]["test_accuracy"] for n in names]
    report.errorbar(ax, list(range(len(names))), groups, "mean ± 95% CI", linestyle="none")
    for i, values in enumerate(groups):
        ax.scatter([i] * len(values), values, color="grey", s=12, zorder=3)
    ax.set_xticks(range(len(names)), names)
    ax.set(ylabel="test accuracy", title="linear collapse")
    ax.grid(alpha=0.3)
    report.save_figure(fig, path)


def run_experiment(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains all variants x seeds (resuming), checks the collapse, writes tables and plots."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    exp = config.experiment
    t0 = time.time()
    configs = {**activation_configs(config), **collapse_configs(config)}
    print(f"{len(configs)} variants x seeds {list(exp.seeds)}", flush=True)
    rows = report.train_seeds(configs, workdir / "runs", exp.seeds, exp.get("vmap_seeds", False))
    per = _collect(rows, float(exp.target_accuracy))
    total_steps = max(r["results"]["steps"] for r in rows)
    random_check = random_collapse_check()
    trained_checks = [
        trained_collapse_check(d) for d in per.get("collapse_deep_linear", {}).get("run_dir", [])
    ]
    claims = check_claims(config, per, total_steps)
    claims.append(collapse_claim(random_check, trained_checks))
    headers, table_rows = speed_table(
        {k: v for k, v in per.items() if not k.startswith("collapse_")}, total_steps
    )
    c_headers, c_rows = speed_table(
        {k: v for k, v in per.items() if k.startswith("collapse_")}, total_steps
    )
    results = {
        "target_accuracy": exp.target_accuracy,
        "total_steps": total_steps,
        "seeds": list(exp.seeds),
        "vmap_seeds": bool(exp.get("vmap_seeds", False)),
        "variants": {k: {m: v for m, v in e.items() if m != "curve"} for k, e in per.items()},
        "curves": {k: e["curve"] for k, e in per.items()},
        "random_collapse_check": random_check,
        "trained_collapse_checks": trained_checks,
        "claims": claims,
        "wall_time_sec": time.time() - t0,
    }
    atomic_write_json(workdir / "results.json", results)
    atomic_write_text(workdir / "speed.csv", report.csv_text(headers, table_rows))
    atomic_write_text(workdir / "speed.md", report.markdown_table(headers, table_rows))
    atomic_write_text(workdir / "collapse.md", report.markdown_table(c_headers, c_rows))
    atomic_write_text(workdir / "claims.md", report.claims_markdown(claims))
    plot_curves(per, config, workdir / "activation_curves.png")
    plot_collapse(per, workdir / "collapse.png")
    print(report.markdown_table(headers, table_rows))
    print(report.markdown_table(c_headers, c_rows))
    print(report.claims_markdown(claims))
    print(
        f"Wrote {workdir}/results.json, speed.md, collapse.md, claims.md and plots "
        f"({time.time() - t0:.0f} s)"
    )
    return results


if __name__ == "__main__":
    cli.main(
        run_experiment,
        default_config="experiments/configs/activations_smoke.py",
        default_workdir="runs/activations",
    )
