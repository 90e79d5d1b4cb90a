"""Results of record: a study's small outputs copied into `results/<study>/` with provenance.

    record.publish("invariance_mnist", workdir, ["summary.md", "*.png", "readme.md"],
                   config=config, dataset=ds, wall_time_sec=elapsed)

writes `<repo>/results/invariance_mnist/` holding those files (paths relative to the workdir
are kept) and `provenance.json`: the exact command, git revision and dirty state, the config,
the dataset and its checksum, the machine and its load, the wall time, the UTC date and the
library versions. `readme.md` (if among the files) is what `python -m cnn_jax.runs.readme_blocks`
puts into the README. Only small, reviewable files go in: checkpoints, arrays (.npy/.npz),
pickles and any file over 2 MB are refused with one line naming the file.

`maybe_publish(config, ...)` publishes as `config.experiment.record_as` when a (full) config
sets it; studies pass `load_at_start=record.load_average()` taken when they start.

A record comes from a committed tree: with uncommitted changes to tracked files, publishing is
refused (one line naming them) unless forced (`allow_dirty=True`; by default the config's
`experiment.record_allow_dirty`, or CNN_JAX_RECORD_ALLOW_DIRTY=1 for any publisher);
provenance.json then says the dirty tree was allowed and the README footer says so.
`check_publishable(config)` refuses before a study starts.

The record is built in a temporary folder next to the target and renamed into place, so a
killed publish leaves the old record or the new one, never a mix. A rerun whose files, config
and dataset match the existing record is a no-op (the first provenance stays). A record that
differs is never overwritten silently: the old folder is moved to
`results/.superseded/<study>/<its UTC date>/` (ignored by git; git history keeps committed
ones) and a line saying so is printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnn_jax.runs.provenance import (
    _git_state,
    dataset_checksum,
    file_sha256,
    load_average,
    provenance,
    repo_root,
)

__all__ = [
    "check_publishable", "collect", "dataset_checksum", "load_average", "maybe_publish",
    "publish", "repo_root", "results_dir", "tree_state",
]  # fmt: skip
ALLOW_DIRTY_FIELD = "experiment.record_allow_dirty"
ALLOW_DIRTY_ENV = "CNN_JAX_RECORD_ALLOW_DIRTY"

PROVENANCE = "provenance.json"
README_PART = "readme.md"
SUPERSEDED = ".superseded"
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_STUDY_BYTES = 8 * 1024 * 1024
_REFUSED_SUFFIXES = (".npy", ".npz", ".pkl", ".pickle", ".msgpack")
_CHECKPOINT_PARTS = ("checkpoints", "checkpoint", "_CHECKPOINT_METADATA")


def results_dir(results_root: str | os.PathLike = "results") -> Path:
    """`results_root` as an absolute path (a relative one is taken from the repository root)."""
    root = Path(results_root).expanduser()
    return root if root.is_absolute() else repo_root() / root


def _refusal(rel: Path, path: Path) -> str | None:
    """Why `path` (relative name `rel`) may not go into a record, or None when it may."""
    if any(
        part in _CHECKPOINT_PARTS or part.endswith(".orbax-checkpoint-tmp") for part in rel.parts
    ):
        return f"{rel}: a checkpoint; records hold small outputs only (leave it in the workdir)"
    if path.suffix.lower() in _REFUSED_SUFFIXES:
        return f"{rel}: {path.suffix} arrays/pickles are not published; put a table or plot in"
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        return f"{rel}: {size / 2**20:.1f} MB, over the 2 MB limit per file; shrink or leave it out"
    if rel.name == PROVENANCE:
        return f"{rel}: {PROVENANCE} is written by record.publish; rename the workdir's file"
    return None


def collect(workdir: str | os.PathLike, files: Sequence[str]) -> dict[str, Path]:
    """Relative name -> source file for the globs `files` in `workdir` (folders expand).

    Raises ValueError with one line for a glob that matches nothing or a refused file.
    """
    workdir = Path(workdir).resolve()
    if not workdir.is_dir():
        raise ValueError(f"workdir: {workdir} is not a folder")
    chosen: dict[str, Path] = {}
    for pattern in files:
        matches = sorted(workdir.glob(pattern))
        if not matches:
            raise ValueError(f"files: {pattern!r} matches nothing in {workdir}")
        for match in matches:
            if match.is_dir() and (why := _refusal(match.relative_to(workdir), match)):
                raise ValueError(why)
            sources = [match]
            if match.is_dir():
                sources = sorted(p for p in match.rglob("*") if p.is_file())
            for source in sources:
                rel = source.relative_to(workdir)
                if (why := _refusal(rel, source)) is not None:
                    raise ValueError(why)
                chosen[rel.as_posix()] = source
    if not chosen:
        raise ValueError(f"files: {list(files)} hold no file in {workdir}; nothing to publish")
    total = sum(p.stat().st_size for p in chosen.values())
    if total > MAX_STUDY_BYTES:
        raise ValueError(f"files: {total / 2**20:.1f} MB in all, over the 8 MB limit per study")
    return chosen


def tree_state() -> dict[str, Any]:
    """The checkout's git revision and dirty state (`provenance`)."""
    return _git_state(repo_root())


