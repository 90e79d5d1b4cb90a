"""A throwaway one-node SLURM cluster for tests: its own munged, slurmctld and slurmd.

Everything lives in one temporary directory (config, state, spool, logs, the munge key and
socket), on free ports, so it touches neither /etc/slurm nor a munged already running;
`stop()` ends the daemons it started, by pid. Needs Debian's `slurm-wlm` and `munge`
(`install_packages` gets them with apt when run as root). What it takes on this kind of
machine: ../shared/slurm-local.md (Slurm 22.05: no cgroup.conf, proctrack/linuxproc).

`python -m tests.slurm_cluster DIR` starts one by hand to try the SLURM launcher on one
machine (docs/slurm.md): it prints the `export SLURM_CONF=...` line and runs until Ctrl-C.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")


def missing_reason() -> str | None:
    """Why a cluster cannot be started here (None if it can, installing first if needed)."""
    if all(shutil.which(d) for d in DAEMONS):
        return None
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "SLURM is not installed and installing slurm-wlm/munge needs root"
    if not shutil.which("apt-get"):
        return "SLURM is not installed and there is no apt-get to install slurm-wlm/munge"
    return None


def install_packages(timeout: int = 600) -> None:
    """apt-get install slurm-wlm munge (refreshing the package lists only if needed); one
    installer at a time (pytest-xdist workers may each start a cluster)."""
    with open(Path(tempfile.gettempdir()) / "cnn_jax_slurm_install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(shutil.which(d) for d in DAEMONS):
            _apt_install(timeout)


def _apt_install(timeout: int) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", *PACKAGES]  # as checked in slurm-local.md
    if subprocess.run(cmd, env=env, capture_output=True, timeout=timeout).returncode:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=timeout)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"apt-get install {' '.join(PACKAGES)} failed: {done.stderr[-500:]}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def slurm_conf(root: Path, host: str, cpus: int, memory_mb: int) -> str:
    """slurm.conf for one node `host` with `cpus` CPUs, all state under `root`."""
    ctld_port, d_port = _free_port(), _free_port()
    return "\n".join(
        [
            "ClusterName=cnnjaxtest",
            f"SlurmctldHost={host}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={d_port}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={root}/munge/munge.socket",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool",
            f"SlurmctldPidFile={root}/slurmctld.pid",
            f"SlurmdPidFile={root}/slurmd.pid",
            f"SlurmctldLogFile={root}/slurmctld.log",
            f"SlurmdLogFile={root}/slurmd.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "MpiDefault=none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "ReturnToService=2",
            "JobAcctGatherType=jobacct_gather/none",
            "SchedulerType=sched/backfill",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            "MinJobAge=60",
            "KillWait=5",
            f"NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
            f"PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


class Cluster:
    """Starts munged, slurmctld and slurmd under `root`; `env` is what clients need."""

    def __init__(self, root: Path, cpus: int = 2, memory_mb: int = 4000):
        self.root = Path(root)
        self.host = socket.gethostname().split(".")[0]
        self.cpus = cpus
        self.conf = self.root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.processes: list[subprocess.Popen] = []
        for sub in ("state", "spool", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(slurm_conf(self.root, self.host, cpus, memory_mb))

    def _spawn(self, *cmd: str) -> subprocess.Popen:
        log = open(self.root / f"{Path(cmd[0]).name}.out", "wb")  # noqa: SIM115 - daemon's
        process = subprocess.Popen(
            cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()  # the child holds its own copy
        self.processes.append(process)
        return process

    def _start_munge(self) -> None:
        munge = self.root / "munge"
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        os.chmod(munge, 0o700)
        self._spawn(
            "munged",
            "--foreground",
            "--force",
            f"--socket={munge}/munge.socket",
            f"--key-file={key}",
            f"--log-file={munge}/munged.log",
            f"--pid-file={munge}/munged.pid",
            f"--seed-file={munge}/munged.seed",
        )
        self._wait(lambda: (munge / "munge.socket").exists(), "munged")

    def start(self, timeout_s: float = 60) -> None:
        """Starts the three daemons and waits until the node is idle."""
        self._start_munge()
        self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._wait(lambda: self._run("sinfo", "-h").returncode == 0, "slurmctld", timeout_s)
        self._spawn("slurmd", "-D", "-f", str(self.conf), "-N", self.host)

        def idle() -> bool:
            state = self._run("sinfo", "-h", "-N", "-o", "%T").stdout.strip()
            return state.startswith("idle")

        self._wait(idle, "slurmd (node idle)", timeout_s)

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=30)

    def _wait(self, ready, what: str, timeout_s: float = 30) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if ready():
                return
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args[0]} exited: {self.logs()}")
            time.sleep(0.5)
        raise RuntimeError(f"{what} not ready after {timeout_s} s: {self.logs()}")

    def release_when_requeued(self, job_id: str, timeout_s: float = 120) -> None:
        """Once `job_id` is back in the queue after a requeue, lets it start now (SLURM
        gives a requeued job a begin time about two minutes ahead)."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            state = self._run("squeue", "-h", "-j", job_id, "-o", "%T").stdout.strip()
            if state == "PENDING":
                self._run("scontrol", "update", f"JobId={job_id}", "StartTime=now")
                return
            if not state:  # finished already
                return
            time.sleep(0.5)

    def logs(self, tail: int = 1500) -> str:
        """The end of every daemon log, for error messages."""
        parts = []
        for path in sorted([*self.root.glob("*.log"), *self.root.glob("*.out")]):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancels this cluster's jobs, then stops the daemons it started by pid
        (SIGTERM, then SIGKILL after 15 s)."""
        if any(p.args[0] == "slurmctld" and p.poll() is None for p in self.processes):
            self._run("scancel", "--full", "--user", str(os.getuid()))
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        self.processes.clear()


def main(argv: list[str]) -> None:
    """Starts a cluster in argv[1] (default: a new temporary directory) with all this
    machine's CPUs, prints how to reach it, and stops it on Ctrl-C."""
    root = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="slurm-"))
    install_packages()
    cluster = Cluster(root, cpus=os.cpu_count() or 1)
    try:
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}  # in every shell that uses it; Ctrl-C stops it")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main(sys.argv)
