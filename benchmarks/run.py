"""Runs the benchmarks, prints each table and writes benchmarks/REPORT.md.

    python -m benchmarks.run --quick          # short rounds, batch 128, no torch.compile (< 5 min)
    python -m benchmarks.run                  # the full run (quiet machine; est. 40-60 min)
    python -m benchmarks.run --smoke --mnist  # + end-to-end wall of the experiments
    python -m benchmarks.run --only none --mnist-fast   # MNIST to 99.2%, 5 seeds (~1-2 min)

Figures are medians over rounds of contenders run in turns (see interleave.py); the load
average before and after each section says how busy the machine was. PyTorch rows need the
benchmark-only extra `pip install torch==2.13.0`; tcmalloc rows need libtcmalloc-minimal4.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from collections.abc import Callable

from benchmarks import common, sections, time_to_accuracy, xla_ops
from benchmarks import onednn as onednn_bench

PRESETS = ("mnist_cnn", "lenet5", "resnet_small")
SECTIONS = (
    "settings", "presets", "onednn", "fence", "cache", "pooling", "pipeline", "seeds", "profile",
    "ops",
)  # fmt: skip
QUICK_SECTIONS = ("settings", "presets", "fence", "pooling", "pipeline", "seeds")  # < 5 min


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="cnn_jax CPU benchmarks -> benchmarks/REPORT.md")
    parser.add_argument("--quick", action="store_true", help="short rounds, batch 128 only")
    parser.add_argument("--batches", default=None, help="comma list (default 32,128,512)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma list of presets")
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma list of sections, or none (default: all; --quick: {','.join(QUICK_SECTIONS)})",
    )
    parser.add_argument(
        "--no-torch-compile", action="store_true", help="skip the torch.compile rows"
    )
    parser.add_argument("--smoke", action="store_true", help="+ wall of every smoke config")
    parser.add_argument("--mnist", action="store_true", help="+ MNIST CNN 3 epochs end to end")
    parser.add_argument(
        "--mnist-fast", action="store_true", help="+ mnist_fast.py time to accuracy (5 seeds)"
    )
    parser.add_argument("--report", default=str(common.REPO / "benchmarks" / "REPORT.md"))
    args = parser.parse_args(argv)
    args.batches = [
        int(b) for b in (args.batches or ("128" if args.quick else "32,128,512")).split(",")
    ]
    args.presets = [p for p in args.presets.split(",") if p]
    unknown = [p for p in args.presets if p not in common.PRESET_INPUTS]
    if unknown:
        parser.error(f"--presets: unknown {unknown}; allowed: {', '.join(common.PRESET_INPUTS)}")
    only = args.only or ",".join(QUICK_SECTIONS if args.quick else SECTIONS)
    args.only = [s for s in only.split(",") if s and s != "none"]
    args.torch_compile = not (args.quick or args.no_torch_compile)
    if bad := [s for s in args.only if s not in SECTIONS]:
        parser.error(f"--only: unknown {bad}; allowed: {', '.join(SECTIONS)}")
    return args


def machine_section() -> tuple[str, dict]:
    """The machine, versions, the run path's settings and the measured matmul peak."""
    desc = common.machine_description()
    desc["torch"] = _torch_version()
    desc["flax"] = _version("flax")
    desc["tcmalloc"] = common.tcmalloc_path() or "not installed"
    desc["run path settings"] = json.dumps(common.run_path_env())
    peak = common.matmul_peak_gflops()
    desc["matmul peak GFLOP/s (jax / numpy, f32 2048^2)"] = (
        f"{peak['jax']:.1f} / {peak['numpy']:.1f}"
    )
    desc["peak"] = max(peak.values())
    table = "\n".join(f"- {k}: {v}" for k, v in desc.items() if k != "peak")
    return table, desc


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "not installed"