def refuse_dirty(git: dict[str, Any], study: str) -> None:
    """One ValueError line when `git` says the tree has uncommitted changes."""
    if git.get("dirty"):
        files = git.get("dirty_files") or []
        shown = ", ".join(files[:3]) + (f" (+{len(files) - 3} more)" if len(files) > 3 else "")
        raise ValueError(
            f"record: {study} would be published from a tree with uncommitted changes ({shown}); "
            f"commit them and rerun, or set {ALLOW_DIRTY_FIELD}=True (the footer then says so)"
        )


def _record_settings(config: Any) -> tuple[str | None, bool]:
    """(experiment.record_as, whether a dirty tree is allowed) of a config (and the env)."""
    experiment = (config.get("experiment") or {}) if hasattr(config, "get") else {}
    allowed = experiment.get("record_allow_dirty") is True
    return experiment.get("record_as") or None, allowed or os.environ.get(ALLOW_DIRTY_ENV) == "1"


def check_publishable(config: Any) -> None:
    """Refuses, before a study runs, a config that will publish from a dirty tree."""
    study, allow_dirty = _record_settings(config)
    if study and not allow_dirty:
        refuse_dirty(tree_state(), study)


def _same_record(existing: Path, new: dict[str, Any]) -> bool:
    """True when `existing` holds the same files (by sha256), config and datasets as `new`."""
    try:
        old = json.loads((existing / PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    on_disk = {p.relative_to(existing).as_posix() for p in existing.rglob("*") if p.is_file()} - {
        PROVENANCE
    }
    return (
        on_disk == set(new["files"])
        and all(file_sha256(existing / rel) == f["sha256"] for rel, f in new["files"].items())
        and old.get("config") == new["config"]
        and [d.get("checksum_sha256") for d in old.get("datasets", [])]
        == [d["checksum_sha256"] for d in new["datasets"]]
    )


def _move_aside(target: Path, root: Path) -> Path:
    """Moves an existing record to results/.superseded/<study>/<its date>/; returns the path."""
    try:
        stamp = json.loads((target / PROVENANCE).read_text(encoding="utf-8"))["date_utc"]
    except (OSError, ValueError, KeyError):
        stamp = "undated"
    aside = root / SUPERSEDED / target.name / stamp.replace(":", "")
    while aside.exists():
        aside = aside.with_name(aside.name + "+")
    aside.parent.mkdir(parents=True, exist_ok=True)
    target.rename(aside)
    return aside


def publish(
    study: str,
    workdir: str | os.PathLike,
    files: Sequence[str],
    *,
    config: Any,
    dataset: Any,
    wall_time_sec: float,
    command: str | None = None,
    results_root: str | os.PathLike = "results",
    load_at_start: Sequence[float] | None = None,
    allow_dirty: bool | None = None,
) -> Path:
    """Publishes `files` (globs relative to `workdir`) as the record `results/<study>/`.

    Returns the record folder. See the module docstring for what is refused (a dirty tree
    unless `allow_dirty`, None: as the config and environment say), atomicity, the
    identical-rerun no-op and how a differing older record is moved aside.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", study or ""):
        raise ValueError(f"study: {study!r}; allowed: a plain folder name like 'invariance_mnist'")
    if allow_dirty is None:
        allow_dirty = _record_settings(config)[1]
    git = tree_state()
    if not allow_dirty:
        refuse_dirty(git, study)
    chosen = collect(workdir, files)
    record = provenance(
        study=study,
        config=config,
        dataset=dataset,
        wall_time_sec=wall_time_sec,
        command=command,
        load_at_start=load_at_start,
        files=chosen,
        git=git,
        dirty_allowed=allow_dirty,
        workdir=workdir,
    )
    root = results_dir(results_root)
    target = root / study
    if target.is_dir() and _same_record(target, record):
        print(f"record: {target} already holds these files; left as it was")
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{study}.", suffix=".tmp"))
    try:
        for rel, source in chosen.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp / rel)
        (tmp / PROVENANCE).write_text(
            json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        tmp.chmod(0o755)
        if target.exists():
            aside = _move_aside(target, root)
            print(f"record: the previous {study} record differs; moved to {aside}")
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"record: published {len(chosen)} files to {target}")
    if README_PART not in chosen:
        print(f"record: no {README_PART} among the files; the README cannot show {study}")
    return target


def maybe_publish(
    config: Any, workdir: str | os.PathLike, files: Sequence[str], **kwargs: Any
) -> Path | None:
    """`publish` as `config.experiment.record_as` when that is set (full configs), else None.

    `kwargs` are publish's keywords (dataset, wall_time_sec, ...); `config` is passed on.
    """
    study, _ = _record_settings(config)
    if not study:
        return None
    return publish(study, workdir, files, config=config, **kwargs)
