"""Shared benchmark helpers: machine description, JAX train-step setup, timing, tables.

Nothing here is imported by the package or the tests. Figures are wall-clock medians over
several timed rounds after warm-up; `best` is the fastest round, which is the least
disturbed by other processes on a shared machine.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
JEMALLOC_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
)
OPTIM = {"name": "adamw", "learning_rate": 1e-3, "schedule": "constant", "weight_decay": 1e-4}
# Input shape each preset was designed for.
PRESET_INPUTS: dict[str, tuple[int, int, int]] = {
    "seed_example": (32, 32, 3),
    "lenet5": (28, 28, 1),
    "tiny_vgg": (64, 64, 3),
    "mnist_cnn": (28, 28, 1),
    "resnet_small": (32, 32, 3),
}


def first_existing(paths: Sequence[str]) -> str | None:
    """The first path that exists, or None."""
    return next((p for p in paths if os.path.exists(p)), None)


def tcmalloc_path() -> str | None:
    from cnn_jax.system import runtime

    return runtime.tcmalloc_path()


def jemalloc_path() -> str | None:
    return first_existing(JEMALLOC_CANDIDATES)


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> float:
    """1-minute load average: how busy the machine was (other processes disturb timings)."""
    return os.getloadavg()[0]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_description() -> dict[str, Any]:
    """CPU, cores, memory, SIMD, library versions and the speed settings of this process."""
    import jax
    import jaxlib

    flags = cpu_flags()
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    from cnn_jax.system import runtime

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "simd": ",".join(simd),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "allocator": runtime.loaded_allocator(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_avg_1m": round(load_average(), 2),
    }


@dataclasses.dataclass
class Timing:
    """Per-round throughputs (items/s) of one timed function."""

    rates: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def best(self) -> float:
        return max(self.rates)


def time_rounds(
    run: Callable[[], None], items_per_call: int, calls: int, rounds: int, warmup: int = 2
) -> Timing:
    """Calls `run` (which must block until done) `calls` times per round; items/s per round."""
    for _ in range(warmup):
        run()
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            run()
        rates.append(items_per_call * calls / (time.perf_counter() - t0))
    return Timing(rates)


# ----------------------------------------------------------------------------- JAX set-up


@dataclasses.dataclass
class JaxStep:
    """A compiled JAX train step of one preset with a device-resident synthetic batch."""

    step: Callable
    state: Any
    batch: dict
    batch_size: int
    train_flops_per_example: float  # forward FLOPs x 3 (forward + backward)
    compile_sec: float

    def run(self, n: int = 1) -> None:
        """n steps, then block (the state is donated and replaced in place)."""
        import jax

        for _ in range(n):
            self.state, _ = self.step(self.state, self.batch)
        jax.block_until_ready(self.state)


def synthetic_batch(batch_size: int, input_shape: Sequence[int], num_classes: int = 10) -> dict:
    """A uint8 image batch and int32 labels, as the real loader yields them (host numpy)."""
    import numpy as np

    rng = np.random.default_rng(0)
    return {
        "image": rng.integers(0, 256, (batch_size, *input_shape), dtype=np.uint8),
        "label": rng.integers(0, num_classes, batch_size).astype(np.int32),
    }


def build_jax_step(
    preset: str,
    batch_size: int,
    input_shape: Sequence[int] | None = None,
    *,
    compute_dtype: str | None = None,
) -> JaxStep:
    """Builds, compiles (timed) and warms the project's train step for `preset`."""
    import jax

    from cnn_jax import optim, steps
    from cnn_jax.nn import model_spec, models, summary

    shape = tuple(input_shape or PRESET_INPUTS[preset])
    spec = model_spec.PRESETS[preset](num_classes=10)
    if compute_dtype is not None:
        spec = dataclasses.replace(spec, compute_dtype=compute_dtype)
    model = models.CNN(spec)
    tx, _ = optim.make_optimizer(OPTIM, 100, 1)
    state = steps.create_train_state(model, tx, jax.random.key(0), shape)
    channels = shape[-1]
    train_step = steps.make_train_step(model, tx, mean=[0.5] * channels, std=[0.25] * channels)
    step = jax.jit(train_step, donate_argnums=0)
    batch = jax.device_put(synthetic_batch(batch_size, shape))
    t0 = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_sec = time.perf_counter() - t0
    flops = 3.0 * summary.summary(model, shape).total_flops
    out = JaxStep(compiled, state, batch, batch_size, flops, compile_sec)
    out.run(1)
    return out


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Best float32 GFLOP/s of an n x n matmul in JAX (XLA) and NumPy (BLAS)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    flops = 2.0 * n**3
    mm = jax.jit(jnp.matmul)
    a_dev = jax.device_put(a)
    out = {}
    jax_timing = time_rounds(lambda: mm(a_dev, a_dev).block_until_ready(), 1, 1, repeats)
    out["jax"] = jax_timing.best * flops / 1e9
    np_timing = time_rounds(lambda: a @ a, 1, 1, repeats)
    out["numpy"] = np_timing.best * flops / 1e9
    return out


# ----------------------------------------------------------------------------- output


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts -> a Markdown table (floats rounded for reading)."""
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def print_header(title: str) -> None:
    print(f"\n## {title}\n", flush=True)


def run_module(module: str, args: Sequence[str], env: dict[str, str] | None = None, **kw) -> str:
    """Runs `python -m module args` from the repo root; returns its stdout (raises on failure)."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        **kw,
    )
    if result.returncode:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


# ----------------------------------------------------------------------------- settings


def run_path_env(tcmalloc: bool = True, xla_flags: bool = True) -> dict[str, str]:
    """The process-start settings the project's run path applies (see cnn_jax/system/runtime.py):
    tcmalloc preloaded when installed, and runtime's default XLA flags."""
    from cnn_jax.system import runtime

    env = {}
    if tcmalloc and tcmalloc_path():
        env["LD_PRELOAD"] = tcmalloc_path()
    if xla_flags and runtime.DEFAULT_XLA_FLAGS:
        env["XLA_FLAGS"] = " ".join(runtime.DEFAULT_XLA_FLAGS)
    return env
