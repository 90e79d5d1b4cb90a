"""Accelerator checks and benchmark -> a Markdown report (run by scripts/device_check.sh).

    python -m benchmarks.gpu --report "$OUT/REPORT_gpu.md" --budget-s 200   # on a GPU host
    python -m benchmarks.gpu --cpu-fallback --report /tmp/r.md   # tiny sizes on CPU: code path

Checks (each PASS/FAIL with a reason): the train step sharded over all devices (batch split
on 'data', state replicated on every device), bfloat16 compute (float32 params, finite loss),
state donation (the old state's buffers are freed), no per-step host sync (a loop of steps
under `jax.transfer_guard_device_to_host("disallow")`). Benchmark: resnet_small on 32x32x3 at
batch 512, float32 and bfloat16: img/s and % of the measured matmul peak of the device, next
to PyTorch (channels_last; eager, bf16 autocast, torch.compile) when torch sees the device.
Time to accuracy: an airbench-style run (Jordan 2024: batch 512-1024, short warm-up then
decay, a fixed number of epochs) of resnet_small on synthetic CIFAR-10-shaped data (50k/10k
32x32x3, 10 classes: class templates + shifts + noise); its difficulty is not CIFAR-10's, so
the time is a speed figure for this shape of workload, not a CIFAR-10 result.

The report is rewritten after each section, so a run stopped part-way leaves what it measured.
`--budget-s`: sections (checks, speed, time to accuracy, K-seed strategies, in that order)
that would start with less than their minimum left are skipped and named in the report;
time to accuracy stops at its target or at the budget.
"""

from __future__ import annotations

import argparse
import datetime
import math
import time
import traceback

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from cnn_jax import seed_strategy

SHAPE = (32, 32, 3)


def synthetic_cifar(n_train: int, n_test: int, seed: int = 0):
    """A CIFAR-10-shaped `Dataset`: per-class smooth colour templates, shifted up to 4 px, with
    pixel noise (uint8)."""
    from cnn_jax.datasets.core import Dataset, Split

    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(10, 4, 4, 3))
    templates = np.kron(coarse, np.ones((8, 8, 1)))  # [10, 32, 32, 3], low frequency

    def split(n: int) -> Split:
        labels = rng.integers(0, 10, n).astype(np.int32)
        x = templates[labels]
        shifts = rng.integers(-4, 5, (n, 2))
        x = np.stack([np.roll(img, tuple(s), axis=(0, 1)) for img, s in zip(x, shifts)])
        x = x + rng.normal(scale=1.5, size=x.shape)
        images = np.clip(128 + 40 * x, 0, 255).astype(np.uint8)
        return Split(images, labels)

    train, val, test = split(n_train), split(1000), split(n_test)
    mean = tuple(float(m) for m in (train.images / 255.0).mean(axis=(0, 1, 2)))
    std = tuple(float(s) for s in (train.images / 255.0).std(axis=(0, 1, 2)))
    names = tuple(f"class{i}" for i in range(10))
    return Dataset("synthetic_cifar", train, val, test, 10, SHAPE, mean, std, names)


def _config(batch: int, epochs: int, dtype: str = "float32"):
    from experiments.configs import base

    config = base.get_config()
    config.model.preset = "resnet_small"
    config.model.compute_dtype = dtype
    config.train.batch_size = batch
    config.train.num_epochs = epochs
    config.optim.learning_rate = 4e-3
    config.optim.warmup_epochs = 0.5
    return config


# ----------------------------------------------------------------------------- checks


def check_sharded(ds) -> str:
    from cnn_jax import input_pipeline, run_setup

    n = jax.device_count()
    run = run_setup.build(_config(16 * n, 1), dataset=ds)
    state = run.init_state()
    rows = next(
        input_pipeline.train_batches(ds.train.images, ds.train.labels, 16 * n, seed=0, epoch=0)
    )
    batch = next(input_pipeline.prefetch_to_device(iter([rows]), run.mesh, size=0))
    state, metrics = run.train_step(state, batch)
    devices = set(jax.devices())
    assert batch["image"].sharding.device_set == devices, "batch not split over all devices"
    for leaf in jax.tree.leaves(state.params):
        assert leaf.sharding.device_set == devices, "params not replicated on every device"
    assert np.isfinite(float(metrics["loss_sum"])), "non-finite loss"
    return f"{n} device(s), batch {16 * n} split {16}/device, params replicated"


