"""A benchmark worker process: builds one train step, then runs steps on command.

    python -m benchmarks.worker '{"backend": "jax", "preset": "mnist_cnn", "batch": 128}'

Protocol (one JSON object per line): on start-up it prints {"compile_sec", "flops_per_example",
"rss_mib"}; then each {"steps": n} read from stdin is answered with {"sec", "cpu_sec"} for n
steps; {"quit": true} or end of input ends it. Settings that must be fixed at process start
(LD_PRELOAD, XLA_FLAGS, GLIBC_TUNABLES) come from the environment `interleave.py` gives it.
"""

from __future__ import annotations

import json
import sys
import time

from benchmarks import common


def build(spec: dict):
    """The step object for a worker spec (see `interleave.Contender`)."""
    batch = int(spec.get("batch", 128))
    shape = tuple(spec.get("input_shape", common.PRESET_INPUTS[spec.get("preset", "mnist_cnn")]))
    if spec["backend"] == "jax":
        step = common.build_jax_step(
            spec.get("preset", "mnist_cnn"), batch, shape, compute_dtype=spec.get("compute_dtype")
        )
        return step, step.compile_sec, step.train_flops_per_example
    if spec["backend"] == "torch":
        from benchmarks.torch_model import build_torch_step

        step = build_torch_step(
            batch,
            shape,
            channels_last=bool(spec.get("channels_last", False)),
            compile=bool(spec.get("compile", False)),
        )
        from cnn_jax import model_spec, models, summary

        model = models.CNN(model_spec.mnist_cnn(10))
        flops = 3.0 * summary.summary(model, shape).total_flops
        return step, step.compile_sec, flops
    raise ValueError(f"backend: {spec['backend']!r} not allowed; allowed: jax, torch")


def main() -> None:
    spec = json.loads(sys.argv[1])
    step, compile_sec, flops = build(spec)
    out = sys.stdout
    ready = {"compile_sec": compile_sec, "flops_per_example": flops, "rss_mib": 0.0}
    ready["rss_mib"] = common.peak_rss_mib()
    print(json.dumps(ready), file=out, flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        t0, c0 = time.perf_counter(), time.process_time()
        step.run(int(cmd["steps"]))
        sec, cpu = time.perf_counter() - t0, time.process_time() - c0
        reply = {"sec": sec, "cpu_sec": cpu, "rss_mib": common.peak_rss_mib()}
        print(json.dumps(reply), file=out, flush=True)


if __name__ == "__main__":
    main()
