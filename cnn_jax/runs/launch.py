"""Launchers for the sweep engine: train each unit in this process, or as a SLURM job.

`cnn_jax.runs.sweep.run_sweep(..., launcher=...)` hands a launcher its unfinished units as jobs
`(name, fn, kwargs)`; `fn(**kwargs)` trains one unit (a variant's seed group) in its own
workdir and writes its results there, and the sweep reads them back from disk once
`launcher.run(jobs)` has returned, i.e. once every unit has finished.

- `LocalLauncher`: today's behaviour, one unit after another in this process.
- `SlurmLauncher`: one SLURM job per unit, submitted as one job array through submitit
  (https://github.com/facebookincubator/submitit, `executor.batch()`), then waits for all.
  It first checks with `sinfo` that the request fits the partition, and watches the jobs
  with `squeue` (`cnn_jax.runs.slurm`), so a job that can never start or that leaves the
  queue without a result (e.g. `scancel`) ends the wait with one line instead of hanging;
  a missing `sbatch` or `srun`, or jobs that sbatch refuses, are one line too.
  A job that SLURM signals before its time limit or on preemption saves an Orbax
  checkpoint, is requeued by submitit (`helpers.Checkpointable`), and its rerun resumes
  from that checkpoint (the trainer resumes from the latest checkpoint in its workdir).

`make_launcher(section)` builds one from a config's `launcher` section
(`cnn_jax.config.launcher`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import shutil
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cnn_jax.config.launcher import NUMBERS, check_section, default_config
from cnn_jax.runs import slurm

Job = tuple[str, Callable[..., Any], Mapping[str, Any]]


class UnitsFailed(RuntimeError):
    """Some SLURM units failed; the message names them and their logs (one line, exit 1)."""

    exit_code = 1


class LocalLauncher:
    """Runs every job in this process, one after another."""

    def run(self, jobs: Sequence[Job]) -> list[Any]:
        """Calls each `fn(**kwargs)` in order; returns their return values."""
        return [fn(**kwargs) for _, fn, kwargs in jobs]


class SlurmUnit:
    """One unit as a requeueable submitit job (pickled by submitit, called on the node).

    submitit calls `checkpoint()` on SLURM's signal (USR2, `slurm_signal_delay_s` before
    the time limit, or on preemption) and requeues the job with what it returns. Before
    that happens, the trainer is asked to save a checkpoint: the signal is passed on to its
    `PreemptionGuard` (which saves after the current step and raises `Preempted`), so the
    requeued job loses no finished step.
    """

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self._signalled = False

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Requeue the same call: it resumes from the checkpoint in the unit's workdir."""
        import submitit

        self._signalled = False
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)

    def __call__(self, **kwargs: Any) -> Any:
        from cnn_jax.system import runtime
        from cnn_jax.system.preemption import Preempted

        self._signalled = False
        self._requeue = signal.getsignal(signal.SIGUSR2)  # submitit's checkpoint-and-requeue
        if not callable(self._requeue):  # not inside a submitit job (e.g. called directly)
            return self.fn(**kwargs)
        runtime.apply()  # the run path's XLA flags and compilation cache, as `cli.setup`
        signal.signal(signal.SIGUSR2, self._on_signal)
        try:
            return self.fn(**kwargs)
        except Preempted:
            # SLURM's preemption sends SIGTERM and then USR2: give the second a moment.
            for _ in range(50):
                if self._signalled:
                    break
                time.sleep(0.1)
            if not self._signalled:
                raise  # a SIGTERM alone: the job fails; rerunning the sweep resumes it
            self._requeue(signal.SIGUSR2, None)  # checkpoint() + `scontrol requeue` + exit
            raise
        finally:
            signal.signal(signal.SIGUSR2, self._requeue)

    def _on_signal(self, signum: int, frame: Any) -> None:
        """USR2: while training, ask the trainer to save first; otherwise requeue now."""
        from cnn_jax.system.preemption import PreemptionGuard

        guard_handler = signal.getsignal(signal.SIGTERM)
        guard = getattr(guard_handler, "__self__", None)
        first, self._signalled = not self._signalled, True
        if isinstance(guard, PreemptionGuard):
            if first and guard.requested is None:
                guard_handler(signal.SIGTERM, frame)
        else:  # resumes from the last periodic checkpoint
            self._requeue(signum, frame)

    def __getstate__(self) -> dict[str, Any]:
        return {"fn": self.fn, "_signalled": False}  # never pickle a signal handler


