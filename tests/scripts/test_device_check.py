"""scripts/device_check.sh: arguments, time budget, phases and outputs, with the phases stubbed
(DEVICE_CHECK_STUB) and the accelerator probe faked (DEVICE_CHECK_STUB_BACKEND); one slow test
runs the real smoke phase on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, child_pythonpath, run_python
from tests.scripts.helpers import load_script

dc = load_script("device_check")


def check(out: Path, *args: str, stub: str | None = "true", backend: str | None = "cpu", **env):
    """Runs scripts/device_check.sh with this interpreter; returns the finished process."""
    full = dict(os.environ, DEVICE_PYTHON=sys.executable, **env)
    full.pop("DEVICE_CHECK_STUB", None)
    if stub is not None:
        full["DEVICE_CHECK_STUB"] = stub
    if backend is not None:
        full["DEVICE_CHECK_STUB_BACKEND"] = backend
    cmd = ["bash", str(REPO / "scripts" / "device_check.sh"), str(out), *args]
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=600)


def test_arguments_and_one_line_errors(capsys) -> None:
    args = dc.parse_args(["/tmp/o"])
    assert args.budget_s == 480 and not args.allow_cpu and args.phases == list(dc.PHASES)
    assert dc.parse_args(["/tmp/o", "--phases", "bench,smoke"]).phases == ["smoke", "bench"]
    for bad, message in (
        (["--budget-s", "0"], "--budget-s 0 not allowed; allowed: 0 < N <= 3600"),
        (["--precision", "fp8"], "--precision fp8 not allowed; allowed: highest"),
        (["--phases", "smoke,lint"], "--phases smoke,lint not allowed; allowed: smoke, tests"),
        (["--workers", "-1"], "--workers -1 not allowed"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            dc.parse_args(["/tmp/o", *bad])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_each_phase_gets_its_share_of_what_is_left() -> None:
    todo = ["smoke", "tests", "bench"]
    assert dc.allowance("smoke", 510, todo) == pytest.approx(100)
    assert dc.allowance("tests", 410, todo[1:]) == pytest.approx(200)
    assert dc.allowance("bench", 210, todo[2:]) == pytest.approx(200)
    assert dc.allowance("smoke", 60, todo) == 0.0  # 10 s is under its 15 s minimum


def test_pytest_output_is_read_for_failures_and_counts() -> None:
    text = (
        "FAILED tests/core/test_steps.py::test_a[x-1] - AssertionError: no\n"
        "ERROR tests/e2e/test_b.py::test_b\n"
        "FAILED tests/core/test_steps.py::test_a[x-1] - again\n"
        "SKIPPED [1] tests/e2e/test_torch_twin.py:17: could not import 'torch'\n"
        "======= 2 failed, 40 passed, 1 error in 12.3s =======\n"
    )
    assert dc.failed_ids(text) == [
        "tests/core/test_steps.py::test_a[x-1]",
        "tests/e2e/test_b.py::test_b",
    ]
    assert dc.pytest_counts(text) == "2 failed, 40 passed, 1 error in 12.3s"
    assert dc.pytest_counts("Traceback: boom") == ""
    quiet = "....\n14 passed, 1 skipped in 94.32s (0:01:34)\n"  # -q: no '=' frame
    verbose = (  # -v lines, with xdist and without: there even when no summary was printed
        "[gw0] [ 16%] PASSED tests/nn/test_layers.py::test_conv[9-7]\n"
        "[gw1] [ 17%] FAILED tests/nn/test_layers.py::test_conv[10-10]\n"
        "tests/e2e/test_x.py::test_y ERROR                                        [ 50%]\n"
    )
    assert dc.pytest_counts(verbose) == "1 passed, 1 failed, 1 error before the stop"
    assert dc.failed_ids(verbose) == [
        "tests/nn/test_layers.py::test_conv[10-10]",
        "tests/e2e/test_x.py::test_y",
    ]
    assert dc.pytest_counts(quiet) == "14 passed, 1 skipped in 94.32s (0:01:34)"


def test_a_phase_past_its_limit_is_stopped_and_its_log_kept(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(dc, "GRACE_S", 2.0)
    monkeypatch.delenv("DEVICE_CHECK_STUB", raising=False)
    log, t0 = tmp_path / "x.log", time.monotonic()
    code, cut = dc.run_logged(
        ["bash", "-c", "echo begun; sleep 30"], log, dict(os.environ), 0.5, "x"
    )
    assert cut and time.monotonic() - t0 < 10
    assert "begun" in log.read_text() and "stopped at the phase's limit" in log.read_text()


def test_without_an_accelerator_it_stops_unless_allowed(tmp_path: Path) -> None:
    done = check(tmp_path / "out", "--wheels", str(tmp_path / "none"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "jax sees no accelerator (backend cpu)" in done.stderr
    assert "| setup | FAIL |" in (tmp_path / "out" / "summary.md").read_text()


def test_rehearsal_runs_every_phase_in_order_with_the_wheels_on_the_path(tmp_path: Path) -> None:
    wheels, site, record = tmp_path / "wheels", tmp_path / "site", tmp_path / "record"
    wheels.mkdir()
    _tiny_wheel(wheels, "offline_probe_pkg")
    stub = f'echo "$PHASE|$PYTHONPATH|$JAX_DEFAULT_MATMUL_PRECISION" >> {record}'
    args = ("--allow-cpu", "--wheels", str(wheels), "--site", str(site), "--budget-s", "200")
    done = check(tmp_path / "out", *args, stub=stub)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "offline_probe_pkg" / "__init__.py").exists()
    rows = [line.split("|") for line in record.read_text().splitlines()]
    assert [r[0] for r in rows] == ["smoke", "tests", "tests", "bench"]  # 2 pytest runs
    assert all(r[1].split(os.pathsep)[:2] == [str(site), str(REPO)] for r in rows)
    assert rows[1][2] == "highest"  # the tests' precision is explicit
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["summary.md", "setup.log", "smoke.log", "tests.log", "bench.log"]
    )
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == [
        "setup", "smoke", "tests", "bench"
    ]  # fmt: skip


def test_stopping_the_check_stops_the_running_phase(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    env = dict(os.environ, DEVICE_PYTHON=sys.executable, DEVICE_CHECK_STUB_BACKEND="cpu")
    env["DEVICE_CHECK_STUB"] = f"echo $$ > {pid_file}; sleep 60"
    cmd = ["bash", str(REPO / "scripts" / "device_check.sh"), str(tmp_path / "out")]
    proc = subprocess.Popen([*cmd, "--allow-cpu", "--wheels", str(tmp_path)], env=env)
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.terminate()
    assert proc.wait(timeout=30) == 143
    child = int(pid_file.read_text())
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # the phase's process group is gone with the check


def test_a_budget_too_small_skips_the_phases(tmp_path: Path) -> None:
    done = check(tmp_path / "out", "--allow-cpu", "--budget-s", "20", "--wheels", str(tmp_path))
    assert done.returncode == 1  # nothing ran
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert summary.count("| SKIPPED |") == 3 and "| setup | PASS |" in summary


def test_wheels_of_the_machines_own_jax_are_refused(tmp_path: Path) -> None:
    (tmp_path / "jax-0.10.2-py3-none-any.whl").write_bytes(b"")
    done = check(tmp_path / "out", "--allow-cpu", "--wheels", str(tmp_path))
    assert done.returncode == 2
    assert (
        "jax-0.10.2-py3-none-any.whl: the machine's own build must not be replaced" in done.stderr
    )


def test_children_keep_the_parents_pythonpath_and_fake_devices_are_on_cpu(monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", f"/offline/site{os.pathsep}{REPO}")
    assert child_pythonpath() == f"{REPO}{os.pathsep}/offline/site"
    code = "import os; print(os.environ['PYTHONPATH'], os.environ.get('JAX_PLATFORMS'))"
    path, platforms = run_python(code, devices=8).stdout.split()
    assert path.split(os.pathsep) == [str(REPO), "/offline/site"] and platforms == "cpu"


@pytest.mark.slow
def test_real_smoke_phase_on_cpu(tmp_path: Path) -> None:
    """The smoke phase for real (this interpreter's jax on the CPU, no wheels)."""
    args = ("--allow-cpu", "--phases", "smoke", "--budget-s", "400", "--wheels", str(tmp_path))
    done = check(tmp_path / "out", *args, stub=None, backend=None)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| smoke | PASS |" in summary and "test_accuracy 0." in summary


def _tiny_wheel(folder: Path, name: str) -> Path:
    """A pure-Python wheel holding one empty package, built by hand (no network, no build)."""
    path = folder / f"{name}-1.0-py3-none-any.whl"
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": "",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{f},,\n" for f in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for arcname, text in files.items():
            z.writestr(arcname, text)
    return path
