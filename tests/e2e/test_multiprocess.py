"""Two processes on localhost train data-parallel like one process with the same global batch.

Each process is a real `python -m experiments.train --distributed ...` with one CPU device;
they meet through `jax.distributed.initialize` (coordinator on a free localhost port) and
all-reduce gradients with CPU collectives (gloo). A `sitecustomize.py` hook records the
rows each process feeds for its first batches, to check that each loads only its own half
of every global batch.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, child_pythonpath

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

RECORDED_BATCHES = 3
BATCH_SIZE = 64
HOOK = textwrap.dedent(
    f"""
    import os

    if os.environ.get("CNN_JAX_RECORD_BATCHES"):
        import json

        import jax
        import numpy as np

        from cnn_jax.system import parallel

        _shard_batch = parallel.shard_batch
        _seen = []

        def _recording_shard_batch(local_batch, mesh, seed_axis=False):
            if "mask" not in local_batch and len(_seen) < {RECORDED_BATCHES}:  # train batches
                images = np.asarray(local_batch["image"]).reshape(len(local_batch["label"]), -1)
                rows = [[int(y), int(x.sum())] for y, x in zip(local_batch["label"], images)]
                _seen.append(rows)
                path = os.path.join(
                    os.environ["CNN_JAX_RECORD_BATCHES"], f"process_{{jax.process_index()}}.json"
                )
                with open(path, "w") as f:
                    json.dump(_seen, f)
            return _shard_batch(local_batch, mesh, seed_axis)

        parallel.shard_batch = _recording_shard_batch
    """
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def env_for(hook_dir: Path, record_dir: Path, cache_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=child_pythonpath(hook_dir, REPO),
        XLA_FLAGS="--xla_force_host_platform_device_count=1",
        JAX_PLATFORMS="cpu",
        JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
        JAX_COMPILATION_CACHE_DIR=str(cache_dir),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        CNN_JAX_RECORD_BATCHES=str(record_dir),
    )
    return env


def train_args(workdir: Path, data_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "experiments.train",
        "--config=experiments/configs/smoke.py",
        f"--workdir={workdir}",
        f"--config.dataset.data_dir={data_dir}",
        f"--config.train.batch_size={BATCH_SIZE}",
        "--config.train.num_epochs=1",
    ]


def variables(workdir: Path) -> dict[str, np.ndarray]:
    import jax

    from cnn_jax.runs.load import load_run

    flat = jax.tree_util.tree_flatten_with_path(load_run(workdir).variables)[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in flat}


def test_gloo_is_a_cpu_collectives_option_of_this_jax():
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    assert jax.config.jax_cpu_collectives_implementation == "gloo"


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path: Path, data_dir: Path):
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(HOOK)
    cache = tmp_path / "xla_cache"
    single_rec, multi_rec = tmp_path / "single_batches", tmp_path / "multi_batches"
    single_rec.mkdir()
    multi_rec.mkdir()

    port = free_port()
    multi_dir = tmp_path / "two_processes"
    procs = [
        subprocess.Popen(
            [
                *train_args(multi_dir, data_dir),
                "--distributed",
                f"--coordinator_address=localhost:{port}",
                "--num_processes=2",
                f"--process_id={i}",
            ],
            cwd=REPO,
            env=env_for(hook_dir, multi_rec, cache),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    single_dir = tmp_path / "one_process"
    single = subprocess.run(
        train_args(single_dir, data_dir),
        cwd=REPO,
        env=env_for(hook_dir, single_rec, cache),
        capture_output=True,
        text=True,
        timeout=600,
    )
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-3000:]
    assert single.returncode == 0, single.stderr[-3000:]

    multi = json.loads((multi_dir / "results.json").read_text())
    one = json.loads((single_dir / "results.json").read_text())
    assert (multi["processes"], multi["devices"]) == (2, 2)
    assert (one["processes"], one["devices"]) == (1, 1)
    assert multi["steps"] == one["steps"]

    # Each process fed its own half of every global batch; together, the whole batch.
    halves = [json.loads((multi_rec / f"process_{i}.json").read_text()) for i in range(2)]
    whole = json.loads((single_rec / "process_0.json").read_text())
    assert len(whole) == RECORDED_BATCHES
    for b in range(RECORDED_BATCHES):
        assert len(halves[0][b]) == len(halves[1][b]) == BATCH_SIZE // 2
        assert halves[0][b] != halves[1][b]
        assert sorted(halves[0][b] + halves[1][b]) == sorted(whole[b])

    got, want = variables(multi_dir), variables(single_dir)
    assert got.keys() == want.keys()
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    for split in ("validation", "test"):
        for metric in ("loss", "accuracy"):
            a, b = multi["final"][split][metric], one["final"][split][metric]
            assert abs(a - b) <= 1e-4, (split, metric, a, b)