class SlurmLauncher:
    """Submits each job to SLURM (one job array via submitit) and waits for all of them.

    Before submitting it checks with `sinfo` that the request fits the partition; while
    waiting it reads the queue with `squeue` (not submitit's `sacct` polling, which needs
    accounting), prints each change of a job's state, reports a job that ends without its
    result (e.g. `scancel`) once `lost_after_s` have passed, and gives up when none of the
    jobs has run for `max_pending_min`. A lost job is not resubmitted: whatever ended it
    (a user's or admin's scancel, the node, the memory limit) would most likely end the
    next one too; running the same command again resubmits it, resuming its checkpoint.
    """

    lost_after_s = 30.0  # a result written on a shared file system can take a moment

    def __init__(
        self,
        folder: str | Path,
        *,
        partition: str | None = None,
        timeout_min: int = 60,
        cpus_per_task: int = 4,
        gpus_per_node: int = 0,
        mem_gb: float | None = None,
        array_parallelism: int = 64,
        max_num_timeout: int = 3,
        poll_s: float = 5.0,
        max_pending_min: float = 1440.0,
        verbose: bool = True,
    ):
        self.folder = Path(folder)
        self.poll_s = float(poll_s)
        self.max_pending_min = float(max_pending_min)
        self.verbose = verbose
        self.max_num_timeout = int(max_num_timeout)
        self.parameters: dict[str, Any] = {
            "timeout_min": int(timeout_min),
            "cpus_per_task": int(cpus_per_task),
            "gpus_per_node": int(gpus_per_node),
            "slurm_array_parallelism": int(array_parallelism),
        }
        if partition:
            self.parameters["slurm_partition"] = partition
        if mem_gb:
            self.parameters["mem_gb"] = float(mem_gb)
        self._partition: slurm.Partition | None = None
        self.query: Callable[[Sequence[str]], dict[str, tuple[str, str]]] = slurm.queue

    def executor(self) -> Any:
        """A submitit executor for SLURM with this launcher's resources."""
        import submitit

        executor = submitit.AutoExecutor(
            folder=self.folder / "%j", cluster="slurm", slurm_max_num_timeout=self.max_num_timeout
        )
        executor.update_parameters(**self.parameters)
        return executor

    def check(self) -> slurm.Partition:
        """The partition the jobs go to, once `sinfo` says the request fits it (asked once);
        otherwise one ValueError line naming the field to lower."""
        if self._partition is None:
            self._partition = slurm.check_fits(self.parameters)
        return self._partition

    def run(self, jobs: Sequence[Job]) -> list[Any]:
        """Checks that the request fits the partition (else one ValueError line), submits
        all jobs as one array, waits until every one has ended, and returns their return
        values; raises `UnitsFailed` naming the failed units and their causes."""
        if not jobs:
            return []
        partition = self.check()
        submitted = self._submit(jobs, partition.name)
        names = [name for name, _, _ in jobs]
        ids = ", ".join(job.job_id for job in submitted)
        state = "" if partition.available == "up" else f" (partition {partition.available})"
        self._say(
            f"Submitted {len(jobs)} SLURM jobs ({ids}) to partition {partition.name}{state}; "
            f"logs in {self.folder}/"
        )
        return self._wait(names, submitted)

    def _submit(self, jobs: Sequence[Job], partition: str) -> list[Any]:
        """Submits the jobs as one array; a missing `sbatch` or `srun`, or an sbatch that
        refuses the jobs, is one `SlurmCommandError` line (submitit would print sbatch's
        stderr and raise a traceback)."""
        from submitit.core.utils import FailedJobError, FailedSubmissionError

        for command in ("sbatch", "srun"):  # submitit needs both before it submits
            if shutil.which(command) is None:
                raise slurm.missing(command)
        executor, said = self.executor(), io.StringIO()
        try:
            with contextlib.redirect_stderr(said), executor.batch():
                return [executor.submit(SlurmUnit(fn), **dict(kwargs)) for _, fn, kwargs in jobs]
        except (FailedJobError, FailedSubmissionError) as e:
            raise slurm.sbatch_refusal(str(e) or said.getvalue(), partition) from None
        except FileNotFoundError as e:
            if e.filename != "sbatch":
                raise
            raise slurm.missing("sbatch") from None  # gone since `which` found it

    def _say(self, line: str) -> None:
        if self.verbose:
            print(line, flush=True)

    def _wait(self, names: list[str], submitted: list[Any]) -> list[Any]:
        """Polls until every job has its result or is lost; then collects the results."""
        watch = _Watch({job.job_id: name for name, job in zip(names, submitted)},
                       {job.job_id: job for job in submitted})  # fmt: skip
        while True:
            self._poll(watch)
            if not watch.waiting():
                return self._collect(watch)
            time.sleep(self.poll_s)

    def _poll(self, watch: _Watch) -> None:
        """One look at the jobs: results written, queue states (printed when changed),
        jobs lost, and the pending limit."""
        for job_id in watch.waiting():
            if Path(watch.jobs[job_id].paths.result_pickle).exists():
                self._finished(watch, job_id)
        waiting = watch.waiting()
        if not waiting:
            return
        states = self._query(watch, waiting)
        now = time.monotonic()
        if states is not None:
            listed = {j: states[j] for j in waiting if j in states}
            for line in slurm.changes(watch.seen, listed, watch.names):
                self._say(line)
            if any(states.get(j, ("", ""))[0] in slurm.STARTED for j in waiting):
                watch.running_at = now
            for job_id in waiting:
                self._check_ended(watch, job_id, states.get(job_id), now)
        if watch.waiting() and now - watch.running_at > self.max_pending_min * 60:
            self._give_up(watch, states or {})

    def _query(self, watch: _Watch, waiting: list[str]) -> dict[str, tuple[str, str]] | None:
        """The queue's states of the waiting jobs, or None (said once) while squeue cannot
        answer, e.g. while slurmctld restarts: the next poll asks again."""
        try:
            states = self.query(waiting)
        except slurm.SlurmCommandError as e:
            if watch.query_error != str(e):
                self._say(f"SLURM: {e}; asking again every {self.poll_s:g} s")
            watch.query_error = str(e)
            return None
        watch.query_error = None
        return states

    def _finished(self, watch: _Watch, job_id: str) -> None:
        watch.done.add(job_id)
        watch.running_at = time.monotonic()  # a job ending is progress too
        state = "failed" if watch.jobs[job_id].exception() else "finished"
        self._say(f"[{watch.count()}] {watch.names[job_id]}: {state} ({watch.elapsed():.0f} s)")

    def _check_ended(
        self, watch: _Watch, job_id: str, status: tuple[str, str] | None, now: float
    ) -> None:
        """A job SLURM lists as ended (or no longer lists) is lost once its result has not
        appeared for `lost_after_s`."""
        if status is not None and status[0] in slurm.ACTIVE:
            watch.ended_at.pop(job_id, None)
            return
        if now - watch.ended_at.setdefault(job_id, now) < self.lost_after_s:
            return
        job = watch.jobs[job_id]
        watch.lost[job_id] = lost_cause(job_id, status, job.paths.stderr, job.paths.stdout)
        self._say(
            f"[{watch.count()}] {watch.names[job_id]}: ended without a result: "
            f"{watch.lost[job_id]} ({watch.elapsed():.0f} s)"
        )

    def _give_up(self, watch: _Watch, states: Mapping[str, tuple[str, str]]) -> None:
        """Cancels the jobs still queued and stops with one line saying where they were."""
        waiting = watch.waiting()
        where = [
            f"{watch.names[j]} [{j}] {slurm.describe(*states.get(j, ('gone', '')))}"
            for j in waiting
        ]
        try:
            slurm.run("scancel", *waiting)
            cancelled = f"cancelled the {len(waiting)} left"
        except slurm.SlurmCommandError as e:
            cancelled = f"could not cancel them ({e})"
        raise UnitsFailed(
            f"no SLURM job of this sweep has run for {self.max_pending_min:g} min "
            f"(launcher.max_pending_min): {'; '.join(where[:3])}"
            f"{f' and {len(where) - 3} more' if len(where) > 3 else ''}; {cancelled}; allowed: "
            "a request the cluster can schedule or a larger launcher.max_pending_min, then run "
            "the same command again (finished units are kept)"
        )

    def _collect(self, watch: _Watch) -> list[Any]:
        """Every job's return value, or one `UnitsFailed` line naming each failure's cause."""
        results, failed = [], []
        for job_id, job in watch.jobs.items():
            log = job.paths.stderr
            if job_id in watch.lost:
                failed.append(
                    f"{watch.names[job_id]} (job {job_id}: {watch.lost[job_id]}; log {log})"
                )
                continue
            try:
                results.append(job.result())
            except Exception as e:  # noqa: BLE001 - reported below, one line per unit
                cause = failure_cause(e, log)
                failed.append(f"{watch.names[job_id]} (job {job_id}: {cause}; log {log})")
        if failed:
            more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
            raise UnitsFailed(
                f"{len(failed)} of {len(watch.jobs)} SLURM jobs failed: {'; '.join(failed[:3])}"
                f"{more}; fix the cause and run the same command again (finished units are kept)"
            )
        return results


