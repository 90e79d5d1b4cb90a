"""SLURM's own view of a sweep's jobs, read with its client commands (sinfo, squeue, sacct).

submitit learns a job's state from `sacct`, which needs accounting (slurmdbd): without it
every poll warns, and a job that leaves the queue without writing its result (cancelled,
killed past its time limit, its node lost) is waited for forever. So the SLURM launcher
(`cnn_jax.runs.launch.SlurmLauncher`) asks `sinfo` whether the requested resources fit the
partition before it submits anything, and `squeue` (all states, so recently ended jobs too)
how each job is doing while it waits; `sacct` only names the end of a job squeue no longer
lists. The parsing and the decisions are pure functions of the commands' text, so they are
tested with recorded outputs.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

SINFO = ("sinfo", "-h", "-o", "%P|%c|%m|%l|%G|%a")
SQUEUE_FORMAT = "%i|%T|%r"
# Job states in which a job still is (or will again be) in the queue; any other state, or
# no longer being listed at all, means it has ended.
ACTIVE = frozenset({
    "PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
    "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD", "SPECIAL_EXIT",
})  # fmt: skip
STARTED = frozenset({"RUNNING", "CONFIGURING", "COMPLETING", "SIGNALING", "STAGE_OUT"})
EXCEPTION_LINE = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception|Exit|Interrupt|Preempted)\b(?::|$)")
ERROR_LINE = re.compile(r"\berror\b|\bcancelled\b|\bkilled\b|out of memory", re.IGNORECASE)
NOISE_LINE = re.compile(
    r"task \d+: (?:Exited with exit code|Killed|Terminated)|Submitted job triggered an exception"
)


class SlurmCommandError(ValueError):
    """A SLURM client command is missing or failed (one line naming the command)."""


def run(*cmd: str, timeout: float = 60) -> str:
    """stdout of a SLURM client command; a missing or failing one raises one line."""
    if shutil.which(cmd[0]) is None:
        raise missing(cmd[0])
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise SlurmCommandError(f"{cmd[0]}: no answer after {timeout:.0f} s") from e
    if done.returncode:
        lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
        raise SlurmCommandError(f"{' '.join(cmd[:2])}: {lines[-1]}")
    return done.stdout


# --- before submitting: does the request fit the partition? ---------------------------------


@dataclasses.dataclass(frozen=True)
class Partition:
    """What one partition's biggest node offers (`sinfo`), and its time limit."""

    name: str
    default: bool
    cpus: int
    mem_mb: int
    time_min: float | None  # None: no limit
    gpus: int
    available: str  # "up", "down", "drain", "inact"


def parse_time(text: str) -> float | None:
    """Minutes of a SLURM time limit ("infinite", "1-12:00:00", "2:00:00", "30:00", "45")."""
    text = text.strip()
    if text.lower() in ("infinite", "unlimited", "n/a", "none", ""):
        return None
    days, _, clock = text.rpartition("-")
    parts = [float(p) for p in clock.split(":")]
    if len(parts) == 3:
        minutes = parts[0] * 60 + parts[1] + parts[2] / 60
    elif len(parts) == 2 and days:  # days-hours:minutes
        minutes = parts[0] * 60 + parts[1]
    elif len(parts) == 2:  # minutes:seconds
        minutes = parts[0] + parts[1] / 60
    else:
        minutes = parts[0] * (60 if days else 1)  # days-hours, or minutes
    return minutes + float(days or 0) * 24 * 60


def gpus_of(gres: str) -> int:
    """GPUs in a node's generic resources ("gpu:4", "gpu:a100:2(S:0-1),mps:100", "(null)")."""
    total = 0
    for item in re.sub(r"\([^)]*\)", "", gres).split(","):
        fields = item.strip().split(":")
        if fields[0] == "gpu" and len(fields) > 1 and fields[-1].isdigit():
            total += int(fields[-1])
    return total


