"""A benchmark worker process: builds one train step, then runs steps on command.

    python -m benchmarks.worker '{"backend": "jax", "preset": "mnist_cnn", "batch": 128}'

Spec keys: backend (jax | torch), preset, batch, input_shape, compute_dtype (jax),
tile_pool (jax, default true: false routes non-overlapping pooling through nn.max_pool /
nn.avg_pool to measure the tile path), conv_fence (jax, default true: false builds
convolutions without `cnn_jax.nn.conv_fence`, to measure it), onednn (jax: true / false
turns the oneDNN convolutions of `cnn_jax.nn.onednn` on / off; absent: off, as CNN_JAX_FAST=0
in workers says), onednn_parts (jax: which of forward, backward_data, backward_weights run on
oneDNN; default all), cache_dir (jax: persistent compilation cache there), channels_last,
compile (torch).

Protocol (one JSON object per line): on start-up it prints {"compile_sec",
"flops_per_example", "rss_mib"}; then each {"steps": n} read from stdin is answered with
{"sec", "cpu_sec", "minflt", "rss_mib"} for n steps (minflt: minor page faults, the cost of
an allocator that returns big buffers to the OS every step); {"quit": true} or end of input
ends it. Settings that must be fixed at process start (LD_PRELOAD, XLA_FLAGS) come from the
environment `interleave.py` gives it.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from benchmarks import common


def use_reduce_window_pooling() -> None:
    """Routes `pooling.tile_pool` to Flax's reduce_window pooling (the path before tiles)."""
    import flax.linen as nn

    from cnn_jax.nn import pooling

    def reduce_window_pool(x_bhwc, window: int, kind: str):
        pool = nn.max_pool if kind == "max" else nn.avg_pool
        return pool(x_bhwc, (window, window), (window, window), padding="VALID")

    pooling.tile_pool = reduce_window_pool


def use_onednn(on: bool, parts: list[str] | None = None) -> None:
    """Switches `cnn_jax.nn.onednn` on or off for models built from now on (and its parts)."""
    from cnn_jax.nn import onednn
    from cnn_jax.nn.onednn import conv, loader

    if on and not onednn.available():  # a "+oneDNN" row must never time XLA's convolutions
        raise RuntimeError(f"onednn: {loader.load().detail}")
    onednn.ENABLED = on
    if parts is not None:
        conv.FAST_PARTS = frozenset(parts)


def build(spec: dict):
    """(step object, compile seconds, train FLOPs per example) for a worker spec."""
    batch = int(spec.get("batch", 128))
    preset = spec.get("preset", "mnist_cnn")
    shape = tuple(spec.get("input_shape", common.PRESET_INPUTS[preset]))
    if spec["backend"] == "jax":
        if not spec.get("tile_pool", True):
            use_reduce_window_pooling()
        if not spec.get("conv_fence", True):
            from cnn_jax.nn import conv_fence

            conv_fence.ENABLED = False
        if "onednn" in spec:
            use_onednn(bool(spec["onednn"]), spec.get("onednn_parts"))
        if spec.get("cache_dir"):
            from cnn_jax.system import runtime

            runtime.enable_compilation_cache(spec["cache_dir"])
        step = common.build_jax_step(preset, batch, shape, compute_dtype=spec.get("compute_dtype"))
        return step, step.compile_sec, step.train_flops_per_example
    if spec["backend"] == "torch":
        from benchmarks.torch_model import build_torch_step
        from cnn_jax.nn import model_spec, models, summary

        model_def = model_spec.PRESETS[preset](num_classes=10)
        step = build_torch_step(
            model_def,
            batch,
            shape,
            channels_last=bool(spec.get("channels_last", False)),
            compile=bool(spec.get("compile", False)),
        )
        flops = 3.0 * summary.summary(models.CNN(model_def), shape).total_flops
        return step, step.compile_sec, flops
    raise ValueError(f"backend: {spec['backend']!r} not allowed; allowed: jax, torch")


def main() -> None:
    spec = json.loads(sys.argv[1])
    step, compile_sec, flops = build(spec)
    out = sys.stdout
    ready = {"compile_sec": compile_sec, "flops_per_example": flops}
    ready["rss_mib"] = common.peak_rss_mib()
    print(json.dumps(ready), file=out, flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0, c0 = time.perf_counter(), time.process_time()
        step.run(int(cmd["steps"]))
        sec, cpu = time.perf_counter() - t0, time.process_time() - c0
        minflt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
        reply = {"sec": sec, "cpu_sec": cpu, "minflt": minflt, "rss_mib": common.peak_rss_mib()}
        print(json.dumps(reply), file=out, flush=True)


if __name__ == "__main__":
    main()
