"""SLURM's answers read right, from recorded sinfo / squeue / sacct outputs and job logs, and
the launcher's decisions on them: a request the partition cannot give stops before anything
is submitted, each state change is printed once, a job that leaves the queue without a
result ends the wait with its cause, and a sweep none of whose jobs runs gives up."""

from __future__ import annotations

import io
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

# Imported now, not inside a test: on import submitit binds its log handlers to the streams
# of that moment, which a test's output capture would close under them.
import submitit  # noqa: F401

from cnn_jax.runs import launch, slurm

# `sinfo -h -o "%P|%c|%m|%l|%G|%a"` on the tests' one-node cluster (slurm-wlm 22.05.8) ...
SINFO_ONE_NODE = "test*|2|4000|infinite|(null)|up\n"
# ... and on a cluster with a mix of node sizes in one partition.
SINFO_CLUSTER = """\
cpu*|64|256000|2-00:00:00|(null)|up
gpu|32|512000|1-00:00:00|gpu:a100:4(S:0-1)|up
gpu|48|1024000|1-00:00:00|gpu:h100:8,mps:100|up
debug|2|3800|30:00|(null)|down
"""
# `squeue -h -r -t all -j 6 -o "%i|%T|%r"` while a four-job array ends (a cancelled job keeps
# the reason it was pending for).
SQUEUE = (
    "6_0|CANCELLED|Resources\n6_2|PENDING|Resources\n6_1|FAILED|NonZeroExitCode\n6_3|RUNNING|None\n"
)
# `sacct -n -P -o JobID,State -j 12_0 -j 12_1` with accounting.
SACCT = "12_0|CANCELLED by 0\n12_0.batch|CANCELLED\n12_0.0|CANCELLED\n12_1|COMPLETED\n"
# The stderr log of a running job after `scancel` (submitit 1.5.4, Slurm 22.05.8).
LOG_CANCELLED = """\
srun: got SIGCONT
submitit WARNING (2026-12-06 05:19:31,926) - Bypassing signal SIGCONT
slurmstepd-vm: error: *** JOB 7 ON vm CANCELLED AT 2026-12-06T05:19:31 ***
slurmstepd-vm: error: *** STEP 7.0 ON vm CANCELLED AT 2026-12-06T05:19:31 ***
srun: forcing job termination
submitit WARNING (2026-12-06 05:19:31,934) - Bypassing signal SIGTERM
srun: Job step aborted: Waiting up to 7 seconds for job step to finish.
srun: error: vm: task 0: Killed
srun: Force Terminated StepId=7.0
"""
# The stderr log of a job whose function raised.
LOG_RAISED = """\
submitit ERROR (2026-12-06 05:16:26,269) - Submitted job triggered an exception
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/submitit/core/submission.py", line 55, in process_job
    result = delayed.result()
  File "/venv/lib/python3.11/site-packages/submitit/core/utils.py", line 137, in result
    self._result = self.function(*self.args, **self.kwargs)
ValueError: data.batch_size: 0 not allowed; allowed: an integer >= 1
srun: error: vm: task 0: Exited with exit code 1
"""
LOG_OOM = """\
submitit INFO (2026-12-06 06:01:02,000) - Starting with JobEnvironment(job_id=9_0)
slurmstepd: error: Detected 1 oom_kill event in StepId=9.0. Some of the step tasks have been \
OOM Killed.
srun: error: n1: task 0: Out Of Memory
"""


def test_sinfo_is_read_per_partition_with_its_biggest_node():
    partitions = slurm.parse_sinfo(SINFO_CLUSTER)
    assert list(partitions) == ["cpu", "gpu", "debug"]
    gpu = partitions["gpu"]
    assert (gpu.cpus, gpu.mem_mb, gpu.gpus, gpu.time_min) == (48, 1024000, 8, 24 * 60)
    assert partitions["cpu"].default and not gpu.default
    assert partitions["debug"].available == "down"
    one = slurm.parse_sinfo(SINFO_ONE_NODE)["test"]
    assert (one.cpus, one.mem_mb, one.gpus, one.time_min, one.default) == (2, 4000, 0, None, True)


@pytest.mark.parametrize(
    "text, minutes",
    [("infinite", None), ("UNLIMITED", None), ("30:00", 30), ("2:00:00", 120), ("45", 45),
     ("1-00:00:00", 1440), ("2-12", 3600), ("1-01:30", 1530), ("0:30", 0.5)],
)  # fmt: skip
def test_slurm_time_limits_in_minutes(text, minutes):
    assert slurm.parse_time(text) == minutes


def test_gpus_are_counted_from_generic_resources():
    assert slurm.gpus_of("(null)") == 0
    assert slurm.gpus_of("gpu:4") == 4
    assert slurm.gpus_of("gpu:a100:2(S:0-1),gpu:v100:1,mps:100") == 3