def _number(text: str) -> int:
    """sinfo's count (a trailing "+" marks a mix of node sizes); 0 when unreadable."""
    digits = text.strip().rstrip("+")
    return int(digits) if digits.isdigit() else 0


def parse_sinfo(text: str) -> dict[str, Partition]:
    """Partitions from `sinfo -h -o "%P|%c|%m|%l|%G|%a"`; a partition listed on several
    lines (nodes of different sizes) keeps its biggest node's CPUs, memory and GPUs."""
    found: dict[str, Partition] = {}
    for line in text.strip().splitlines():
        fields = line.split("|")
        if len(fields) < 6:
            continue
        name, default = fields[0].rstrip("*"), fields[0].endswith("*")
        row = Partition(name, default, _number(fields[1]), _number(fields[2]),
                        parse_time(fields[3]), gpus_of(fields[4]), fields[5].strip())  # fmt: skip
        if name in found:
            old = found[name]
            row = dataclasses.replace(
                old, cpus=max(old.cpus, row.cpus), mem_mb=max(old.mem_mb, row.mem_mb),
                gpus=max(old.gpus, row.gpus),
            )  # fmt: skip
        found[name] = row
    return found


def pick_partition(partitions: Mapping[str, Partition], name: str | None) -> Partition:
    """The partition a job goes to (`name`, else the cluster's default); one line if none."""
    names = ", ".join(partitions) or "(sinfo lists none)"
    if name is None:
        default = [p for p in partitions.values() if p.default]
        if not default:
            raise ValueError(
                f"launcher.partition: not set and the cluster has no default; allowed: {names}"
            )
        return default[0]
    if name not in partitions:
        raise ValueError(f"launcher.partition: {name!r} is not a partition here; allowed: {names}")
    return partitions[name]


def misfit(parameters: Mapping[str, Any], partition: Partition) -> str | None:
    """One line naming the first requested resource the partition's nodes cannot give (and
    the most it can), or None when the request fits."""
    where = f"partition {partition.name}'s nodes"
    cpus = int(parameters.get("cpus_per_task", 1))
    if partition.cpus and cpus > partition.cpus:
        return (
            f"launcher.cpus_per_task={cpus} exceeds the {partition.cpus} CPUs of {where}; "
            f"allowed: <= {partition.cpus}"
        )
    gpus = int(parameters.get("gpus_per_node", 0))
    if gpus > partition.gpus:
        return f"launcher.gpus_per_node={gpus} exceeds the {partition.gpus} GPUs of {where}; " + (
            f"allowed: <= {partition.gpus}" if partition.gpus else "allowed: 0, or a GPU partition"
        )
    mem_gb = parameters.get("mem_gb")
    if mem_gb and partition.mem_mb and float(mem_gb) * 1024 > partition.mem_mb:
        most = math.floor(partition.mem_mb / 1024 * 10) / 10
        return (
            f"launcher.mem_gb={mem_gb:g} exceeds the {most:g} GB of {where}; allowed: <= {most:g}"
        )
    limit, asked = partition.time_min, int(parameters.get("timeout_min", 1))
    if limit is not None and asked > limit:
        return (
            f"launcher.timeout_min={asked} exceeds partition {partition.name}'s time limit of "
            f"{limit:g} min; allowed: <= {math.floor(limit)}"
        )
    return None


def check_fits(parameters: Mapping[str, Any]) -> Partition:
    """The partition the jobs go to, once `sinfo` says the request fits it; otherwise one
    ValueError line saying which field to lower and to what."""
    partition = pick_partition(parse_sinfo(run(*SINFO)), parameters.get("slurm_partition"))
    problem = misfit(parameters, partition)
    if problem is not None:
        raise ValueError(f"{problem} (or another launcher.partition)")
    return partition


# --- submitting: what sbatch said when it refused the jobs ---------------------------------


def missing(command: str) -> SlurmCommandError:
    """The one line for a SLURM client command that is not on PATH."""
    return SlurmCommandError(
        f"launcher.name: 'slurm' needs SLURM's `{command}`, not found here; allowed: a "
        "machine with SLURM's client commands, or launcher.name=local"
    )


