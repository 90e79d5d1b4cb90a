"""Crash safety of real `python -m experiments.train` processes (and of an interrupted sweep).

A process is stopped at a chosen step without relying on timing: a `sitecustomize.py` put on
the child's PYTHONPATH wraps `MetricsWriter.write` so that, right after logging training step
K, the child prints a marker and waits in `signal.pause()`. The test then sends the real
signal (SIGKILL, SIGTERM, SIGINT) from outside. Runs share a persistent XLA compilation cache
so that each process compiles the smoke model only once per session.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import REPO, child_pythonpath

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

PAUSE_MARKER = "PAUSED AT STEP"
CHECKPOINT_EVERY = 4
HOOK = textwrap.dedent(
    """
    import os

    if os.environ.get("CNN_JAX_PAUSE_AT_STEP"):
        import signal
        import sys

        from cnn_jax.outputs import writers as results

        _STEP = int(os.environ["CNN_JAX_PAUSE_AT_STEP"])
        _WHERE = os.environ.get("CNN_JAX_PAUSE_IN", "")
        _write = results.MetricsWriter.write

        def _write_then_pause(self, step, split, metrics):
            _write(self, step, split, metrics)
            if split == "train" and step == _STEP and _WHERE in str(self.workdir):
                print(f"PAUSED AT STEP {step}", file=sys.stderr, flush=True)
                signal.pause()  # returns once a handled signal (SIGTERM/SIGINT) arrives

        results.MetricsWriter.write = _write_then_pause
    """
)


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory) -> Path:
    """A directory shared by all xdist workers of this session (hook, compile cache, runs)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    path = root / "reliability_shared"
    path.mkdir(exist_ok=True)
    (path / "hook").mkdir(exist_ok=True)
    (path / "hook" / "sitecustomize.py").write_text(HOOK)
    return path


def child_env(shared_dir: Path, pause_at: int | None = None, pause_in: str = "") -> dict:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=child_pythonpath(shared_dir / "hook", REPO),
        XLA_FLAGS="--xla_force_host_platform_device_count=1",
        JAX_PLATFORMS="cpu",
        JAX_COMPILATION_CACHE_DIR=str(shared_dir / "xla_cache"),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        PYTHONUNBUFFERED="1",
    )
    env.pop("CNN_JAX_DEBUG", None)
    env.pop("CNN_JAX_PAUSE_AT_STEP", None)
    if pause_at is not None:
        env["CNN_JAX_PAUSE_AT_STEP"] = str(pause_at)
        env["CNN_JAX_PAUSE_IN"] = pause_in
    return env


def train_cmd(workdir: Path, data_dir: Path, *overrides: str) -> list[str]:
    """The smoke run with a checkpoint every few steps and a metrics line every step."""
    return [
        sys.executable,
        "-m",
        "experiments.train",
        "--config=experiments/configs/smoke.py",
        f"--workdir={workdir}",
        f"--config.dataset.data_dir={data_dir}",
        f"--config.train.checkpoint_every_steps={CHECKPOINT_EVERY}",
        "--config.train.log_every_steps=1",
        *overrides,
    ]


