"""Sweeps on a real one-node SLURM cluster through submitit equal the local launcher's.

The module fixture installs Debian's slurm-wlm and munge when they are missing (root + apt),
starts a private munged, slurmctld and slurmd for this host (2 CPUs) from a slurm.conf in a
temporary directory (`tests/slurm_cluster.py`) and stops them by pid afterwards, also when a
test fails. Skipped, with the reason, where that cannot be done (not root, no apt).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest
import submitit

from cnn_jax.outputs import predictions
from cnn_jax.outputs.writers import read_json, read_metrics
from cnn_jax.runs import launch, slurm
from cnn_jax.runs.sweep import run_sweep, train_unit
from cnn_jax.system import runtime
from experiments.configs import smoke
from tests import slurm_cluster
from tests.conftest import child_pythonpath

# One worker runs the whole module under `pytest -n 2 --dist loadgroup` (.ci/run): one
# cluster and one local reference sweep, not one per worker.
pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.xdist_group("slurm")]
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, monkeypatch_module):
    reason = slurm_cluster.missing_reason()
    if reason:
        pytest.skip(reason)
    # No accounting (slurmdbd) here: submitit warns on every sacct poll; keep the log readable.
    submitit_log = submitit.core.logger.get_logger()  # configured when submitit is imported
    submitit_level = submitit_log.level
    submitit_log.setLevel(logging.ERROR)
    t0 = time.time()
    slurm_cluster.install_packages()
    print(f"\nslurm-wlm + munge ready in {time.time() - t0:.1f} s")
    cluster = slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm"), cpus=2)
    cache = tmp_path_factory.mktemp("jax_cache")
    saved = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    runtime.enable_compilation_cache(cache)
    try:
        t0 = time.time()
        cluster.start()
        print(
            f"munged, slurmctld, slurmd up in {time.time() - t0:.1f} s (SLURM_CONF={cluster.conf})"
        )
        monkeypatch_module.setenv("SLURM_CONF", str(cluster.conf))
        # Jobs compile as this process does (no run-path XLA flags) and share its cache.
        monkeypatch_module.setenv(runtime.ENV_XLA, "0")
        monkeypatch_module.setenv(runtime.ENV_CACHE, str(cache))
        yield cluster
    finally:
        cluster.stop()
        submitit_log.setLevel(submitit_level)
        jax.config.update("jax_compilation_cache_dir", saved[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", saved[1])


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _configs(launcher_name: str) -> dict:
    """Two variants of the tiny digits CNN, one epoch each."""
    configs = {}
    for activation in ("relu", "tanh"):
        config = smoke.get_config()
        config.train.num_epochs = 1
        config.train.eval_train_at_end = False
        config.model.activation = activation
        config.launcher.name = launcher_name
        config.launcher.cpus_per_task = 1
        config.launcher.timeout_min = 10
        config.launcher.poll_s = 1.0
        configs[activation] = config
    return configs


def _job_folders(folder: Path) -> list[str]:
    """submitit's per-job folders (<array id>_<index>) under a launcher's folder."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and "_" in p.name)


def _predictions(run_dir: str) -> dict:
    return predictions.load(Path(run_dir) / "predictions" / "test.npz")


@pytest.fixture(scope="module")
def local_sweep(cluster, tmp_path_factory) -> tuple[list[dict], float]:
    """The reference: the same sweep with the local launcher (rows, seconds); it shares the
    jobs' compilation cache."""
    t0 = time.time()
    rows = run_sweep(_configs("local"), tmp_path_factory.mktemp("local"), SEEDS, verbose=False)
    return rows, time.time() - t0


