#!/usr/bin/env python3
"""The device check: the project on a borrowed accelerator machine with no network, in phases.

    bash scripts/device_check.sh "$OUT"                            # on the GPU machine
    bash scripts/device_check.sh /tmp/out --allow-cpu --budget-s 150   # rehearsal on a CPU

Setup installs the wheels of `make device-wheels` (.whl/) with --no-index --no-deps --target
/tmp/site on top of the machine's own jax and torch, checks that their versions did not
change, that the project imports and that jax sees an accelerator (--allow-cpu accepts the
CPU). Then, each within its share of the budget and each writing its files to OUT_DIR as soon
as it ends (a timeout still leaves the earlier phases' files):

- smoke: `python -m experiments.train --config=smoke` on the device -> smoke.log
- tests: the device test files (slow ones too), then the rest of the fast suite, at an explicit
  matmul precision; failures rerun at highest precision with deterministic GPU ops, which tells
  rounding and nondeterminism from bugs -> tests.log
- bench: `python -m benchmarks.gpu --budget-s <what is left>` -> REPORT_gpu.md, bench.log

summary.md holds one line per phase and is rewritten after each: six files in all
(OUTPUTS). Only the standard library runs here: jax and the project run in child processes.
For the tests only: DEVICE_CHECK_STUB, a shell command run in place of every phase's
command ($PHASE names the phase), and DEVICE_CHECK_STUB_BACKEND, the backend the probe
reports without importing jax.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("smoke", "tests", "bench")
SHARES = {"smoke": 0.2, "tests": 0.4, "bench": 0.4}  # of the time left, among phases to run
MIN_SECONDS = {"smoke": 15.0, "tests": 30.0, "bench": 20.0}  # less: the phase is skipped
MARGIN_S = 10.0  # kept back at the end for the summary
GRACE_S = 20.0  # from SIGINT to SIGKILL (pytest-xdist waits for the running tests)
PRECISIONS = ("highest", "float32", "high", "tensorfloat32", "bfloat16", "default")
# The files that exercise the device itself (sharding, bf16, K-seed strategies, PyTorch twins):
# run whole, slow tests included, before the rest of the fast suite.
DEVICE_TESTS = (
    "tests/core/test_steps.py",
    "tests/core/test_mixed_precision.py",
    "tests/core/test_seed_strategy.py",
    "tests/e2e/test_torch_twin.py",
)
RERUN_ENV = {
    "JAX_DEFAULT_MATMUL_PRECISION": "highest",
    "XLA_FLAGS": "--xla_gpu_deterministic_ops=true",
}
# Never installed over the machine's own builds (CUDA-matched jax, torch and their numpy).
PROTECTED = re.compile(r"^(jax|jaxlib|jax[-_]cuda\d*[-_].*|torch|numpy|nvidia[-_].*)$")
# What the wheels bring, and the project's run path that needs them.
IMPORTS = (
    "cnn_jax.train, tensorflow_datasets, array_record, ml_collections, tensorboardX, submitit, "
    "dm_pix"
)
OUTPUTS = ("summary.md", "setup.log", "smoke.log", "tests.log", "bench.log", "REPORT_gpu.md")
# A failed or erroring test in pytest's output: the -ra summary, -v with xdist, -v without.
FAILED_LINES = (
    re.compile(r"^(?:FAILED|ERROR) (.+?::.+?)(?: - .*)?$", re.M),
    re.compile(r"^\[gw\d+\] \[\s*\d+%\] (?:FAILED|ERROR) (.+?::.+?)\s*$", re.M),
    re.compile(r"^(.+?::.+?) (?:FAILED|ERROR)\s+\[\s*\d+%\]$", re.M),
)


class SetupError(Exception):
    """The machine is not fit for the check (one line, shown as is)."""


@dataclasses.dataclass
class Result:
    phase: str
    status: str  # PASS, FAIL, TIMEOUT, SKIPPED
    seconds: float
    detail: str


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="device_check.sh", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the results (created)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="whole check, seconds")
    parser.add_argument("--allow-cpu", action="store_true", help="accept a CPU (rehearsal)")
    parser.add_argument("--wheels", type=Path, default=REPO / ".whl", help="wheel folder")
    parser.add_argument("--site", type=Path, default=Path("/tmp/site"), help="install target")
    parser.add_argument("--precision", default="highest", help="jax matmul precision, tests")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    parser.add_argument("--workers", type=int, default=0, help="pytest workers (0: auto)")
    args = parser.parse_args(argv)
    if not 0 < args.budget_s <= 3600:
        parser.error(f"--budget-s {args.budget_s:g} not allowed; allowed: 0 < N <= 3600")
    if args.precision not in PRECISIONS:
        parser.error(f"--precision {args.precision} not allowed; allowed: {', '.join(PRECISIONS)}")
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not phases or set(phases) - set(PHASES):
        parser.error(f"--phases {args.phases} not allowed; allowed: {', '.join(PHASES)}")
    args.phases = [p for p in PHASES if p in phases]
    if args.workers < 0:
        parser.error(f"--workers {args.workers} not allowed; allowed: 0 (auto) or more")
    return args


def allowance(phase: str, remaining: float, todo: list[str]) -> float:
    """Seconds for `phase`: its share of what is left among the phases still to run (itself
    included); 0 when that is under the phase's minimum (it is skipped)."""
    seconds = (remaining - MARGIN_S) * SHARES[phase] / sum(SHARES[p] for p in todo)
    return seconds if seconds >= MIN_SECONDS[phase] else 0.0


