"""Where a result comes from: the provenance record that `cnn_jax.runs.record.publish` writes.

Fields (results/README.md has the table): the command (as `python -m <module> <args>`, without
this machine's paths: `command_line`), git revision and dirty state (and whether a dirty tree
was allowed), the config, each dataset's name, sha256 checksum and split sizes, the machine, its
load average, the wall time, the UTC date, library versions and the sha256 of every published
file. `training` sums the wall time of the training programs found in the study's workdir, so a
study that resumed (its finished runs read back, not retrained) still says what its runs cost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import socket
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from cnn_jax.outputs.writers import to_jsonable
from cnn_jax.runs import command_line

_VERSIONED = ("jax", "jaxlib", "flax", "numpy", "optax", "ml-collections", "matplotlib")


def _git(repo: Path, *args: str) -> str | None:
    """Stdout of `git <args>` run in `repo`, or None when git or the repository is missing."""
    try:
        out = subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def repo_root() -> Path:
    """The git top level of this package's checkout, else the current directory."""
    top = (_git(Path(__file__).resolve().parent, "rev-parse", "--show-toplevel") or "").strip()
    return Path(top) if top else Path.cwd()


def dataset_checksum(dataset: Any) -> str:
    """sha256 over the train, validation and test images and labels of a `datasets.Dataset`.

    Each array contributes its split and field name, dtype, shape and C-order bytes, so the
    digest changes with any pixel, label, order or shape, and not with the dataset's name.
    """
    digest = hashlib.sha256()
    for split_name in ("train", "validation", "test"):
        split = getattr(dataset, split_name, None)
        if split is None:
            raise ValueError(f"dataset: no {split_name!r} split; pass a cnn_jax.datasets.Dataset")
        for field in ("images", "labels"):
            arr = np.ascontiguousarray(getattr(split, field))
            digest.update(f"{split_name}.{field}:{arr.dtype.str}:{arr.shape};".encode())
            digest.update(memoryview(arr).cast("B"))
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _command(command: str | None) -> str:
    """`command`, else this process's, as anyone can rerun it (`command_line.portable`)."""
    if command is not None:
        return command_line.portable_text(command, Path.cwd())
    return command_line.portable(command_line.this_process(), Path.cwd())


def _git_state(repo: Path) -> dict[str, Any]:
    """Revision and dirty state (tracked files only: untracked outputs do not count)."""
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    dirty_files = [line[3:] for line in status.splitlines()] if status else []
    return {
        "revision": (_git(repo, "rev-parse", "HEAD") or "").strip() or None,
        "dirty": bool(dirty_files) if status is not None else None,
        "dirty_files": dirty_files[:50],
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _datasets(dataset: Any) -> list[dict[str, Any]]:
    """Name, checksum and split sizes of a Dataset, a list of them, or none (None: synthetic)."""
    if dataset is None:
        return []
    many = isinstance(dataset, list | tuple)
    return [
        {
            "name": getattr(ds, "name", None),
            "checksum_sha256": dataset_checksum(ds),
            "sizes": {s: int(len(getattr(ds, s).labels)) for s in ("train", "validation", "test")},
        }
        for ds in (dataset if many else [dataset])
    ]


def provenance(
    *,
    study: str,
    config: Any,
    dataset: Any,
    wall_time_sec: float,
    command: str | None = None,
    load_at_start: Sequence[float] | None = None,
    files: Mapping[str, Path] | None = None,
    git: Mapping[str, Any] | None = None,
    dirty_allowed: bool = False,
    workdir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The provenance record of a study run (see the module docstring for the fields); `git`
    is the tree's state when the caller has it already."""
    git = dict(git if git is not None else _git_state(repo_root()))
    if git.get("dirty"):
        git["dirty_allowed"] = bool(dirty_allowed)
    config_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
    return {
        "study": study,
        "command": _command(command),
        "cwd": str(Path.cwd()),
        "git": git,
        "config": json.loads(json.dumps(config_dict, default=to_jsonable)),
        "datasets": _datasets(dataset),
        "machine": {
            "hostname": socket.gethostname(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "load_average": {
            "at_start": list(load_at_start) if load_at_start is not None else None,
            "at_publish": load_average(),
        },
        "wall_time_sec": float(wall_time_sec),
        "training": training_time(workdir) if workdir is not None else None,
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": _versions(),
        "files": {
            rel: {"sha256": file_sha256(p), "bytes": p.stat().st_size}
            for rel, p in sorted((files or {}).items())
        },
    }


def training_time(workdir: str | os.PathLike) -> dict[str, float | int]:
    """{"programs", "wall_time_sec"}: the training programs under `workdir` and their summed wall
    time, each program's own (the trainer's clock spans every process that resumed it).

    A program is a run folder's results.json with a run identity; a vmapped seed's folder
    (`vmapped_parent`) shares its program's time and is not counted again, nor is the study's
    own results.json at the top of `workdir`."""
    root = Path(workdir)
    programs, seconds = 0, 0.0
    for path in sorted(root.rglob("results.json")):
        if path.parent == root:
            continue
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a run's results (or unreadable): the record does not rest on it
        if not isinstance(run, dict) or "run_identity" not in run or "vmapped_parent" in run:
            continue
        programs += 1
        seconds += float(run.get("wall_time_sec") or 0.0)
    return {"programs": programs, "wall_time_sec": seconds}