@dataclasses.dataclass
class _Watch:
    """What the launcher knows about the jobs it waits for, by job id."""

    names: dict[str, str]
    jobs: dict[str, Any]
    seen: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    ended_at: dict[str, float] = dataclasses.field(default_factory=dict)
    lost: dict[str, str] = dataclasses.field(default_factory=dict)
    done: set[str] = dataclasses.field(default_factory=set)
    started: float = dataclasses.field(default_factory=time.monotonic)
    running_at: float = dataclasses.field(default_factory=time.monotonic)
    query_error: str | None = None

    def waiting(self) -> list[str]:
        """The jobs with neither a result nor a verdict of lost."""
        return [j for j in self.jobs if j not in self.done and j not in self.lost]

    def count(self) -> str:
        return f"{len(self.done) + len(self.lost)}/{len(self.jobs)}"

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def lost_cause(
    job_id: str, status: tuple[str, str] | None, stderr: str | Path, stdout: str | Path
) -> str:
    """One line for a job that ended without a result: its state, and its log's last error
    line (or that it never started)."""
    state = slurm.describe(*status) if status else slurm.accounting([job_id]).get(job_id)
    state = state or "left the queue (no accounting to say how)"
    err, out = _read(stderr), _read(stdout)
    if not (err + out).strip():
        return f"{state} before it started (no log)"
    line = slurm.last_error_line(err) or slurm.last_error_line(out)
    return f"{state}: {line or 'no error in its log'}"


