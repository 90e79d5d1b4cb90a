"""The oneDNN convolution path (`cnn_jax.nn.onednn`) on and off, against PyTorch.

    python -m benchmarks.onednn --report benchmarks/REPORT_onednn.md          # full
    python -m benchmarks.onednn --quick --report /tmp/onednn.md               # a check

Sections (each contender a worker process, contenders in turns, `interleave.py`):
- presets: every preset x batch, the run path with oneDNN convolutions and with XLA's, against
  PyTorch's best eager setting (channels_last + tcmalloc) and torch.compile, then the targets
  (>= 1.3x both, >= 60% of the matmul peak on mnist_cnn and resnet_small at batch 128);
- parts: at batch 128, each part (forward, input gradient, kernel gradient) put back on XLA
  in turn: which parts oneDNN wins;
- study: wall time of a study of record end to end (fresh processes), oneDNN on and off;
- profile: `perf` samples of the targets' rows at batch 128 (mnist_cnn, resnet_small: oneDNN
  run path, PyTorch best eager, torch.compile): CPU share by library and symbol, which says
  where the time of a missed target goes (oneDNN's own kernels in both frameworks vs the rest).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common, sections
from benchmarks.interleave import Contender, interleave, ratio, rows, spread

ON, OFF = "jax run path +oneDNN", "jax run path, XLA convs"
PARTS = ("forward", "backward_data", "backward_weights")
# A study of record that trains on the embedded digits (no data to fetch): results/
# anatomy_activations_digits; record_as emptied so the timed runs never publish to results/.
STUDY = (
    "experiments.anatomy.activations",
    "experiments/anatomy/configs/activations_full.py",
    "--config.experiment.record_as=",
)


def _jax(preset: str, batch: int, on: bool, parts: tuple[str, ...] = PARTS) -> dict:
    spec = {"backend": "jax", "preset": preset, "batch": batch, "onednn": on}
    return spec | ({"onednn_parts": list(parts)} if on and parts != PARTS else {})


def _target_row(preset: str, batch: int, results: list, peak: float | None) -> dict:
    on, out = results[0], {"preset": preset, "batch": batch}
    out["oneDNN % peak"] = 100 * on.gflops / peak if peak else float("nan")
    out["x XLA convs"] = spread(on, results[1])
    for r in results[2:]:
        label = "torch.compile" if r.name.startswith("torch.compile") else "torch best eager"
        out[f"x {label}"] = spread(on, r)
        out[f"{label} >= 1.3"] = "met" if ratio(on, r) >= 1.3 else "missed"
    judged = batch == 128 and preset in ("mnist_cnn", "resnet_small")  # the peak target's rows
    out[">= 60% peak"] = ("met" if out["oneDNN % peak"] >= 60 else "missed") if judged else "-"
    return out


def presets(names, batches, budget, peak, compile: bool) -> tuple[str, dict]:
    """Each preset x batch: oneDNN on, off, PyTorch best eager, torch.compile, in turns."""
    table, targets = [], []
    env = common.run_path_env()
    for preset in names:
        for b in batches:
            contenders = [Contender(ON, _jax(preset, b, True), env)]
            contenders.append(Contender(OFF, _jax(preset, b, False), env))
            contenders += sections.torch_contenders(b, preset, eager=False, compile=compile)
            steps = budget.steps(b, sections.PRESET_COST.get(preset, 1.0))
            results = interleave(contenders, steps, budget.rounds)
            for row in rows(results, results[0], peak):
                row.pop(f"x {ON} [min, max]")
                table.append({"preset": preset, **row})
            targets.append(_target_row(preset, b, results, peak))
            print(common.markdown_table(targets[-1:]), flush=True)
    text = common.markdown_table(table) + "\n\n**Targets** (oneDNN run path / contender: "
    text += "median [min, max] of per-round ratios):\n\n" + common.markdown_table(targets)
    return text, {"rows": table, "targets": targets}


def parts(names, budget, peak) -> tuple[str, dict]:
    """At batch 128: all parts on oneDNN, then each part on XLA instead, then none."""
    b, table = sections.MNIST_BATCH, []
    env = common.run_path_env()
    for preset in names:
        contenders = [Contender("all on oneDNN", _jax(preset, b, True), env)]
        for part in PARTS:
            rest = tuple(p for p in PARTS if p != part)
            contenders.append(Contender(f"{part} on XLA", _jax(preset, b, True, rest), env))
        contenders.append(Contender("all on XLA", _jax(preset, b, False), env))
        steps = budget.steps(b, sections.PRESET_COST.get(preset, 1.0))
        results = interleave(contenders, steps, budget.rounds)
        for r in results:
            table.append(
                {
                    "preset": preset,
                    "convolution parts": r.name,
                    "img/s median": r.median,
                    "x all on oneDNN [min, max]": spread(r, results[0]),
                }
            )
        print(common.markdown_table(table[-len(results) :]), flush=True)
    return common.markdown_table(table), {"rows": table}


def cpu_profile(names, budget) -> tuple[str, dict]:
    """perf samples at batch 128 of the oneDNN run path and PyTorch's two best settings, per
    preset: both frameworks call oneDNN for the convolutions, so its share of each step bounds
    the ratio the rest of the step can reach."""
    from benchmarks import profile

    if not profile.available():
        return "`perf` not installed (Debian: linux-perf): no profile.", {}
    b, env, out = sections.MNIST_BATCH, common.run_path_env(), []
    for preset in names:
        contenders = [Contender(f"{ON}, {preset}", _jax(preset, b, True), env)]
        contenders += sections.torch_contenders(b, preset, eager=False, compile=True)
        steps = budget.steps(b, sections.PRESET_COST.get(preset, 1.0))
        for c in contenders:
            result = profile.profile(c, steps)
            result["name"] = result["name"] if preset in result["name"] else f"{c.name}, {preset}"
            out.append(result)
            print(profile.markdown(result), flush=True)
    return "\n\n".join(profile.markdown(r) for r in out), {"rows": out}


def study(study_args: list[str], repeats: int) -> tuple[str, dict]:
    """Wall time of `python -m module --config=config *extra` (`study_args`: module, config,
    extra flags), oneDNN on / off alternating, fresh processes with the run path's settings and
    an empty compilation cache each."""
    module, config, *extra = study_args
    table = []
    for i in range(2 * repeats):
        on = i % 2 == 0
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **common.run_path_env(),
                "PYTHONPATH": str(common.REPO),
                "CNN_JAX_COMPILATION_CACHE": str(Path(tmp) / "cache"),
                "CNN_JAX_ONEDNN": "1" if on else "0",
            }
            args = [f"--config={config}", f"--workdir={Path(tmp) / 'run'}", *extra]
            t0 = time.perf_counter()
            common.run_module(module, args, env=env)
            wall = time.perf_counter() - t0
        row = {"study": module, "config": config, "oneDNN": "on" if on else "off"}
        table.append({**row, "wall s": wall})
        print(common.markdown_table(table[-1:]), flush=True)
    walls = {k: sorted(r["wall s"] for r in table if r["oneDNN"] == k) for k in ("on", "off")}
    best = {k: v[0] for k, v in walls.items()}
    note = f"Best wall: on {best['on']:.1f} s, off {best['off']:.1f} s "
    note += f"(off / on = {best['off'] / best['on']:.2f}x)."
    return common.markdown_table(table) + "\n\n" + note, {"rows": table}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="oneDNN convolutions on/off vs PyTorch")
    parser.add_argument("--quick", action="store_true", help="short rounds, batch 128 only")
    parser.add_argument("--batches", default=None, help="comma list (default 32,128,512)")
    parser.add_argument("--presets", default="mnist_cnn,lenet5,resnet_small")
    parser.add_argument(
        "--only", default="presets,parts,study,profile", help="comma list of sections"
    )
    parser.add_argument("--no-torch-compile", action="store_true")
    parser.add_argument("--study", default=",".join(STUDY), help="module,config[,flags]")
    parser.add_argument("--study-repeats", type=int, default=2)
    parser.add_argument(
        "--peak-gflops", type=float, default=None, help="matmul peak for %% peak (default: measure)"
    )
    parser.add_argument("--report", default=str(common.REPO / "benchmarks" / "REPORT_onednn.md"))
    args = parser.parse_args(argv)
    args.batches = [
        int(b) for b in (args.batches or ("128" if args.quick else "32,128,512")).split(",")
    ]
    args.presets = [p for p in args.presets.split(",") if p]
    args.only = [s for s in args.only.split(",") if s]
    return args


def _uptime() -> str:
    return "load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    from cnn_jax.nn import onednn
    from cnn_jax.nn.onednn import loader

    args = parse_args(argv)
    budget = sections.QUICK if args.quick else sections.FULL
    compile = not (args.quick or args.no_torch_compile)
    peak = args.peak_gflops or max(common.matmul_peak_gflops().values())
    shown = sys.argv[1:] if argv is None else argv
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts_out = [
        "# oneDNN convolutions: on / off against PyTorch",
        f"Written by `python -m benchmarks.onednn {' '.join(shown)}` on {started}; "
        f"{common.cpu_model()}, {os.cpu_count()} cores; matmul peak {peak:.1f} GFLOP/s "
        f"({'given' if args.peak_gflops else 'measured now'}); "
        f"oneDNN path: {loader.load().detail}. Medians over rounds of contenders run in turns.",
        f"Start: {_uptime()}.",
    ]
    if not onednn.available():
        parts_out.append("**oneDNN convolutions not available: the +oneDNN rows run XLA's.**")
    jobs = {
        "presets": (
            "Train step per preset and batch",
            lambda: presets(args.presets, args.batches, budget, peak, compile),
        ),
        "parts": (
            "Which parts run on oneDNN (batch 128)",
            lambda: parts(args.presets, budget, peak),
        ),
        "study": (
            "Training wall time end to end",
            lambda: study(args.study.split(","), args.study_repeats),
        ),
        "profile": (
            "Where the time goes (perf, batch 128)",
            lambda: cpu_profile([p for p in args.presets if p != "lenet5"], budget),
        ),
    }
    for name in args.only:
        title, job = jobs[name]
        common.print_header(title)
        load0, t0 = _uptime(), time.perf_counter()
        text, _ = job()
        footer = f"(start {load0}; end {_uptime()}; took {time.perf_counter() - t0:.0f} s)"
        print(text + "\n\n" + footer, flush=True)
        parts_out += [f"## {title}", text, footer]
        Path(args.report).write_text("\n\n".join(parts_out) + "\n")
    print(f"\nReport: {args.report}")


if __name__ == "__main__":
    main()