def _misfit(partition: str, **request) -> str | None:
    parameters = {"timeout_min": 60, "cpus_per_task": 4, "gpus_per_node": 0, **request}
    return slurm.misfit(parameters, slurm.parse_sinfo(SINFO_CLUSTER)[partition])


def test_each_resource_the_partition_cannot_give_is_one_line_saying_what_to_lower():
    assert _misfit("cpu") is None
    assert _misfit("gpu", gpus_per_node=8, mem_gb=900, timeout_min=1440) is None
    assert _misfit("debug", timeout_min=10) == (
        "launcher.cpus_per_task=4 exceeds the 2 CPUs of partition debug's nodes; allowed: <= 2"
    )
    assert _misfit("cpu", gpus_per_node=1) == (
        "launcher.gpus_per_node=1 exceeds the 0 GPUs of partition cpu's nodes; "
        "allowed: 0, or a GPU partition"
    )
    assert _misfit("gpu", gpus_per_node=9) == (
        "launcher.gpus_per_node=9 exceeds the 8 GPUs of partition gpu's nodes; allowed: <= 8"
    )
    assert _misfit("cpu", mem_gb=512) == (
        "launcher.mem_gb=512 exceeds the 250 GB of partition cpu's nodes; allowed: <= 250"
    )
    assert _misfit("debug", cpus_per_task=1, timeout_min=60) == (
        "launcher.timeout_min=60 exceeds partition debug's time limit of 30 min; allowed: <= 30"
    )


def test_the_partition_is_the_named_one_or_the_default(monkeypatch):
    partitions = slurm.parse_sinfo(SINFO_CLUSTER)
    assert slurm.pick_partition(partitions, None).name == "cpu"
    assert slurm.pick_partition(partitions, "gpu").name == "gpu"
    with pytest.raises(ValueError, match=r"^launcher\.partition: 'gpus' is not a partition here; "
                       r"allowed: cpu, gpu, debug$"):  # fmt: skip
        slurm.pick_partition(partitions, "gpus")
    no_default = slurm.parse_sinfo(SINFO_CLUSTER.replace("cpu*", "cpu"))
    with pytest.raises(ValueError, match=r"^launcher\.partition: not set and the cluster has no"):
        slurm.pick_partition(no_default, None)


