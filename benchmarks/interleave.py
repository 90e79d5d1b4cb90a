"""Fair side-by-side timing: one worker process per contender, run in turns.

Each contender (a backend plus process-start settings such as LD_PRELOAD or XLA_FLAGS) gets its
own long-lived `benchmarks.worker` process. Once all are compiled and warm, rounds run every
contender for the same number of steps, one at a time, starting each round at a different
contender. Load from other processes then hits every contender alike, and the ratio of two
contenders is the median of their per-round ratios.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence

from benchmarks import common

PROCESS_START_VARS = ("LD_PRELOAD", "XLA_FLAGS", "GLIBC_TUNABLES")


@dataclasses.dataclass(frozen=True)
class Contender:
    """A named worker spec (see benchmarks/worker.py) and its extra environment."""

    name: str
    spec: dict
    env: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Result:
    """Per-round images/s of one contender, plus its start-up figures."""

    name: str
    batch: int
    flops_per_example: float
    compile_sec: float
    rss_mib: float
    rates: list[float] = dataclasses.field(default_factory=list)
    cpu_ratio: list[float] = dataclasses.field(default_factory=list)  # CPU time / wall time
    faults: list[float] = dataclasses.field(default_factory=list)  # minor page faults per step

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def best(self) -> float:
        return max(self.rates)

    @property
    def gflops(self) -> float:
        return self.median * self.flops_per_example / 1e9


def worker_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without process-start speed settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in PROCESS_START_VARS}
    env.update({"PYTHONPATH": str(common.REPO), "CNN_JAX_FAST": "0", "TF_CPP_MIN_LOG_LEVEL": "2"})
    env.update(extra)
    return env


class Worker:
    """One running `benchmarks.worker` process."""

    def __init__(self, contender: Contender) -> None:
        self.contender = contender
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", json.dumps(contender.spec)],
            cwd=common.REPO,
            env=worker_env(contender.env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = self._read()
        self.result = Result(
            contender.name,
            int(contender.spec.get("batch", 128)),
            ready["flops_per_example"],
            ready["compile_sec"],
            ready["rss_mib"],
        )

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read()[-3000:]
            raise RuntimeError(f"worker {self.contender.name} died:\n{err}")
        return json.loads(line)

    def run(self, steps: int) -> dict:
        self.proc.stdin.write(json.dumps({"steps": steps}) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        self.result.rss_mib = max(self.result.rss_mib, reply["rss_mib"])
        return reply

    def close(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def interleave(
    contenders: Sequence[Contender], steps: int, rounds: int, warmup_rounds: int = 1
) -> list[Result]:
    """Runs the contenders in turns, `steps` steps each per round; one Result each (same order).

    Workers start one after another, so each compile time is measured without the others."""
    workers: list[Worker] = []
    try:
        for c in contenders:
            print(f"  starting {c.name} ...", file=sys.stderr, flush=True)
            workers.append(Worker(c))
        for r in range(warmup_rounds + rounds):
            n = len(workers)
            for i in range(n):
                w = workers[(r + i) % n]
                reply = w.run(steps)
                if r >= warmup_rounds:
                    w.result.rates.append(steps * w.result.batch / reply["sec"])
                    w.result.cpu_ratio.append(reply["cpu_sec"] / reply["sec"])
                    w.result.faults.append(reply["minflt"] / steps)
        return [w.result for w in workers]
    finally:
        for w in workers:
            w.close()


def per_round(a: Result, b: Result) -> list[float]:
    """a's rate / b's rate in each round (both measured in the same round)."""
    return [x / y for x, y in zip(a.rates, b.rates)]


def ratio(a: Result, b: Result) -> float:
    """Median over rounds of a's rate / b's rate."""
    return statistics.median(per_round(a, b))


def spread(a: Result, b: Result) -> str:
    """'median [min, max]' of the per-round ratios: how far one ratio can be trusted."""
    r = per_round(a, b)
    return f"{statistics.median(r):.2f} [{min(r):.2f}, {max(r):.2f}]"


def rows(results: Sequence[Result], reference: Result, peak_gflops: float | None) -> list[dict]:
    """Table rows: img/s (median, best), GFLOP/s, % of peak, ratio to `reference` with the
    min-max of its per-round ratios."""
    out = []
    for r in results:
        row = {
            "contender": r.name,
            "batch": r.batch,
            "img/s median": r.median,
            "img/s best": r.best,
            "GFLOP/s": r.gflops,
        }
        if peak_gflops:
            row["% peak"] = 100 * r.gflops / peak_gflops
        row[f"x {reference.name} [min, max]"] = spread(r, reference)
        row["compile / first step s"] = r.compile_sec
        row["peak RSS MiB"] = r.rss_mib
        row["cpu/wall"] = statistics.median(r.cpu_ratio)
        row["faults/step"] = statistics.median(r.faults)
        out.append(row)
    return out