def check_bf16(ds) -> str:
    from cnn_jax import run_setup

    run = run_setup.build(_config(32, 1, "bfloat16"), dataset=ds)
    state = run.init_state()
    batch = jax.device_put({"image": ds.train.images[:32], "label": ds.train.labels[:32]})
    state, metrics = run.train_step(state, batch)
    dtypes = {str(x.dtype) for x in jax.tree.leaves(state.params)}
    assert dtypes == {"float32"}, f"params stored as {dtypes}"
    assert np.isfinite(float(metrics["loss_sum"])), "non-finite bf16 loss"
    return "bf16 compute, float32 params, finite loss"


def check_donation_and_sync(ds) -> str:
    from cnn_jax import run_setup, steps

    run = run_setup.build(_config(32, 1), dataset=ds)
    state = run.init_state()
    batch = jax.device_put({"image": ds.train.images[:32], "label": ds.train.labels[:32]})
    old = jax.tree.leaves(state.params)[0]
    state, total = run.train_step(state, batch)
    assert old.is_deleted(), "the old state was not donated (its buffer is still alive)"
    with jax.transfer_guard_device_to_host("disallow"):
        for _ in range(5):
            state, metrics = run.train_step(state, batch)
            total = steps.accumulate(total, metrics)
    jax.block_until_ready(total)
    return "state donated; 5 steps + on-device metric sums with device->host transfers disallowed"


def run_checks(ds) -> list[dict]:
    out = []
    checks = {"sharded step on all devices": check_sharded, "bfloat16": check_bf16}
    checks["donation, no per-step host sync"] = check_donation_and_sync
    for name, fn in checks.items():
        try:
            out.append({"check": name, "result": "PASS", "detail": fn(ds)})
        except Exception as e:  # a report line per failure, not a crash
            detail = f"{type(e).__name__}: {str(e).splitlines()[0][:150] if str(e) else ''}"
            out.append({"check": name, "result": "FAIL", "detail": detail})
            traceback.print_exc()
    return out


# ----------------------------------------------------------------------------- speed


def matmul_peak(n: int, dtype) -> float:
    """Best TFLOP/s of an n x n matmul on the default device in `dtype`."""
    a = jnp.ones((n, n), dtype)
    mm = jax.jit(jnp.matmul)
    t = common.time_rounds(lambda: mm(a, a).block_until_ready(), 1, 3, 5)
    return t.best * 2.0 * n**3 / 1e12  # t: matmuls per second


def jax_speed(batch: int, dtype: str, steps: int, rounds: int) -> dict:
    step = common.build_jax_step("resnet_small", batch, SHAPE, compute_dtype=dtype)
    t = common.time_rounds(lambda: step.run(steps), batch * steps, 1, rounds)
    tflops = t.median * step.train_flops_per_example / 1e12
    return {"img/s": t.median, "TFLOP/s": tflops, "compile s": step.compile_sec}


def torch_speed(batch: int, steps: int, rounds: int, **kw) -> dict:
    from benchmarks.torch_model import build_torch_step
    from cnn_jax.nn import model_spec, models, summary

    spec = model_spec.PRESETS["resnet_small"](num_classes=10)
    flops = 3.0 * summary.summary(models.CNN(spec), SHAPE).total_flops
    step = build_torch_step(spec, batch, SHAPE, channels_last=True, **kw)
    t = common.time_rounds(lambda: step.run(steps), batch * steps, 1, rounds)
    return {"img/s": t.median, "TFLOP/s": t.median * flops / 1e12, "compile s": step.compile_sec}


TORCH_ROWS = (
    ("torch eager fp32", {}, "float32"),
    ("torch eager bf16 autocast", {"autocast_bf16": True}, "bfloat16"),
    ("torch.compile bf16 autocast", {"autocast_bf16": True, "compile": True}, "bfloat16"),
)
TORCH_ROW_MIN_S = 30.0  # a torch row (torch.compile included) starts only with this much left