def failed_ids(pytest_output: str) -> list[str]:
    """Node ids of the failed and erroring tests, from pytest's -v lines (there even when the
    run was stopped before its summary) and its -ra summary."""
    found = [m.group(1) for r in FAILED_LINES for m in r.finditer(pytest_output)]
    return list(dict.fromkeys(found))


COUNTS_LINE = re.compile(
    r"^=* ?(\d+ (?:passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?|"
    r"no tests ran)\b.*? in [\d.]+s(?: \([\d:]+\))?) ?=*$",
    re.M,
)


OUTCOME_LINES = (  # pytest -v's per-test lines, with xdist and without
    re.compile(r"^\[gw\d+\] \[\s*\d+%\] (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS) ", re.M),
    re.compile(r"^\S+::.* (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\s+\[\s*\d+%\]$", re.M),
)


def pytest_counts(pytest_output: str) -> str:
    """pytest's closing counts ('12 passed, 1 failed in 30.1s'), framed by '=' or not (-q);
    for a run stopped before them, the -v lines counted ('392 passed before the stop');
    '' when there is neither."""
    found = COUNTS_LINE.findall(pytest_output)
    if found:
        return found[-1]
    outcomes = [m.group(1) for r in OUTCOME_LINES for m in r.finditer(pytest_output)]
    if not outcomes:
        return ""
    counts = {o: outcomes.count(o) for o in dict.fromkeys(outcomes)}
    return ", ".join(f"{n} {o.lower()}" for o, n in counts.items()) + " before the stop"


def run_logged(cmd: list[str], log: Path, env: dict, limit: float, phase: str) -> tuple[int, bool]:
    """Runs `cmd` (its own process group) appending its output to `log`, within `limit`
    seconds: SIGINT to the command GRACE_S before the limit (pytest and Python still print
    what they have), SIGKILL to its whole group at the limit.
    Returns (exit code, whether it was stopped)."""
    stub = os.environ.get("DEVICE_CHECK_STUB")
    if stub and phase in PHASES:
        cmd, env = ["bash", "-c", stub], dict(env, PHASE=phase)
    soft = limit - GRACE_S if limit > 2 * GRACE_S else 0.8 * limit
    with log.open("a") as f:
        f.write(f"\n$ {shlex.join(cmd)}   # limit {limit:.0f} s\n")
        f.flush()
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return proc.wait(timeout=soft), False
        except BaseException as stop:  # the limit, or the check itself stopped (SIGINT/SIGTERM)
            if not isinstance(stop, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # no child outlives the check
                proc.wait()
                raise
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=limit - soft)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            f.write(f"\n[device_check: stopped at the phase's limit of {limit:.0f} s]\n")
            return proc.returncode, proc.returncode != 0  # 0: it had finished all the same