def test_a_missing_or_failing_slurm_command_is_one_line(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(slurm.SlurmCommandError, match=r"^launcher\.name: 'slurm' needs SLURM's "
                       r"`sinfo`, not found here; allowed: .*launcher\.name=local$"):  # fmt: skip
        slurm.run(*slurm.SINFO)


def test_squeue_and_sacct_are_read_by_job_id():
    assert slurm.parse_squeue(SQUEUE) == {
        "6_0": ("CANCELLED", ""),
        "6_2": ("PENDING", "Resources"),
        "6_1": ("FAILED", "NonZeroExitCode"),
        "6_3": ("RUNNING", ""),
    }
    assert slurm.parse_sacct(SACCT) == {"12_0": "CANCELLED by 0", "12_1": "COMPLETED"}


def test_the_cause_is_the_logs_last_error_line():
    cancelled = "slurmstepd-vm: error: *** STEP 7.0 ON vm CANCELLED AT 2026-12-06T05:19:31 ***"
    assert slurm.last_error_line(LOG_CANCELLED) == cancelled
    raised = "ValueError: data.batch_size: 0 not allowed; allowed: an integer >= 1"
    assert slurm.last_error_line(LOG_RAISED) == raised
    assert slurm.last_error_line(LOG_OOM) == "srun: error: n1: task 0: Out Of Memory"
    assert slurm.last_error_line("submitit INFO - Job completed successfully\n") is None


def test_a_state_is_printed_once_per_change():
    names = {"6_0": "relu/seed_0-1", "6_1": "tanh/seed_0-1"}
    seen: dict = {}
    pending = {j: ("PENDING", "Resources") for j in names}
    assert slurm.changes(seen, pending, names) == [
        "SLURM PENDING (Resources): relu/seed_0-1 [6_0], tanh/seed_0-1 [6_1]"
    ]
    assert slurm.changes(seen, pending, names) == []  # the next poll: nothing new
    running = dict(pending, **{"6_1": ("RUNNING", "")})
    assert slurm.changes(seen, running, names) == ["SLURM RUNNING: tanh/seed_0-1 [6_1]"]


# --- the launcher's wait, on fake jobs and recorded queue states -----------------------------


class _FakeJob:
    """The part of a submitit job the launcher reads: its id, files and result."""

    def __init__(self, folder: Path, job_id: str, error: Exception | None = None):
        self.job_id, self._error = job_id, error
        stem = folder / job_id / f"{job_id}_0"
        self.paths = type("Paths", (), {})()
        self.paths.result_pickle = Path(f"{stem}_result.pkl")
        self.paths.stderr, self.paths.stdout = Path(f"{stem}_log.err"), Path(f"{stem}_log.out")
        stem.parent.mkdir(parents=True, exist_ok=True)

    def finish(self, log: str = "") -> _FakeJob:
        self.paths.result_pickle.write_bytes(b"")
        self.paths.stderr.write_text(log)
        return self

    def exception(self) -> Exception | None:
        return self._error

    def result(self) -> str:
        if self._error is not None:
            raise self._error
        return f"ok {self.job_id}"


def _launcher(tmp_path: Path, states, monkeypatch, **fields) -> launch.SlurmLauncher:
    """A SLURM launcher whose squeue answers `states` (a dict, or a function of the poll
    number) and whose scancel / sacct calls are recorded, not run."""
    fields = {"name": "slurm", "poll_s": 0.1, **fields}
    launcher = launch.make_launcher(fields, workdir=tmp_path)
    polls, calls = iter(range(10**6)), []
    launcher.query = lambda ids: states(next(polls)) if callable(states) else dict(states)
    monkeypatch.setattr(slurm, "run", lambda *cmd, **kw: calls.append(cmd) or "")
    launcher.calls = calls
    return launcher


def _wait(launcher, names, jobs) -> tuple[str, BaseException | list]:
    out = io.StringIO()
    with redirect_stdout(out):
        try:
            result = launcher._wait(names, jobs)
        except launch.UnitsFailed as e:
            result = e
    return out.getvalue(), result


def test_a_request_that_does_not_fit_stops_before_submitting(tmp_path, monkeypatch):
    launcher = _launcher(tmp_path, {}, monkeypatch, cpus_per_task=4, partition="debug")
    monkeypatch.setattr(slurm, "run", lambda *cmd, **kw: SINFO_CLUSTER)
    launcher.executor = lambda: pytest.fail("submitted a job the partition cannot run")
    with pytest.raises(ValueError) as raised:
        launcher.run([("a", print, {})])
    assert str(raised.value) == (
        "launcher.cpus_per_task=4 exceeds the 2 CPUs of partition debug's nodes; allowed: <= 2 "
        "(or another launcher.partition)"
    )


def test_jobs_that_never_start_give_up_after_max_pending_min(tmp_path, monkeypatch):
    launcher = _launcher(tmp_path, {"6_0": ("PENDING", "PartitionConfig")}, monkeypatch)
    launcher.max_pending_min = 0.005  # 0.3 s
    t0 = time.monotonic()
    out, error = _wait(launcher, ["relu/seed_0-1"], [_FakeJob(tmp_path, "6_0")])
    assert 0.3 <= time.monotonic() - t0 < 5
    assert out.splitlines() == ["SLURM PENDING (PartitionConfig): relu/seed_0-1 [6_0]"]
    assert isinstance(error, launch.UnitsFailed)
    assert str(error).startswith(
        "no SLURM job of this sweep has run for 0.005 min (launcher.max_pending_min): "
        "relu/seed_0-1 [6_0] PENDING (PartitionConfig); cancelled the 1 left; allowed: "
    )
    assert launcher.calls == [("scancel", "6_0")]


def test_a_cancelled_job_is_reported_once_with_its_logs_cause(tmp_path, monkeypatch):
    a, b = _FakeJob(tmp_path, "7_0"), _FakeJob(tmp_path, "7_1")
    a.paths.stderr.write_text(LOG_CANCELLED)

    def running_then_done(poll: int) -> dict:
        if poll == 5:
            b.finish()
        return {"7_0": ("CANCELLED", ""), "7_1": ("RUNNING" if poll < 5 else "COMPLETED", "")}

    launcher = _launcher(tmp_path, running_then_done, monkeypatch)
    launcher.lost_after_s = 0.3
    out, error = _wait(launcher, ["a", "b"], [a, b])
    cause = "CANCELLED: slurmstepd-vm: error: *** STEP 7.0 ON vm CANCELLED AT 2026-12-06T05:19:31"
    lines = out.splitlines()
    assert lines[:2] == ["SLURM CANCELLED: a [7_0]", "SLURM RUNNING: b [7_1]"]
    assert sum("ended without a result" in line for line in lines) == 1
    assert f"a: ended without a result: {cause}" in out
    assert str(error).startswith(f"1 of 2 SLURM jobs failed: a (job 7_0: {cause} ***; log ")
    assert "\n" not in str(error) and launcher.calls == []  # b ran on: nothing given up


def test_a_job_gone_from_the_queue_without_accounting_or_log(tmp_path, monkeypatch):
    launcher = _launcher(tmp_path, {}, monkeypatch)
    launcher.lost_after_s = 0.0
    out, error = _wait(launcher, ["a"], [_FakeJob(tmp_path, "8_0")])
    assert str(error).startswith(
        "1 of 1 SLURM jobs failed: a (job 8_0: left the queue (no accounting to say how) "
        "before it started (no log); log "
    )
    assert launcher.calls[0][:2] == ("sacct", "-n")  # asked accounting; it answered nothing


def test_a_failed_unit_shows_its_cause_not_only_its_log(tmp_path, monkeypatch):
    # What submitit raises for a job whose function raised: its last line is a path.
    error = RuntimeError(
        "Job (task=0) failed during processing with trace:\n----------------------\n"
        "Traceback (most recent call last):\n  ...\nValueError: boom\n----------------------\n"
        "You can check full logs with 'job.stderr(0)' and 'job.stdout(0)'or at paths:\n"
        "  - /w/slurm/9_1/9_1_0_log.err\n  - /w/slurm/9_1/9_1_0_log.out"
    )
    jobs = [_FakeJob(tmp_path, "9_0").finish(), _FakeJob(tmp_path, "9_1", error).finish(LOG_RAISED)]
    launcher = _launcher(tmp_path, {}, monkeypatch)
    out, raised = _wait(launcher, ["a", "b"], jobs)
    assert out.splitlines()[0] == "[1/2] a: finished (0 s)"
    assert str(raised).startswith(
        "1 of 2 SLURM jobs failed: b (job 9_1: ValueError: data.batch_size: 0 not allowed; "
        "allowed: an integer >= 1; log "
    )
    jobs[1].paths.stderr.unlink()  # no log (e.g. not on this machine): the trace's last error
    assert "(job 9_1: ValueError: boom; log " in str(_wait(launcher, ["a", "b"], jobs)[1])
    assert _wait(launcher, ["a"], jobs[:1])[1] == ["ok 9_0"]


def _fake_slurm(bin_dir: Path, stderr: str, status: int) -> None:
    """`sbatch` (writes `stderr`, exits with `status`) and `srun` (whose presence submitit
    checks) in `bin_dir`, the only directory on PATH: no real SLURM is asked."""
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("sbatch", f"printf '%s\\n' '{stderr}' >&2\nexit {status}"), ("srun", "")):
        (bin_dir / name).write_text(f"#!/bin/sh\n{text}\n")
        (bin_dir / name).chmod(0o755)