def speed_rows(
    batch: int, steps: int, rounds: int, mm: int, deadline: float = math.inf
) -> tuple[list[dict], dict]:
    """jax (float32, bfloat16) and, when torch sees the device, PyTorch rows; torch rows that
    would start too close to `deadline` (time.monotonic()) are listed as skipped."""
    peaks = {"float32": matmul_peak(mm, jnp.float32), "bfloat16": matmul_peak(mm, jnp.bfloat16)}
    rows = []
    for dtype in ("float32", "bfloat16"):
        rows.append(
            {"contender": f"jax run path {dtype}", **jax_speed(batch, dtype, steps, rounds)}
        )
        rows[-1]["% matmul peak"] = 100 * rows[-1]["TFLOP/s"] / peaks[dtype]
    device = _torch_device()
    if not device:
        rows.append({"contender": "torch", "img/s": "not run: torch absent or no CUDA device"})
        return rows, peaks
    for label, kw, dtype in TORCH_ROWS:
        if deadline - time.monotonic() < TORCH_ROW_MIN_S:
            rows.append({"contender": label, "img/s": "not run: out of time (--budget-s)"})
            continue
        try:
            row = {"contender": label, **torch_speed(batch, steps, rounds, device=device, **kw)}
            row["% matmul peak"] = 100 * row["TFLOP/s"] / peaks[dtype]
        except Exception as e:
            row = {"contender": label, "img/s": f"failed: {type(e).__name__}: {e}"[:120]}
        rows.append(row)
    return rows, peaks


def _torch_device() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    if jax.default_backend() == "cpu":
        return "cpu"
    return "cuda" if torch.cuda.is_available() else None


def time_to_accuracy(
    ds, batch: int, epochs: int, target: float, deadline: float = math.inf
) -> dict:
    """Trains resnet_small, tests after every epoch; wall (compile included) to `target`.
    Stops once the target is reached or when the next epoch would pass `deadline`."""
    from cnn_jax import input_pipeline, run_setup, train

    t0 = time.perf_counter()
    run = run_setup.build(_config(batch, epochs), dataset=ds)
    state, curve, reached = run.init_state(), [], None
    for epoch in range(epochs):
        rows = input_pipeline.train_batches(
            ds.train.images, ds.train.labels, batch, seed=0, epoch=epoch
        )
        for b in input_pipeline.prefetch_to_device(rows, run.mesh):
            state, _ = run.train_step(state, b)
        acc = train.evaluate(run, state, ds.test)[0][0]["accuracy"]
        curve.append((epoch + 1, round(time.perf_counter() - t0, 2), round(acc, 4)))
        if acc >= target:
            reached = curve[-1]
            break
        epoch_s = curve[-1][1] / (epoch + 1)
        if time.monotonic() + epoch_s > deadline:
            break
    return {"curve": curve, "reached": reached, "target": target, "batch": batch}


def seed_strategies(ds, batch: int, num_seeds: int) -> dict:
    """K-seed strategies measured on this device (`cnn_jax.seed_strategy.measure`)."""
    from cnn_jax import run_setup, steps

    config = _config(batch, 1)
    config.train.num_seeds = num_seeds
    run = run_setup.build(config, dataset=ds)
    train_step = steps.make_train_step(run.model, run.tx, mean=ds.mean, std=ds.std)

    def init_fn(seed):
        return steps.create_train_state(run.model, run.tx, jax.random.key(seed), SHAPE)

    problem = seed_strategy.Problem(repr(run.model.spec), SHAPE, batch, num_seeds, init_fn)
    return seed_strategy.measure(train_step, problem)


def header(args, cpu_fallback: bool) -> str:
    desc = common.machine_description()
    dev = jax.devices()[0]
    when = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}"
    note = " (**CPU fallback: code-path check, not a device figure**)" if cpu_fallback else ""
    budget = f"; budget {args.budget_s:.0f} s" if args.budget_s else ""
    precision = jax.config.jax_default_matmul_precision or "default"
    return (
        f"# Accelerator benchmark report\n\nWritten by `python -m benchmarks.gpu` on {when}"
        f"{note}{budget}.\nDevice: {jax.device_count()} x {dev.device_kind} "
        f"({jax.default_backend()}); jax {desc['jax']}; Python {desc['python']}; "
        f"load {desc['load_avg_1m']}; float32 matmul precision {precision} (TF32 on "
        "NVIDIA GPUs when default)."
    )