def test_sweep_on_slurm_equals_the_local_sweep(cluster, request, tmp_path: Path):
    t0 = time.time()
    on_slurm = run_sweep(_configs("slurm"), tmp_path / "slurm", SEEDS)
    t_slurm = time.time() - t0
    local, t_local = request.getfixturevalue("local_sweep")  # after: loads the jobs' programs
    jobs = _job_folders(tmp_path / "slurm" / "slurm")
    assert len(jobs) == 2, jobs  # one job per variant (its two seeds vmapped), one array
    assert len({name.split("_")[0] for name in jobs}) == 1, jobs
    for a, b in zip(local, on_slurm, strict=True):
        assert (a["variant"], a["seed"]) == (b["variant"], b["seed"])
        assert b["status"] == "trained"
        assert b["results"]["test_accuracy"] == a["results"]["test_accuracy"]
        assert b["results"]["final"] == a["results"]["final"]
        pa, pb = _predictions(a["run_dir"]), _predictions(b["run_dir"])
        for key in predictions.KEYS:
            np.testing.assert_array_equal(pb[key], pa[key], err_msg=key)
    accuracies = {(r["variant"], r["seed"]): r["results"]["test_accuracy"] for r in on_slurm}
    assert len(set(accuracies.values())) > 1  # variants and seeds really differ

    rerun = run_sweep(_configs("slurm"), tmp_path / "slurm", SEEDS)
    assert [r["status"] for r in rerun] == ["cached"] * len(rerun)
    assert _job_folders(tmp_path / "slurm" / "slurm") == jobs  # nothing new submitted
    print(f"local sweep {t_local:.1f} s, SLURM sweep {t_slurm:.1f} s; {accuracies}")


