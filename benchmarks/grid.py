"""A tuning grid as separate programs vs one grid unit (`cnn_jax.config.grid`), end to end.

    python -m benchmarks.grid [--rounds 2] [--epochs 10] [--report benchmarks/REPORT_grid.md]

The cell is the regularizer study's tuning cell (experiments/regularization/configs/base.py):
the strided MNIST CNN on 1,000 MNIST training images (batch 50, 20 steps per epoch), decoupled
weight decay over 3 strengths x 3 AdamW rates, one seed: 9 settings. `separate` trains them
through `sweep.run_sweep` as 9 programs; `grid` as one 9-member program (`vmap_grids=True`).
Each round trains both from scratch into fresh workdirs, in alternating order; the figure is
the whole sweep's wall time (compile, training, evaluation, writing), so it is what a study
pays. Also printed: the largest difference in test accuracy between a setting's two runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import common
from benchmarks.loop import mnist_prepared
from cnn_jax.runs.sweep import run_sweep
from experiments.regularization.configs import base

RATES = (1e-3, 3e-3, 1e-2)
DECAYS = (0.05, 0.3, 1.5)


def cell_configs(epochs: int) -> dict:
    """The 9 settings of the tuning cell, keyed by their run names."""
    out = {}
    for lr in RATES:
        for wd in DECAYS:
            config = base.get_config()
            config.dataset.name = "mnist"
            config.train.num_epochs = epochs
            config.train.eval_train_at_end = False
            config.optim.learning_rate, config.optim.weight_decay = lr, wd
            out[f"weight_decay_s{wd}_lr{lr}"] = config
    return out


def timed_sweep(configs: dict, grids: bool) -> tuple[float, dict[str, float]]:
    """(wall seconds, {setting: test accuracy}) of the whole sweep in a fresh workdir."""
    with tempfile.TemporaryDirectory() as workdir:
        t0 = time.perf_counter()
        rows = run_sweep(configs, workdir, [0], vmap_grids=grids, verbose=False)
        wall = time.perf_counter() - t0
    return wall, {r["variant"]: r["results"]["test_accuracy"] for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args()
    if not mnist_prepared():
        raise SystemExit("benchmarks.grid: MNIST is not prepared; run `make data` first")
    configs = cell_configs(args.epochs)
    walls: dict[str, list[float]] = {"separate": [], "grid": []}
    accuracy: dict[str, dict[str, float]] = {}
    load_start = common.load_average()
    for r in range(args.rounds):
        for mode in ("separate", "grid") if r % 2 == 0 else ("grid", "separate"):
            wall, accuracy[mode] = timed_sweep(configs, grids=mode == "grid")
            walls[mode].append(wall)
            print(f"round {r + 1}: {mode} {wall:.1f} s", flush=True)
    ratios = [s / g for s, g in zip(walls["separate"], walls["grid"])]
    gap = max(abs(accuracy["grid"][k] - accuracy["separate"][k]) for k in configs)
    lines = [
        "# A tuning grid: 9 separate programs vs one 9-member grid unit",
        "",
        f"`python -m benchmarks.grid --rounds {args.rounds} --epochs {args.epochs}`; "
        f"{common.cpu_model()}, load average {load_start:.2f} at the start, "
        f"{common.load_average():.2f} at the end.",
        "",
        "| mode | wall per sweep (s), median | rounds (s) |",
        "|---|---|---|",
        *(
            f"| {m} | {statistics.median(w):.1f} | {', '.join(f'{x:.1f}' for x in w)} |"
            for m, w in walls.items()
        ),  # fmt: skip
        "",
        f"Grid speedup (separate / grid, per round): {', '.join(f'{x:.2f}x' for x in ratios)}; "
        f"median {statistics.median(ratios):.2f}x. Largest test-accuracy difference between "
        f"a setting's two runs: {gap * 100:.2f} pt (float rounding).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.report is not None:
        args.report.write_text(text)


if __name__ == "__main__":
    main()