def _submitting_launcher(tmp_path: Path) -> launch.SlurmLauncher:
    """A SLURM launcher whose `sinfo` check has passed (partition 'test' of the one node)."""
    launcher = launch.make_launcher({"name": "slurm", "partition": "test"}, workdir=tmp_path)
    launcher._partition = slurm.parse_sinfo(SINFO_ONE_NODE)["test"]
    return launcher


@pytest.mark.parametrize("present", [(), ("sbatch",)])
def test_no_sbatch_or_srun_is_one_line_before_anything_is_submitted(
    tmp_path, monkeypatch, capsys, present
):
    _fake_slurm(tmp_path / "bin", "", 0)
    for name in {"sbatch", "srun"} - set(present):
        (tmp_path / "bin" / name).unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    lacking = "srun" if present else "sbatch"
    with pytest.raises(slurm.SlurmCommandError) as raised:
        _submitting_launcher(tmp_path).run([("a", print, {})])
    assert str(raised.value) == (
        f"launcher.name: 'slurm' needs SLURM's `{lacking}`, not found here; allowed: a machine "
        "with SLURM's client commands, or launcher.name=local"
    )
    assert capsys.readouterr().err == ""


def test_jobs_sbatch_refuses_are_one_line_with_its_message(tmp_path, monkeypatch, capsys):
    said = "sbatch: error: Batch job submission failed: Invalid partition name specified"
    _fake_slurm(tmp_path / "bin", said, 1)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(slurm.SlurmCommandError) as raised:
        _submitting_launcher(tmp_path).run([("a", print, {}), ("b", print, {})])
    assert str(raised.value) == (
        f"launcher.partition: sbatch refused the jobs for partition 'test' ({said}); allowed: "
        "a partition and request sbatch accepts here (`sinfo` lists the partitions), then run "
        "the same command again"
    )
    assert capsys.readouterr().err == ""  # submitit's copy of sbatch's stderr is not printed
    _fake_slurm(tmp_path / "bin", "", 0)  # exit 0, but no job id on stdout
    with pytest.raises(slurm.SlurmCommandError) as raised:
        _submitting_launcher(tmp_path).run([("a", print, {})])
    assert str(raised.value).startswith(
        "launcher.partition: sbatch refused the jobs for partition 'test' (Could not make "
        'sense of sbatch output ""); allowed: '
    )