def test_a_signalled_job_saves_requeues_and_resumes(cluster, tmp_path: Path):
    """SLURM's pre-time-limit signal (USR2): the trainer checkpoints, submitit requeues the
    job, and the rerun resumes from that step and finishes."""
    config = smoke.get_config()
    config.train.num_epochs = 4
    config.train.log_every_steps = 1
    config.train.eval_train_at_end = False
    config.train.checkpoint_every_steps = 100_000  # only the signal's checkpoint
    launcher = launch.make_launcher(
        {"name": "slurm", "cpus_per_task": 2, "timeout_min": 10, "poll_s": 1.0},
        workdir=tmp_path,
    )
    executor = launcher.executor()
    job = executor.submit(
        launch.SlurmUnit(train_unit), config=config.to_dict(), workdir=str(tmp_path / "run")
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 240
    while not (metrics.exists() and any(r["split"] == "train" for r in read_metrics(metrics))):
        assert time.time() < deadline and not job.done(), job.paths.stderr.read_text()[-2000:]
        time.sleep(0.2)
    job._interrupt(timeout=True)  # what SLURM sends slurm_signal_delay_s before the limit
    cluster.release_when_requeued(job.job_id)  # SLURM holds a requeued job ~2 min
    job.result()
    results = read_json(tmp_path / "run" / "results.json")
    total = results["steps"]
    assert 0 < results["resumed_from_step"] < total
    log = job.paths.stderr.read_text() + job.paths.stdout.read_text()
    assert "Requeued job" in log, log[-2000:]
    steps = [r["step"] for r in read_metrics(metrics) if r["split"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == total  # no step logged twice


def test_srun_two_tasks_meet_through_slurms_environment(cluster, tmp_path: Path):
    """`srun --ntasks=2`: `initialize_distributed()` without arguments (what `--distributed`
    calls) takes the process count, ranks and coordinator from SLURM's environment, and the
    two processes really talk (an all-gather over CPU/gloo). That such processes train one
    data-parallel run equal to a single process's is tests/e2e/test_multiprocess.py."""
    code = (
        "import jax, numpy as np\n"
        "from jax.experimental import multihost_utils\n"
        "from cnn_jax.system import parallel\n"
        "parallel.initialize_distributed()\n"
        "ranks = multihost_utils.process_allgather(np.array([jax.process_index()]))\n"
        "print('rank', jax.process_index(), 'of', jax.process_count(), 'devices',"
        " jax.device_count(), 'gathered', ranks.ravel().tolist(), flush=True)\n"
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo")
    env.update(XLA_FLAGS="--xla_force_host_platform_device_count=1", PYTHONPATH=child_pythonpath())
    srun = ["srun", "--ntasks=2", "--cpus-per-task=1", "--time=5", "--kill-on-bad-exit=1"]
    done = subprocess.run(
        [*srun, sys.executable, "-c", code],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    lines = sorted(line for line in done.stdout.splitlines() if line.startswith("rank"))
    assert lines == [
        "rank 0 of 2 devices 2 gathered [0, 1]",
        "rank 1 of 2 devices 2 gathered [0, 1]",
    ], done.stdout


def _within(seconds: float, fn):
    """fn()'s result (or its error) if it returns within `seconds`; otherwise the test fails
    there instead of hanging the suite (the thread is left to the cluster's shutdown)."""
    box: dict = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["result"]


def _pending(cluster) -> str:
    return cluster._run("squeue", "-h", "-t", "PENDING", "-o", "%i").stdout.strip()


def test_a_request_the_node_cannot_give_stops_before_submitting(cluster, tmp_path, capsys):
    """The default cpus_per_task=4 on this 2-CPU node: one line saying what to lower, before
    anything is shown or submitted (SLURM would keep such a job pending for ever)."""
    configs = _configs("slurm")
    for config in configs.values():
        config.launcher.cpus_per_task = 4
    with pytest.raises(ValueError) as raised:
        _within(120, lambda: run_sweep(configs, tmp_path / "sweep", SEEDS))
    assert str(raised.value) == (
        "launcher.cpus_per_task=4 exceeds the 2 CPUs of partition test's nodes; allowed: <= 2 "
        "(or another launcher.partition)"
    )
    assert not (tmp_path / "sweep" / "slurm").exists() and _pending(cluster) == ""


def test_jobs_that_never_start_give_up_after_max_pending_min(
    cluster, tmp_path, capsys, monkeypatch
):
    """Past the check (as if sinfo had allowed it) the job stays PENDING (PartitionConfig):
    the state is printed once, and after max_pending_min the wait cancels it and stops."""
    monkeypatch.setattr(slurm, "misfit", lambda parameters, partition: None)
    fields = {"name": "slurm", "cpus_per_task": 4, "poll_s": 0.5, "max_pending_min": 0.1}
    launcher = launch.make_launcher(fields, workdir=tmp_path)
    t0 = time.time()
    with pytest.raises(launch.UnitsFailed) as raised:
        _within(120, lambda: launcher.run([("unit", subprocess.run, {"args": ["true"]})]))
    message = str(raised.value)
    assert re.match(
        r"no SLURM job of this sweep has run for 0\.1 min \(launcher\.max_pending_min\): unit "
        r"\[\d+(_0)?\] PENDING \(PartitionConfig\); cancelled the 1 left; allowed: ",
        message,
    ), message
    assert 6 <= time.time() - t0 < 60
    out = capsys.readouterr().out
    assert out.count("PENDING (PartitionConfig)") == 1, out  # once, not once per poll
    assert _pending(cluster) == ""


def _cancel_when_started(folder: Path, cancelled_at: list[float]) -> None:
    """scancel the array's job 0 once it runs (srun has opened its log)."""
    deadline = time.time() + 120
    while not list(folder.glob("*_0/*_0_0_log.err")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    job_id = next(folder.glob("*_0")).name
    subprocess.run(["scancel", job_id], check=True, timeout=30)
    cancelled_at.append(time.time())


def test_a_cancelled_job_ends_the_wait_with_its_cause(cluster, tmp_path, capsys):
    """A running job cancelled with scancel that outlives SIGTERM (a Python sleep: submitit
    lets SIGTERM pass, SLURM kills it KillWait later, so no result is written, and there is
    no accounting to say why) is reported in one line with its log's cause, beside a job
    that raised (its exception, not only its log path), within lost_after_s of its end."""
    cancelled_at: list[float] = []
    failing = {"args": ["false"], "check": True}
    jobs = [("stubborn", functools.partial(time.sleep, 300), {}),
            ("failing", subprocess.run, failing)]  # fmt: skip
    launcher = launch.make_launcher({"name": "slurm", "cpus_per_task": 1, "poll_s": 1.0},
                                    workdir=tmp_path)  # fmt: skip
    args = (tmp_path / "slurm", cancelled_at)
    threading.Thread(target=_cancel_when_started, args=args, daemon=True).start()
    with pytest.raises(launch.UnitsFailed) as raised:
        _within(240, lambda: launcher.run(jobs))
    took = time.time() - cancelled_at[0]
    message = str(raised.value)
    assert "\n" not in message
    assert re.search(
        r"^2 of 2 SLURM jobs failed: stubborn \(job \d+_0: CANCELLED: slurmstepd\S*: error: "
        r"\*\*\* (JOB|STEP) [\d.]+ ON \S+ CANCELLED AT \S+ \*\*\*; log \S+_0_log\.err\); "
        r"failing \(job \d+_1: subprocess\.CalledProcessError: Command '\['false'\]' returned "
        r"non-zero exit status 1\.; log ",
        message,
    ), message
    out = capsys.readouterr().out
    assert out.count("stubborn: ended without a result: CANCELLED") == 1, out
    assert took < launcher.lost_after_s + 30, (took, out)
    print(f"the cancelled job was reported {took:.0f} s after scancel")
