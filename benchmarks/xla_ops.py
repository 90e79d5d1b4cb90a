"""Where an XLA:CPU train step's time goes, op by op: a `jax.profiler` trace of warm steps,
its thunk events (one per fusion, convolution, YNNPACK call, ...) summed per op and per kind.

`perf` (benchmarks/profile.py) names the library and kernel; this names the HLO op and its
output shape, which is what a fix in the model or in XLA flags acts on (it found the
batch-norm chain re-fused into a weight-gradient transpose that `cnn_jax.nn.conv_fence` stops).
Tracing slows each step by ~25%, so shares are the figures to read, and they are indicative:
the thunk events cover about half of a traced step's wall time here (both are printed), the
rest being thunks XLA runs asynchronously on its intra-op pool (convolutions, dots, loop
fusions split in partitions), whose events can end before their work does, and the gaps
between thunks. The `perf` section (benchmarks/profile.py) counts CPU samples instead.

    python -m benchmarks.xla_ops resnet_small 128 5   # one JSON object on stdout
"""

from __future__ import annotations

import collections
import gzip
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common

_NOT_OPS = ("ThunkExecutor", "PjitFunction", "Wait for", "CommonPjRt", "PjRt")


def _kind(op: str) -> str:
    """'transpose_copy_fusion.11' -> 'transpose_copy_fusion'."""
    return re.sub(r"(\.\d+)+$", "", op)


def _shapes(hlo_text: str) -> dict[str, str]:
    """Instruction name -> its output shape, from optimized HLO text."""
    found = re.findall(r"^\s*(?:ROOT )?%([\w.\-]+) = (\S+)", hlo_text, flags=re.M)
    return {name: re.sub(r"\{[^}]*\}", "", shape) for name, shape in found}


def trace_ops(preset: str, batch: int, steps: int) -> dict:
    """Per-op and per-kind thunk milliseconds per step of the project's train step."""
    import jax

    step = common.build_jax_step(preset, batch)
    step.run(2)
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            t0 = time.perf_counter()
            step.run(steps)
            wall_ms = (time.perf_counter() - t0) * 1e3 / steps
        trace = next(Path(tmp).rglob("*.trace.json.gz"))
        events = json.loads(gzip.decompress(trace.read_bytes()))["traceEvents"]
    per_op: collections.Counter = collections.Counter()
    for e in events:
        name = e.get("name", "")
        if e.get("ph") == "X" and not name.startswith("$") and not name.startswith(_NOT_OPS):
            per_op[name] += e.get("dur", 0) / 1e3 / steps
    total = sum(per_op.values())
    shapes = _shapes(step.step.as_text())
    kinds: collections.Counter = collections.Counter()
    for op, ms in per_op.items():
        kinds[_kind(op)] += ms
    return {
        "preset": preset,
        "batch": batch,
        "thunk_ms_per_step": total,
        "traced_step_ms": wall_ms,
        "kinds": [{"kind": k, "ms": ms, "%": 100 * ms / total} for k, ms in kinds.most_common(8)],
        "ops": [
            {"op": op, "output": shapes.get(op, "?"), "ms": ms, "%": 100 * ms / total}
            for op, ms in per_op.most_common(8)
        ],
    }


def section(presets: tuple[str, ...]) -> tuple[str, dict]:
    """One trace per preset at batch 128 on the run path, in its own process."""
    from benchmarks.interleave import worker_env

    parts, figures = [], {}
    for preset in presets:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.xla_ops", preset, "128", "5"],
            cwd=common.REPO,
            env=worker_env(common.run_path_env()),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        fig = figures[preset] = json.loads(out.strip().splitlines()[-1])
        parts.append(
            f"**{preset}** (thunk events {fig['thunk_ms_per_step']:.1f} ms of a "
            f"{fig['traced_step_ms']:.1f} ms traced step)\n\n"
            + common.markdown_table(fig["kinds"])
            + "\n\n"
            + common.markdown_table(fig["ops"])
        )
    note = (
        "Thunk events can end before asynchronous work does (see benchmarks/xla_ops.py): read "
        "the shares as indicative, next to the perf profile."
    )
    return "\n\n".join(parts + [note]), figures


if __name__ == "__main__":
    print(json.dumps(trace_ops(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