def sbatch_refusal(message: str, partition: str) -> SlurmCommandError:
    """One line for jobs that `sbatch` refused (a partition this account may not use, an
    unknown account or QOS, a limit): sbatch's own last error line (else the message's first
    line), naming the field that most often causes it."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    said = next((line for line in reversed(lines) if ERROR_LINE.search(line)), None)
    said = (said or (lines[0] if lines else "no message"))[:300]
    return SlurmCommandError(
        f"launcher.partition: sbatch refused the jobs for partition {partition!r} ({said}); "
        "allowed: a partition and request sbatch accepts here (`sinfo` lists the partitions), "
        "then run the same command again"
    )


# --- while waiting: where is each job? -----------------------------------------------------


def parse_squeue(text: str) -> dict[str, tuple[str, str]]:
    """job id -> (state, reason) from `squeue -h -r -t all -o "%i|%T|%r"`; no reason is "",
    and so is a cancelled job's, which is only the reason it was pending before."""
    found = {}
    for line in text.strip().splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) >= 3:
            state, reason = fields[1], fields[2]
            stale = reason == "None" or state == "CANCELLED"
            found[fields[0]] = (state, "" if stale else reason)
    return found


def queue(job_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """The jobs squeue still lists (recently ended ones included), by job id; raises
    SlurmCommandError when squeue cannot answer."""
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    cmd = ("squeue", "-h", "-r", "-t", "all", "-j", ",".join(arrays), "-o", SQUEUE_FORMAT)
    try:
        return parse_squeue(run(*cmd))
    except SlurmCommandError as e:
        if "Invalid job id" in str(e):  # none of them is known any more
            return {}
        raise


def parse_sacct(text: str) -> dict[str, str]:
    """job id -> state from `sacct -n -P -o JobID,State` (steps such as "12.batch" left out;
    "CANCELLED by 0" kept whole)."""
    found = {}
    for line in text.strip().splitlines():
        job_id, _, state = line.partition("|")
        if job_id and "." not in job_id and state:
            found[job_id.strip()] = state.strip()
    return found


def accounting(job_ids: Sequence[str]) -> dict[str, str]:
    """States from accounting (sacct) of jobs squeue no longer lists; {} without accounting."""
    cmd = ["sacct", "-n", "-P", "-o", "JobID,State"]
    for job_id in job_ids:
        cmd += ["-j", job_id]
    try:
        return parse_sacct(run(*cmd))
    except SlurmCommandError:
        return {}  # "Slurm accounting storage is disabled": squeue was all there was


def last_error_line(text: str, limit: int = 300) -> str | None:
    """The line of a job's log that best says why it ended: the last Python exception line
    or SLURM error (e.g. "slurmstepd: error: *** JOB 7 ON n1 CANCELLED AT ... ***"), from
    the end; consequences such as srun's "task 0: Exited with exit code 1" are skipped."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line or NOISE_LINE.search(line):
            continue
        if EXCEPTION_LINE.match(line) or ERROR_LINE.search(line):
            return line[:limit]
    return None


def changes(
    seen: dict[str, tuple[str, str]], now: Mapping[str, tuple[str, str]], names: Mapping[str, str]
) -> list[str]:
    """One line per (state, reason) that some jobs newly entered since `seen` (updated in
    place), naming those jobs' units: what the launcher prints at each poll."""
    groups: dict[tuple[str, str], list[str]] = {}
    for job_id, status in now.items():
        if job_id in names and seen.get(job_id) != status:
            seen[job_id] = status
            groups.setdefault(status, []).append(f"{names[job_id]} [{job_id}]")
    return [f"SLURM {describe(*status)}: {_few(units)}" for status, units in groups.items()]


def describe(state: str, reason: str) -> str:
    """ "PENDING (Resources)", or the state alone when SLURM gives no reason."""
    return f"{state} ({reason})" if reason else state


def _few(items: Sequence[str], most: int = 4) -> str:
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more