def run(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def start_paused(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    """Starts `cmd` and returns once it printed the pause marker (stderr goes to `log`)."""
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 600  # a hang guard only; no outcome depends on it
    while PAUSE_MARKER not in log.read_text():
        if proc.poll() is not None:
            pytest.fail(f"child exited ({proc.returncode}) before pausing:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"child never paused:\n{log.read_text()}")
        time.sleep(0.05)
    return proc


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def checkpoint_steps(workdir: Path) -> list[int]:
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def metric_records(workdir: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock fields."""
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    drop = ("time", "images_per_sec")
    return [{k: v for k, v in json.loads(x).items() if k not in drop} for x in lines]


def final_variables(workdir: Path) -> dict[str, np.ndarray]:
    """The parameters and batch stats of the newest checkpoint, flattened to numpy."""
    import jax

    from cnn_jax.runs.load import load_run

    variables = load_run(workdir).variables
    flat = jax.tree_util.tree_flatten_with_path(variables)[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in flat}


def assert_same_run(workdir: Path, reference: Path) -> None:
    """Bitwise-equal final parameters, final metrics and every logged metric."""
    got, want = read_json(workdir / "results.json"), read_json(reference / "results.json")
    assert got["steps"] == want["steps"]
    assert got["final"] == want["final"]
    assert metric_records(workdir) == metric_records(reference)
    got_vars, want_vars = final_variables(workdir), final_variables(reference)
    assert got_vars.keys() == want_vars.keys()
    for name, value in want_vars.items():
        np.testing.assert_array_equal(got_vars[name], value, err_msg=name)


@pytest.fixture(scope="session")
def reference(shared_dir: Path, data_dir: Path) -> Path:
    """An uninterrupted smoke run, trained once per session (file lock across workers)."""
    workdir = shared_dir / "reference"
    with open(shared_dir / "reference.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (workdir / "results.json").exists():
            shutil.rmtree(workdir, ignore_errors=True)
            ok(run(train_cmd(workdir, data_dir), child_env(shared_dir)))
    return workdir


def pick_step(reference: Path, seed: int, *, avoid_multiples: int = 0) -> int:
    """A seeded random step strictly inside the run (after the first checkpoint)."""
    total = read_json(reference / "results.json")["steps"]
    candidates = [
        s for s in range(CHECKPOINT_EVERY + 1, total) if not avoid_multiples or s % avoid_multiples
    ]
    return random.Random(seed).choice(candidates)


# ----------------------------------------------------------------------------- tests


@pytest.mark.slow
def test_sigkill_at_random_step_then_resume_is_bitwise_identical(
    tmp_path: Path, shared_dir: Path, data_dir: Path, reference: Path
):
    kill_step = pick_step(reference, seed=7)
    workdir = tmp_path / "run"
    cmd = train_cmd(workdir, data_dir)
    proc = start_paused(cmd, child_env(shared_dir, pause_at=kill_step), tmp_path / "killed.log")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (workdir / "results.json").exists()
    saved = checkpoint_steps(workdir)
    assert saved and max(saved) <= kill_step

    ok(run(cmd, child_env(shared_dir)))
    assert read_json(workdir / "results.json")["resumed_from_step"] == max(saved)
    assert_same_run(workdir, reference)


@pytest.mark.slow
def test_sigterm_checkpoints_the_current_step_exits_3_and_resumes(
    tmp_path: Path, shared_dir: Path, data_dir: Path, reference: Path
):
    step = pick_step(reference, seed=3, avoid_multiples=CHECKPOINT_EVERY)
    workdir = tmp_path / "run"
    cmd = train_cmd(workdir, data_dir)
    proc = start_paused(cmd, child_env(shared_dir, pause_at=step), tmp_path / "term.log")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 3
    stderr = (tmp_path / "term.log").read_text()
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("Preempted: ")
    assert f"at step {step}" in last_line and "resume" in last_line
    assert "Traceback" not in stderr
    assert max(checkpoint_steps(workdir)) == step  # saved now, not at the next interval
    train_steps = [r["step"] for r in metric_records(workdir) if r["split"] == "train"]
    assert max(train_steps) == step  # stopped at once: no further step was trained

    ok(run(cmd, child_env(shared_dir)))
    assert read_json(workdir / "results.json")["resumed_from_step"] == step
    assert_same_run(workdir, reference)


@pytest.mark.slow
def test_sigint_also_checkpoints_and_exits_3(
    tmp_path: Path, shared_dir: Path, data_dir: Path, reference: Path
):
    step = pick_step(reference, seed=11, avoid_multiples=CHECKPOINT_EVERY)
    workdir = tmp_path / "run"
    cmd = train_cmd(workdir, data_dir)
    proc = start_paused(cmd, child_env(shared_dir, pause_at=step), tmp_path / "int.log")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 3
    assert "run the same command again to resume" in (tmp_path / "int.log").read_text()
    assert max(checkpoint_steps(workdir)) == step


@pytest.mark.slow
def test_diverging_run_stops_naming_the_step_and_keeps_finite_checkpoints(
    tmp_path: Path, shared_dir: Path, data_dir: Path
):
    workdir = tmp_path / "run"
    overrides = (
        "--config.optim.name=sgd",
        "--config.optim.schedule=constant",
        "--config.optim.learning_rate=1e30",
        "--config.train.checkpoint_every_steps=1",
    )
    result = run(train_cmd(workdir, data_dir, *overrides), child_env(shared_dir))
    assert result.returncode == 1, result.stderr[-3000:]
    match = re.search(r"non-finite loss, gradient or parameters at step (\d+)", result.stderr)
    assert match, result.stderr[-3000:]
    bad_step = int(match.group(1))
    assert "Traceback" not in result.stderr
    assert not (workdir / "results.json").exists()
    saved = checkpoint_steps(workdir)
    assert saved, "the run should have checkpointed good steps before diverging"
    assert max(saved) < bad_step
    variables = final_variables(workdir)  # the newest checkpoint restores and is finite
    assert all(np.all(np.isfinite(v)) for v in variables.values())


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # on purpose
def test_an_update_to_nonfinite_parameters_is_flagged_at_its_own_step():
    """A finite loss and gradient can still step the parameters to Inf (a huge learning
    rate): that step must count as non-finite, or its state would reach a checkpoint."""
    import jax
    import jax.numpy as jnp
    import optax

    from cnn_jax import steps
    from cnn_jax.nn.model_spec import BlockSpec, ModelSpec
    from cnn_jax.nn.models import CNN

    model = CNN(ModelSpec((BlockSpec(4, 3),), num_classes=3))
    batch = {"image": jnp.full((4, 6, 6, 1), 200, jnp.uint8), "label": jnp.arange(4) % 3}
    x = jnp.zeros((1, 6, 6, 1))
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x))["params"]
    rng = np.random.default_rng(0)  # numpy init: no XLA compile besides the step's
    params = jax.tree.map(lambda s: jnp.asarray(rng.normal(0, 0.3, s.shape), s.dtype), shapes)
    tx = optax.sgd(1e39)  # float32(1e39) is Inf
    state = steps.TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats={},
        opt_state=tx.init(params),
        rng=jax.random.key(0),
    )
    train_step = jax.jit(steps.make_train_step(model, tx, mean=(0.5,), std=(0.2,)))
    new_state, metrics = train_step(state, batch)
    assert np.isfinite(float(metrics["loss_sum"])) and np.isfinite(float(metrics["grad_norm"]))
    assert not all(np.all(np.isfinite(x)) for x in jax.tree.leaves(new_state.params))
    assert steps.first_nonfinite_step(metrics) == 1


@pytest.mark.slow
def test_checkpoint_of_another_model_is_refused_clearly(
    tmp_path: Path, shared_dir: Path, data_dir: Path, reference: Path
):
    workdir = tmp_path / "run"
    shutil.copytree(reference / "checkpoints", workdir / "checkpoints")
    other_model = train_cmd(workdir, data_dir, "--config.model.preset=mnist_cnn")
    result = run(other_model, child_env(shared_dir))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: workdir: {workdir / 'checkpoints'} step ")
    assert "trained with other settings (" in last_line  # every differing field is named
    assert "model.preset: 'lenet5' -> 'mnist_cnn'" in last_line
    assert checkpoint_steps(workdir) == checkpoint_steps(reference)  # nothing was touched


@pytest.mark.slow
def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(
    tmp_path: Path, shared_dir: Path, data_dir: Path, reference: Path
):
    workdir = tmp_path / "run"
    shutil.copytree(reference, workdir)
    (workdir / "results.json").unlink()
    *_, previous, latest = checkpoint_steps(workdir)
    data_files = [
        p for p in (workdir / "checkpoints" / str(latest) / "state").rglob("*") if p.is_file()
    ]
    for path in data_files:  # a half-written copy of every file of the newest step
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    result = ok(run(train_cmd(workdir, data_dir), child_env(shared_dir)))
    assert f"Checkpoint step {latest}" in result.stderr and "unreadable" in result.stderr
    assert read_json(workdir / "results.json")["resumed_from_step"] == previous
    assert any(p.name.startswith(f"{latest}.corrupt-") for p in (workdir / "checkpoints").iterdir())
    assert_same_run(workdir, reference)


SWEEP = textwrap.dedent(
    """
    import json, sys
    from experiments.configs import smoke
    from cnn_jax.runs.sweep import run_sweep

    configs = {}
    for activation in ("relu", "tanh"):
        config = smoke.get_config()
        config.model.activation = activation
        config.dataset.data_dir = sys.argv[2]
        config.train.num_epochs = 1
        config.train.checkpoint_every_steps = 4
        config.train.log_every_steps = 1
        configs[activation] = config
    rows = run_sweep(configs, sys.argv[1], seeds=[0])
    table = [[r["variant"], r["seed"], r["results"]["final"]] for r in rows]
    print("TABLE " + json.dumps(table))
    """
)


def sweep_table(result: subprocess.CompletedProcess) -> list:
    line = next(x for x in result.stdout.splitlines() if x.startswith("TABLE "))
    return json.loads(line[len("TABLE ") :])


@pytest.mark.slow
def test_killed_sweep_restarts_skipping_finished_runs_with_the_same_table(
    tmp_path: Path, shared_dir: Path, data_dir: Path
):
    cmd = [sys.executable, "-c", SWEEP]
    complete = ok(run([*cmd, str(tmp_path / "complete"), str(data_dir)], child_env(shared_dir)))

    workdir = tmp_path / "interrupted"
    env = child_env(shared_dir, pause_at=6, pause_in=str(Path("tanh") / "seed_0"))
    proc = start_paused([*cmd, str(workdir), str(data_dir)], env, tmp_path / "sweep.log")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert (workdir / "relu" / "seed_0" / "results.json").exists()
    assert not (workdir / "tanh" / "seed_0" / "results.json").exists()

    restarted = ok(run([*cmd, str(workdir), str(data_dir)], child_env(shared_dir)))
    assert re.search(r"relu seed 0: .*\(cached,", restarted.stdout), restarted.stdout
    assert re.search(r"tanh seed 0: .*\(trained,", restarted.stdout), restarted.stdout
    assert sweep_table(restarted) == sweep_table(complete)


def write_fake_mnist(raw: Path) -> None:
    """The four MNIST file names holding small, well-formed IDX data (not the real sha256)."""
    from cnn_jax.datasets import idx

    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 10)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        idx.write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images)
        idx.write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))


def mnist_config(raw: Path, data_dir: Path):
    from experiments.configs import smoke

    config = smoke.get_config()
    config.dataset.name = "mnist"
    config.dataset.options = {"raw_dir": str(raw)}
    config.dataset.data_dir = str(data_dir)
    return config


@pytest.mark.parametrize(
    "damage, file, fragment",
    [
        ("missing", "t10k-labels-idx1-ubyte.gz", "no directory holds all four IDX files"),
        ("sha256", "train-images-idx3-ubyte.gz", "sha256 of the decompressed IDX data"),
        ("truncated", "train-images-idx3-ubyte.gz", "not a complete gzip file"),
    ],
)
def test_bad_dataset_files_are_named_before_training(tmp_path: Path, damage, file, fragment):
    from cnn_jax.datasets import DatasetIntegrityError, DatasetNotFoundError
    from cnn_jax.train import train_and_evaluate

    raw = tmp_path / "raw"
    write_fake_mnist(raw)
    path = raw / file
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":  # an interrupted download
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    error = DatasetNotFoundError if damage == "missing" else DatasetIntegrityError
    with pytest.raises(error) as info:
        train_and_evaluate(mnist_config(raw, tmp_path / "tfds"), tmp_path / "run")
    message = str(info.value)
    assert fragment in message
    if damage == "missing":  # where it looked, which files it wants, how to get them
        assert str(raw) in message and file.removesuffix(".gz") in message
        assert "cnn-jax-data mnist" in message and "\n" not in message
    else:
        assert message.startswith(f"{path}: ")
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_corrupt_dataset_file_through_the_cli_is_one_line_and_exit_2(
    tmp_path: Path, shared_dir: Path
):
    raw = tmp_path / "raw"
    write_fake_mnist(raw)
    config_file = tmp_path / "mnist_raw.py"
    config_file.write_text(
        "from experiments.configs import smoke\n\n\n"
        "def get_config():\n"
        "    config = smoke.get_config()\n"
        "    config.dataset.name = 'mnist'\n"
        f"    config.dataset.options = {{'raw_dir': {str(raw)!r}}}\n"
        f"    config.dataset.data_dir = {str(tmp_path / 'tfds')!r}\n"
        "    return config\n"
    )
    cmd = [sys.executable, "-m", "experiments.train", f"--config={config_file}"]
    result = run([*cmd, f"--workdir={tmp_path / 'run'}"], child_env(shared_dir))
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: {raw / 'train-images-idx3-ubyte.gz'}: sha256")
