"""Shared fixtures: a per-session data dir so tests never touch ~/tensorflow_datasets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A TFDS data dir private to this test session (datasets prepare into it once)."""
    return tmp_path_factory.mktemp("tfds")


def run_python(code: str, *, devices: int = 1, timeout: int = 300, env: dict | None = None):
    """Runs `code` in a fresh interpreter with `devices` fake CPU devices; returns the result."""
    full_env = dict(os.environ, **(env or {}))
    full_env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    full_env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=REPO,
    )
