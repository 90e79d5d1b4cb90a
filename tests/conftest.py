"""Shared fixtures: a per-session data dir so tests never touch ~/tensorflow_datasets, and
full float32 precision on accelerators.

On a GPU (or TPU), XLA's default precision for float32 matmuls and convolutions is reduced
(TF32 on Hopper: a 10-bit mantissa, ~1e-3 relative error), while the tests compare two
programs (vmap against a loop of single-seed steps, JAX against PyTorch, sharded against
single-device) at float32 tolerances. There the session runs at `highest`, unless
JAX_DEFAULT_MATMUL_PRECISION says otherwise (the device check sets it explicitly). CPU runs
are unchanged: its float32 matmuls are full precision already."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRECISION_ENV = "JAX_DEFAULT_MATMUL_PRECISION"


@pytest.fixture(scope="session", autouse=True)
def full_precision_on_accelerators():
    """float32 matmuls at `highest` on GPU/TPU backends (see the module docstring)."""
    if os.environ.get(PRECISION_ENV) is None:
        import jax

        if jax.default_backend() != "cpu":
            jax.config.update("jax_default_matmul_precision", "highest")
    yield


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A TFDS data dir private to this test session (datasets prepare into it once)."""
    return tmp_path_factory.mktemp("tfds")


def child_pythonpath(*first: str | Path) -> str:
    """PYTHONPATH for a child interpreter: `first` (default: the repository), then the parent's
    own entries, kept (an offline GPU machine's extra packages are installed there)."""
    parts = [str(p) for p in (first or (REPO,))]
    parts += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(parts))


def run_python(code: str, *, devices: int = 1, timeout: int = 300, env: dict | None = None):
    """Runs `code` in a fresh interpreter; returns the result. With `devices` > 1 the child
    runs on the CPU backend with that many fake devices (they exist on the CPU backend only,
    so a GPU host must not pick its GPU); `env` can override JAX_PLATFORMS."""
    full_env = dict(os.environ)
    if devices > 1:
        full_env["JAX_PLATFORMS"] = "cpu"
    full_env.update(env or {})
    full_env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    full_env["PYTHONPATH"] = child_pythonpath()
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=REPO,
    )