def speed_section(rows: list[dict], peaks: dict, args) -> str:
    return (
        f"## resnet_small, 32x32x3, batch {args.batch} (median of {args.rounds} rounds)\n\n"
        f"Matmul peak measured ({args.matmul}^2): float32 {peaks['float32']:.1f} TFLOP/s, "
        f"bfloat16 {peaks['bfloat16']:.1f} TFLOP/s.\n\n" + common.markdown_table(rows)
    )


def seeds_section(seeds: dict, args) -> str:
    table = common.markdown_table(
        [{"strategy": k, "img/s": v} for k, v in seeds["images_per_sec"].items()]
    )
    return (
        f"## K = {args.seeds} seeds, resnet_small, batch {args.seed_batch}: img/s per strategy"
        f"\n\n{table}\n\nFastest: {seeds['strategy']}; the trainer's rule here: "
        f"{seed_strategy.rule()}."
    )


def tta_section(tta: dict) -> str:
    curve = [
        {"epoch": e, "wall s (compile incl.)": w, "test accuracy": a} for e, w, a in tta["curve"]
    ]
    hit = tta["reached"]
    return (
        "## Time to accuracy (synthetic CIFAR-10-shaped data, resnet_small)\n\n"
        + common.markdown_table(curve)
        + f"\n\nTarget {100 * tta['target']:.0f}% test accuracy: "
        + (f"reached at epoch {hit[0]} after {hit[1]:.1f} s." if hit else "not reached.")
    )


class Report:
    """The report file, rewritten whole after every section added."""

    def __init__(self, path: str, head: str) -> None:
        self.path, self.parts = path, [head]
        self.write()

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.write()
        print(text + "\n", flush=True)

    def write(self) -> None:
        with open(self.path, "w") as f:
            f.write("\n\n".join(self.parts) + "\n")


# Sections in the order they run: seconds each needs at least (device, CPU fallback).
SECTION_MIN_S = {"speed": (60, 20), "time to accuracy": (45, 15), "K-seed strategies": (90, 30)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-fallback", action="store_true", help="tiny sizes, CPU allowed")
    parser.add_argument("--report", default=str(common.REPO / "benchmarks" / "REPORT_gpu.md"))
    parser.add_argument("--budget-s", type=float, default=0.0, help="seconds (0: no limit)")
    args = parser.parse_args(argv)
    if args.budget_s < 0:
        parser.error(f"--budget-s {args.budget_s:g} not allowed; allowed: 0 (no limit) or more")
    tiny = args.cpu_fallback
    if jax.default_backend() == "cpu" and not tiny:
        parser.error("no accelerator visible to jax (backend cpu); use --cpu-fallback to test")
    deadline = time.monotonic() + args.budget_s if args.budget_s else math.inf
    args.batch, args.rounds, args.matmul = (32, 2, 512) if tiny else (512, 7, 8192)
    args.seeds, args.seed_batch = (2, 16) if tiny else (8, 128)
    steps, epochs = (2, 2) if tiny else (20, 10)
    report = Report(args.report, header(args, tiny))
    ds = synthetic_cifar(*((512, 256) if tiny else (50_000, 10_000)))
    checks = run_checks(ds)
    report.add("## Device checks\n\n" + common.markdown_table(checks))
    sections = {
        "speed": lambda: speed_section(
            *speed_rows(args.batch, steps, args.rounds, args.matmul, deadline), args
        ),
        "time to accuracy": lambda: tta_section(
            time_to_accuracy(ds, 64 if tiny else 512, epochs, 0.94, deadline)
        ),
        "K-seed strategies": lambda: seeds_section(
            seed_strategies(ds, args.seed_batch, args.seeds), args
        ),
    }
    failed = any(c["result"] == "FAIL" for c in checks)
    for name, build in sections.items():
        left = deadline - time.monotonic()
        if left < SECTION_MIN_S[name][int(tiny)]:
            report.add(f"## {name}\n\nNot run: {max(left, 0):.0f} s of the budget left.")
            continue
        try:
            report.add(build())
        except Exception as e:  # the next sections still run; the report says what broke
            traceback.print_exc()
            report.add(f"## {name}\n\nFailed: {type(e).__name__}: {str(e)[:200]}")
            failed = True
    print(f"Report: {args.report}")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
