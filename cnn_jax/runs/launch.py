"""Launchers for the sweep engine: train each unit in this process, or as a SLURM job.

`cnn_jax.runs.sweep.run_sweep(..., launcher=...)` hands a launcher its unfinished units as jobs
`(name, fn, kwargs)`; `fn(**kwargs)` trains one unit (a variant's seed group) in its own
workdir and writes its results there, and the sweep reads them back from disk once
`launcher.run(jobs)` has returned, i.e. once every unit has finished.

- `LocalLauncher`: today's behaviour, one unit after another in this process.
- `SlurmLauncher`: one SLURM job per unit, submitted as one job array through submitit
  (https://github.com/facebookincubator/submitit, `executor.batch()`), then waits for all.
  A job that SLURM signals before its time limit or on preemption saves an Orbax
  checkpoint, is requeued by submitit (`helpers.Checkpointable`), and its rerun resumes
  from that checkpoint (the trainer resumes from the latest checkpoint in its workdir).

`make_launcher(section)` builds one from a config's `launcher` section
(`cnn_jax.config.launcher`).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cnn_jax.config.launcher import NUMBERS, check_section, default_config

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
    """Submits each job to SLURM (one job array via submitit) and waits for all of them."""

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
        verbose: bool = True,
    ):
        self.folder = Path(folder)
        self.poll_s = float(poll_s)
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

    def executor(self) -> Any:
        """A submitit executor for SLURM with this launcher's resources."""
        import submitit

        executor = submitit.AutoExecutor(
            folder=self.folder / "%j", cluster="slurm", slurm_max_num_timeout=self.max_num_timeout
        )
        executor.update_parameters(**self.parameters)
        return executor

    def run(self, jobs: Sequence[Job]) -> list[Any]:
        """Submits all jobs as one array, waits until every one has ended, and returns
        their return values; raises `UnitsFailed` naming the failed units and their logs."""
        if not jobs:
            return []
        executor = self.executor()
        with executor.batch():
            submitted = [executor.submit(SlurmUnit(fn), **dict(kwargs)) for _, fn, kwargs in jobs]
        names = [name for name, _, _ in jobs]
        if self.verbose:
            ids = ", ".join(job.job_id for job in submitted)
            print(f"Submitted {len(jobs)} SLURM jobs ({ids}); logs in {self.folder}/", flush=True)
        return self._wait(names, submitted)

    def _wait(self, names: list[str], submitted: list[Any]) -> list[Any]:
        t0, pending = time.time(), set(range(len(submitted)))
        while pending:
            for i in sorted(pending):
                if submitted[i].done():
                    pending.discard(i)
                    if self.verbose:
                        state = "failed" if submitted[i].exception() else "finished"
                        done = len(submitted) - len(pending)
                        print(
                            f"[{done}/{len(submitted)}] {names[i]}: {state} "
                            f"({time.time() - t0:.0f} s)",
                            flush=True,
                        )
            if pending:
                time.sleep(self.poll_s)
        results, failed = [], []
        for name, job in zip(names, submitted):
            try:
                results.append(job.result())
            except Exception as e:  # noqa: BLE001 - reported below, one line per unit
                message = (str(e).strip().splitlines() or [type(e).__name__])[-1]
                failed.append(f"{name} (job {job.job_id}: {message}; log {job.paths.stderr})")
        if failed:
            raise UnitsFailed(
                f"{len(failed)} of {len(names)} SLURM jobs failed: {'; '.join(failed[:3])}; "
                "fix the cause and run the same command again (finished units are kept)"
            )
        return results


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
    default when no launcher is passed)."""
    section = config.get("launcher") if hasattr(config, "get") else None
    launcher = make_launcher(section, workdir=workdir)
    return None if isinstance(launcher, LocalLauncher) else launcher