class Check:
    """One device check: the environment for the children, the deadline, the results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out
        self.deadline = time.monotonic() + args.budget_s
        self.results: list[Result] = []
        self.info: dict = {}
        self.env = dict(os.environ, PIP_NO_INDEX="1", PYTHONUNBUFFERED="1")
        self.env["CNN_JAX_DATA_DIR"] = "/tmp/cnn_jax-device/tfds"
        self.env["CNN_JAX_SEED_STRATEGY_CACHE"] = "/tmp/cnn_jax-device/seed_strategy.json"

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        """Wheels on top of the machine's jax/torch, versions unchanged, accelerator seen."""
        log = self.out / "setup.log"
        self.freeze(log)
        before = self.probe(log, imports=False)
        self.install(log)
        after = self.probe(log, imports=True)
        for name in ("jax", "torch"):
            if before.get(name) != after.get(name):
                raise SetupError(
                    f"{name} changed from {before.get(name)} to {after.get(name)}: "
                    "a wheel replaced the machine's own build"
                )
        self.info = after
        if after["backend"] == "cpu" and not self.args.allow_cpu:
            raise SetupError("jax sees no accelerator (backend cpu); --allow-cpu rehearses on CPU")

    def freeze(self, log: Path) -> None:
        """The machine's packages with versions, for `device_wheels.py --installed-file`."""
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "list",
            "--format=freeze",
            "--disable-pip-version-check",
        ]
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        _append(log, f"# the machine's packages (pip list --format=freeze)\n{done.stdout}\n")

    def install(self, log: Path) -> None:
        wheels = sorted(self.args.wheels.glob("*.whl")) if self.args.wheels.is_dir() else []
        for w in wheels:
            if PROTECTED.match(w.name.split("-")[0].lower()):
                raise SetupError(
                    f"{w.name}: the machine's own build must not be replaced; "
                    "remove it from the wheel folder"
                )
        site = str(self.args.site)
        path = [site, str(REPO), self.env.get("PYTHONPATH", "")]
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
        if not wheels:
            _append(log, f"no wheels in {self.args.wheels}: nothing installed\n")
            return
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--no-cache-dir",
            "--upgrade",
            "--target",
            site,
            *map(str, wheels),
        ]
        code, _ = run_logged(cmd, log, self.env, max(self.remaining(), 1.0), "install")
        if code:
            raise SetupError(f"installing {len(wheels)} wheels failed (exit {code}); see setup.log")

    def probe(self, log: Path, imports: bool) -> dict:
        """jax's and torch's versions; with `imports`, the project's imports, jax's backend and
        devices too."""
        fake = os.environ.get("DEVICE_CHECK_STUB_BACKEND")
        if fake:
            return {"jax": "stub", "torch": None, "backend": fake, "devices": f"1 x {fake}"}
        code = PROBE.format(imports=f"import {IMPORTS}" if imports else "", devices=imports)
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        _append(log, f"\n$ probe (imports={imports})\n{done.stdout}{done.stderr[-4000:]}\n")
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SetupError(f"the probe failed: {last[:200]} (setup.log)")
        return json.loads(done.stdout.strip().splitlines()[-1])

    # ------------------------------------------------------------------ phases

    def smoke(self, limit: float) -> Result:
        work = Path("/tmp/cnn_jax-device/smoke")
        shutil.rmtree(work, ignore_errors=True)  # a fresh run, not a resumed one
        cmd = [
            sys.executable,
            "-m",
            "experiments.train",
            "--config=experiments/configs/smoke.py",
            f"--workdir={work}",
        ]
        t0 = time.monotonic()
        code, cut = run_logged(cmd, self.out / "smoke.log", self.env, limit, "smoke")
        seconds = time.monotonic() - t0
        detail = _smoke_numbers(work / "results.json")
        return Result("smoke", _status(code, cut), seconds, detail or "no results.json")

    def tests(self, limit: float) -> Result:
        log, t0 = self.out / "tests.log", time.monotonic()
        env = dict(self.env, JAX_DEFAULT_MATMUL_PRECISION=self.args.precision)
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # several workers share one GPU
        workers = self.args.workers or max(1, min(8, (os.cpu_count() or 2) // 2))
        base = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-n", str(workers)]
        runs = [
            ("device files", [*base, "-m", "not slurm", *DEVICE_TESTS], 0.4),
            (
                "fast suite",
                [
                    *base,
                    "-m",
                    "not slow and not slurm",
                    "tests",
                    *(f"--ignore={p}" for p in DEVICE_TESTS),
                ],
                0.75,
            ),
        ]
        lines, failed, status = [], [], "PASS"
        for label, cmd, share in runs:
            left = limit - (time.monotonic() - t0)
            if left < MIN_SECONDS["tests"] / 2:
                lines.append(f"{label}: not run (no time left)")
                continue
            start = log.stat().st_size if log.exists() else 0
            code, cut = run_logged(cmd, log, env, left * share, "tests")
            text = log.read_bytes()[start:].decode(errors="replace")
            failed += failed_ids(text)
            counts = pytest_counts(text) or f"exit {code}"
            lines.append(f"{label}: {counts}" + (" (cut at the limit)" if cut else ""))
            status = _worse(status, _status(code, cut))
        if failed:
            lines.append(self.rerun(failed, limit - (time.monotonic() - t0), env, log))
        return Result("tests", status, time.monotonic() - t0, "; ".join(lines))

    def rerun(self, failed: list[str], left: float, env: dict, log: Path) -> str:
        """The failures again at highest precision with deterministic ops: a test that passes
        now failed through rounding (TF32) or op order, one that fails again is a bug."""
        if left < 10:
            return f"{len(failed)} failed; no time left to rerun them"
        env = dict(env, **RERUN_ENV)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            *failed,
        ]
        start = log.stat().st_size
        _append(log, "\n# rerun of the failures: highest precision, deterministic ops\n")
        code, cut = run_logged(cmd, log, env, left, "tests")
        again = set(failed_ids(log.read_bytes()[start:].decode(errors="replace")))
        if cut:
            return f"rerun of {len(failed)} failures cut at the limit"
        fixed = [t for t in failed if t not in again]
        text = f"rerun at highest precision + deterministic ops: {len(again)} fail again (bugs)"
        if fixed:
            text += f", {len(fixed)} pass (precision/op-order effects: {', '.join(fixed[:5])})"
        return text

    def bench(self, limit: float) -> Result:
        report = self.out / "REPORT_gpu.md"
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.gpu",
            "--report",
            str(report),
            "--budget-s",
            f"{max(limit - GRACE_S - 5, 1):.0f}",
        ]
        if self.info.get("backend") == "cpu":
            cmd.append("--cpu-fallback")
        t0 = time.monotonic()
        code, cut = run_logged(cmd, self.out / "bench.log", self.env, limit, "bench")
        detail = f"report {report.name}" if report.exists() else "no report written"
        return Result("bench", _status(code, cut), time.monotonic() - t0, detail)

    # ------------------------------------------------------------------ driver

    def run(self) -> int:
        """Setup, then each phase in its allowance. Exit code: 0 when every phase that ran
        passed (and one did), 1 otherwise, 2 when the machine is not fit (setup failed)."""
        self.out.mkdir(parents=True, exist_ok=True)
        for name in OUTPUTS:  # a rerun into the same folder starts clean
            (self.out / name).unlink(missing_ok=True)
        t0 = time.monotonic()
        try:
            self.setup()
        except SetupError as e:
            self.results.append(Result("setup", "FAIL", time.monotonic() - t0, str(e)))
            self.write_summary()
            print(f"device_check: {e}", file=sys.stderr)
            return 2
        devices = f"jax {self.info['jax']} {self.info['backend']} ({self.info['devices']})"
        self.record(Result("setup", "PASS", time.monotonic() - t0, devices))
        for i, phase in enumerate(self.args.phases):
            limit = allowance(phase, self.remaining(), self.args.phases[i:])
            if not limit:
                self.record(Result(phase, "SKIPPED", 0.0, f"{self.remaining():.0f} s left"))
                continue
            self.record(getattr(self, phase)(limit))
        ran = [r.status for r in self.results[1:] if r.status != "SKIPPED"]
        return 0 if ran and all(s == "PASS" for s in ran) else 1

    def record(self, result: Result) -> None:
        self.results.append(result)
        self.write_summary()
        line = f"{result.phase}: {result.status} {result.seconds:.0f} s; {result.detail}"
        print(line, flush=True)

    def write_summary(self) -> None:
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        rows = [f"| {r.phase} | {r.status} | {r.seconds:.0f} | {r.detail} |" for r in self.results]
        text = [
            "# Device check",
            "",
            f"{when}; budget {self.args.budget_s:.0f} s; Python {sys.version.split()[0]}; "
            f"torch {self.info.get('torch')}; tests at matmul precision {self.args.precision}.",
            "",
            "| phase | status | s | detail |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
        ]
        (self.out / "summary.md").write_text("\n".join(text))


PROBE = """
import json
{imports}
import jax
info = {{"jax": jax.__version__}}
try:
    import torch
    info["torch"] = torch.__version__
except ImportError:
    info["torch"] = None
if {devices}:
    devices = jax.devices()
    info["backend"] = jax.default_backend()
    info["devices"] = f"{{len(devices)}} x {{devices[0].device_kind}}"
print(json.dumps(info))
"""


def _smoke_numbers(path: Path) -> str:
    try:
        r = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    keys = ("test_accuracy", "steps", "wall_time_sec", "train_images_per_sec")
    return ", ".join(
        f"{k} {r[k]:.4g}" if isinstance(r.get(k), float) else f"{k} {r.get(k)}" for k in keys
    )


def _status(code: int, cut: bool) -> str:
    return "TIMEOUT" if cut else ("PASS" if code == 0 else "FAIL")


def _worse(a: str, b: str) -> str:
    order = ("PASS", "SKIPPED", "TIMEOUT", "FAIL")
    return max(a, b, key=order.index)


def _append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds: the running child dies
    return Check(parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
