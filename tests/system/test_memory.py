"""The memory check: the estimate against what this process may use, its cgroup limit included."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnn_jax.config_validation import validate_config
from cnn_jax.system import memory
from experiments.configs import smoke

GIB = 2**30


def _cgroup(tmp_path: Path, proc: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A fake /proc/self/cgroup and cgroup mount holding `files` (relative path -> text)."""
    mount = tmp_path / "sys_fs_cgroup"
    for name, text in files.items():
        (mount / name).parent.mkdir(parents=True, exist_ok=True)
        (mount / name).write_text(text)
    (tmp_path / "cgroup").write_text(proc)
    return tmp_path / "cgroup", mount


def test_cgroup_v2_limit_minus_usage_the_tightest_ancestor_wins(tmp_path: Path):
    proc, mount = _cgroup(
        tmp_path,
        "0::/job/step\n",
        {
            "memory.max": "max\n",  # the root: no limit
            "job/memory.max": f"{8 * GIB}\n",
            "job/memory.current": f"{1 * GIB}\n",
            "job/step/memory.max": f"{4 * GIB}\n",
            "job/step/memory.current": f"{1 * GIB}\n",
        },
    )
    assert memory.cgroup_available_bytes(proc, mount) == 3 * GIB


def test_cgroup_v1_memory_controller(tmp_path: Path):
    proc, mount = _cgroup(
        tmp_path,
        "5:cpu,cpuacct:/\n4:memory:/slurm/job_7\n0::/\n",
        {
            "memory/memory.limit_in_bytes": "9223372036854771712\n",  # v1's "no limit"
            "memory/memory.usage_in_bytes": f"{5 * GIB}\n",
            "memory/slurm/job_7/memory.limit_in_bytes": f"{4 * GIB}\n",
            "memory/slurm/job_7/memory.usage_in_bytes": f"{GIB // 2}\n",
        },
    )
    assert memory.cgroup_available_bytes(proc, mount) == 4 * GIB - GIB // 2


def test_no_cgroup_limit_is_unknown_not_zero(tmp_path: Path):
    proc, mount = _cgroup(tmp_path, "0::/\n", {"memory.max": "max\n", "memory.current": "7\n"})
    assert memory.cgroup_available_bytes(proc, mount) is None
    assert memory.cgroup_available_bytes(tmp_path / "missing", mount) is None


def test_the_cgroup_limit_bounds_what_the_check_sees(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(memory, "_host_available_bytes", lambda: 64 * GIB)
    monkeypatch.setattr(memory, "cgroup_available_bytes", lambda: 2 * GIB)
    assert memory.available_bytes() == 2 * GIB


def test_too_many_grid_members_name_the_grid(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: GIB)
    config = smoke.get_config()
    config.train.num_seeds = 400
    seeds = r"^train\.num_seeds: 400 needs about .* at most \d+ seeds"
    with pytest.raises(ValueError, match=seeds):
        validate_config(config)
    config.train.num_seeds = 100  # x 4 grid points: the same 400 members
    rates = [[1e-3], [3e-3], [1e-2], [3e-2]]
    config.grid = {"fields": ["optim.learning_rate"], "values": rates, "dirs": list("abcd")}
    members = r"^grid\.values: 400 needs about .* at most \d+ members \(grid points x seeds\)"
    with pytest.raises(ValueError, match=members):
        validate_config(config)