def failure_cause(error: Exception, stderr: str | Path) -> str:
    """The last error line of a failed job's log, else of the error submitit raised."""
    text = str(error)
    return (
        slurm.last_error_line(_read(stderr))
        or slurm.last_error_line(text)
        or (text.strip().splitlines() or [type(error).__name__])[-1]
    )


def make_launcher(
    section: Mapping[str, Any] | None, *, workdir: str | Path | None = None
) -> LocalLauncher | SlurmLauncher:
    """The launcher a config's `launcher` section asks for (None or name="local": in this
    process); SLURM's pickles and logs go to `folder`, default `<workdir>/slurm`."""
    values = check_section(section)
    if values.get("name", "local") == "local":
        return LocalLauncher()
    folder = values.get("folder") or (Path(workdir) / "slurm" if workdir is not None else None)
    if folder is None:
        raise ValueError("launcher.folder: not set; allowed: a directory for SLURM's logs")
    defaults = default_config().to_dict()
    numbers = {key: values.get(key) for key, _, _ in NUMBERS}
    numbers = {k: defaults[k] if v is None and k != "mem_gb" else v for k, v in numbers.items()}
    return SlurmLauncher(folder, partition=values.get("partition"), **numbers)


def configured(config: Mapping[str, Any], workdir: str | Path) -> SlurmLauncher | None:
    """The cluster launcher `config.launcher` asks for, or None to train here (the sweep's
    default when no launcher is passed), its request already checked against the cluster so
    that a request that can never run stops before anything is shown or submitted."""
    section = config.get("launcher") if hasattr(config, "get") else None
    launcher = make_launcher(section, workdir=workdir)
    if isinstance(launcher, LocalLauncher):
        return None
    launcher.check()
    return launcher