def _torch_version() -> str:
    return _version("torch") if sections.torch_available() else "not installed"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    budget = sections.QUICK if args.quick else sections.FULL
    command = "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Benchmark report",
        f"Written by `{command.strip()}` on {started}. Medians over rounds of contenders run "
        "in turns; `x ...`: median per-round ratio; `start-up s`: train-step compile "
        "(JAX) or first step (PyTorch); `peak RSS MiB`: the worker's peak resident memory; "
        "`cpu/wall`: CPU seconds per wall second (2 = both cores busy); `faults/step`: minor "
        "page faults per step. `load` is the 1-minute load average before -> after.",
    ]
    load, cores = common.load_average(), os.cpu_count() or 1
    if load > 0.5 * cores:
        parts.append(
            f"**Busy machine: load {load:.2f} on {cores} cores at the start.** Absolute figures "
            "are depressed, PyTorch's most (its OpenMP threads spin while descheduled, see "
            "the profile), so ratios to PyTorch overstate JAX's lead; rerun on a quiet machine."
        )
    print("\n\n".join(parts[1:]), flush=True)
    machine, desc = machine_section()
    parts += ["## Machine", machine]
    print(machine, flush=True)
    peak = desc["peak"]
    jobs: list[tuple[str, Callable[[], tuple[str, dict]]]] = []
    if "settings" in args.only:
        jobs.append(
            ("Speed settings (mnist_cnn, batch 128)", lambda: sections.settings(budget, peak))
        )
    if "presets" in args.only:
        jobs.append(
            (
                "Train step per preset and batch",
                lambda: sections.presets(
                    args.presets, args.batches, budget, peak, args.torch_compile
                ),
            )
        )
    if "onednn" in args.only:
        title = "oneDNN convolutions on / off per preset and batch"
        run = lambda: onednn_bench.presets(
            args.presets, args.batches, budget, peak, args.torch_compile
        )
        jobs.append((title, run))
    if "fence" in args.only:
        title = "Convolution fence (run path, batch 128)"
        jobs.append((title, lambda: sections.conv_fence(budget)))
    if "cache" in args.only:
        jobs.append(
            ("Persistent compilation cache", lambda: sections.compilation_cache(args.presets))
        )
    if "pooling" in args.only:
        jobs.append(("Tile pooling vs reduce_window", lambda: sections.pooling(budget)))
    if "pipeline" in args.only:
        jobs.append(("Input pipeline overhead", lambda: sections.pipeline(budget)))
    if "seeds" in args.only:
        jobs.append(("K seeds: strategies vs K runs", lambda: sections.seeds(budget)))
    if "ops" in args.only:
        title = "XLA ops (jax.profiler, run path, batch 128)"
        jobs.append((title, lambda: xla_ops.section(tuple(args.presets))))
    if "profile" in args.only:
        jobs.append(("CPU profile (perf, batch 128)", lambda: sections.cpu_profile(budget)))
    if args.mnist_fast:
        jobs.append(("MNIST time to accuracy (mnist_fast, 5 seeds)", time_to_accuracy.run))
    if args.smoke or args.mnist:
        jobs.append(("End to end", lambda: sections.end_to_end(args.smoke, args.mnist)))
    for title, job in jobs:
        common.print_header(title)
        load0, t0 = common.load_average(), time.perf_counter()
        text, _ = job()
        load1 = common.load_average()
        footer = f"(load {load0:.2f} -> {load1:.2f}; section took {time.perf_counter() - t0:.0f} s)"
        print(text + "\n\n" + footer, flush=True)
        parts += [f"## {title}", text, footer]
        _write(args.report, parts, done=False)  # a stopped run keeps the finished sections
    _write(args.report, parts, done=True)
    print(f"\nReport: {args.report}")


def _write(path: str, parts: list[str], done: bool) -> None:
    tail = [] if done else ["(run in progress or stopped: sections above are complete)"]
    with open(path, "w") as f:
        f.write("\n\n".join(parts + tail) + "\n")


if __name__ == "__main__":
    main()
