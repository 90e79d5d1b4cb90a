"""Run outputs: atomic JSON/text files, metrics.jsonl + TensorBoard, and the git revision.

Every whole-file write goes through a temporary file that is fsynced and renamed over the
target, so a killed run leaves either the old or the new file, never half of one.
metrics.jsonl is append-only with one `write()` per line: a kill leaves at most a torn
last line, which `read_metrics` skips and `MetricsWriter` repairs before appending.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.jsonl"
_RESERVED = ("step", "split", "time")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` via a temp file in the same directory, fsync and os.replace."""
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # Make the rename itself durable (POSIX only).
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def to_jsonable(obj: Any) -> Any:
    """`json.dumps(default=...)` hook: numpy/JAX scalars and arrays, ConfigDicts, paths."""
    if isinstance(obj, ml_collections.ConfigDict | ml_collections.FrozenConfigDict):
        return obj.to_dict()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    if isinstance(obj, np.generic | np.ndarray) or hasattr(obj, "__array__"):
        arr = np.asarray(obj)
        if arr.dtype.kind not in "biufU":  # e.g. bfloat16 (ml_dtypes)
            arr = arr.astype(np.float64)
        return arr.tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically writes `obj` as indented, key-sorted JSON (see `to_jsonable`)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=to_jsonable) + "\n")


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class UnreadableJSONError(ValueError):
    """A record file that is not valid JSON (truncated, or written by something else)."""


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value stored in `path`; UnreadableJSONError naming the file when it is not
    JSON (a file cut short by a kill or a full disk, say)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f"line {e.lineno}" if isinstance(e, json.JSONDecodeError) else "not UTF-8"
        raise UnreadableJSONError(f"{path}: not valid JSON ({where})") from None


def git_revision(repo_dir: str | os.PathLike | None = None) -> str | None:
    """Short commit hash of `repo_dir` (default: this package's checkout), with '-dirty'
    when tracked files have uncommitted changes; None outside git or without git."""
    cwd = Path(repo_dir) if repo_dir is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    revision = git("rev-parse", "--short", "HEAD")
    if not revision:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return f"{revision}-dirty" if status else revision


def _scalar(name: str, value: Any) -> int | float | bool:
    """A metric as a plain Python number (from floats, numpy scalars, 0-d or size-1 arrays)."""
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(f"metric {name!r}: expected a scalar, got shape {arr.shape}")
    if arr.dtype.kind == "b":
        return bool(arr.reshape(()))
    if arr.dtype.kind in "iu":
        return int(arr.reshape(()))
    return float(arr.reshape(()).astype(np.float64))


def _split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete newline-terminated lines, and the unterminated tail (b'' if none)."""
    *lines, tail = data.split(b"\n")
    return [line + b"\n" for line in lines], tail


def _parses(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _before(record: dict, step: float, logged_by: float | None) -> bool:
    """Whether `record` was logged before a checkpoint of `step` saved at time `logged_by`."""
    at = record.get("step", 0)
    if at != step or logged_by is None:
        return at <= step
    return record.get("time", 0) <= logged_by


class MetricsWriter:
    """Appends metrics to `workdir/metrics.jsonl` and, optionally, TensorBoard events.

    `resume_from_step=S` (a run resumed from a checkpoint at step S) first rewrites
    metrics.jsonl atomically keeping only lines with step <= S (with `logged_by=T`, the
    checkpoint's save time, only the step-S lines logged by T: what came after is logged
    again), and hides later TensorBoard events, so a killed-and-resumed run logs what an
    uninterrupted one does.
    TensorBoard keeps one point per tag and step (the final evaluation's validation point,
    at the step of the last epoch's, goes to metrics.jsonl and to `write_hparams`).
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        *,
        tensorboard: bool = True,
        resume_from_step: int | None = None,
        logged_by: float | None = None,
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.path = self.workdir / METRICS_FILE
        if self.path.exists():
            self._prepare_existing(resume_from_step, logged_by)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._tb = None
        self._tb_last_step: dict[str, int] = {}
        if tensorboard:
            from tensorboardX import SummaryWriter  # Lazy: pulls in protobuf.

            purge = None if resume_from_step is None else int(resume_from_step) + 1
            self._tb = SummaryWriter(logdir=str(self.workdir), purge_step=purge, flush_secs=30)

    def _prepare_existing(self, resume_from_step: int | None, logged_by: float | None) -> None:
        """Drops lines after the resume step, or just a torn last line when appending."""
        lines, tail = _split_lines(self.path.read_bytes())
        if self._set_aside_damaged(lines) or resume_from_step is not None:
            last = float("inf") if resume_from_step is None else resume_from_step
            keep = [
                line
                for line in [*lines, tail]
                if (record := _parses(line)) is not None and _before(record, last, logged_by)
            ]
            text = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in keep)
            atomic_write_text(self.path, text.decode("utf-8"))
        elif tail:  # Torn by a kill: complete it if it is a whole record, else cut it off.
            with open(self.path, "r+b") as f:
                if _parses(tail) is not None:
                    f.seek(0, os.SEEK_END)
                    f.write(b"\n")
                else:
                    f.truncate(sum(len(line) for line in lines))

    def _set_aside_damaged(self, lines: list[bytes]) -> bool:
        """Complete lines that are not JSON records (damage, not a torn tail) are reported
        with file and line number and appended to metrics.jsonl.damaged rather than dropped
        silently; True when there were any (the caller rewrites the file without them)."""
        damaged = [(n, line) for n, line in enumerate(lines, 1) if _parses(line) is None]
        if not damaged:
            return False
        aside = self.path.with_name(self.path.name + ".damaged")
        with open(aside, "ab") as f:
            f.write(b"".join(line for _, line in damaged))
        for number, line in damaged:
            log.warning(
                "%s:%d: damaged line %r set aside in %s", self.path, number, line[:60], aside
            )
        return True

    def write(self, step: int, split: str, metrics: Mapping[str, Any]) -> None:
        """Logs scalar `metrics` of `split` at `step`: one JSON line, and `split/name` in TB."""
        if self._fd is None:
            raise ValueError(f"MetricsWriter for {self.path} is closed")
        clash = [k for k in metrics if k in _RESERVED]
        if clash:
            raise ValueError(f"metric names {clash} clash with the reserved fields {_RESERVED}")
        values = {name: _scalar(name, value) for name, value in metrics.items()}
        record = {"step": int(step), "split": split, **values, "time": time.time()}
        data = (json.dumps(record) + "\n").encode("utf-8")
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # Only on a full disk or a signal: finish the line.
                written += os.write(self._fd, data[written:])
        except OSError as e:  # name the file: the CLI turns this into one line
            raise OSError(e.errno, e.strerror, str(self.path)) from None
        if self._tb is not None:
            for name, value in values.items():
                tag = f"{split}/{name}"
                if self._tb_last_step.get(tag, -1) < int(step):  # one point per step
                    self._tb.add_scalar(tag, value, int(step))
                    self._tb_last_step[tag] = int(step)

    def write_hparams(
        self, hparams: Mapping[str, Any], final: Mapping[str, Mapping[str, Any]], step: int
    ) -> None:
        """TensorBoard HParams for this run (no-op without TensorBoard): the settings
        `hparams` (see `hparams_of`) and the final metrics, logged as `final/<split>/<name>`
        scalars at `step`, so runs compare side by side in TensorBoard's HParams view."""
        if self._tb is None:
            return
        from tensorboardX.summary import hparams as hparams_summaries

        metrics = {
            f"final/{split}/{name}": _scalar(name, value)
            for split, values in final.items()
            for name, value in values.items()
        }
        settings = {k: v for k, v in hparams.items() if v is not None}
        file_writer = self._tb._get_file_writer()
        for summary in hparams_summaries(settings, metrics):  # experiment, session start/end
            file_writer.add_summary(summary)
        for tag, value in metrics.items():
            self._tb.add_scalar(tag, value, int(step))

    def close(self) -> None:
        """Closes metrics.jsonl and flushes TensorBoard events; idempotent."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hparams_of(
    config: Any, seed: int, run_id: str | None = None
) -> dict[str, bool | int | float | str]:
    """A run's settings as TensorBoard hparams: every field of its run identity
    (`cnn_jax.config.identity.seed_fields`: what changes the result), lists and dicts as JSON text,
    plus `run_identity`, the hash of the unit's config as in config.json (`run_id`, which the
    trainer computes; without it, the hash of the fields as written)."""
    from cnn_jax.config import identity

    out: dict[str, bool | int | float | str] = {}
    for key, value in identity.seed_fields(config, seed).items():
        plain = isinstance(value, bool | int | float | str)
        out[key] = value if plain else json.dumps(value, sort_keys=True, default=str)
    out[identity.KEY] = run_id or identity.of(config)
    return out


def read_metrics(workdir_or_path: str | os.PathLike) -> list[dict]:
    """All records of a metrics.jsonl (or of `workdir/metrics.jsonl`), skipping a torn
    last line; a malformed line elsewhere raises ValueError."""
    path = Path(workdir_or_path)
    if path.is_dir():
        path = path / METRICS_FILE
    lines, tail = _split_lines(path.read_bytes())
    records = []
    for number, line in enumerate(lines, 1):
        record = _parses(line)
        if record is None:
            raise ValueError(
                f"{path}:{number}: not a JSON object: {line[:80]!r}; resume the run (the line "
                "is set aside in metrics.jsonl.damaged) or delete the line"
            )
        records.append(record)
    if tail and (record := _parses(tail)) is not None:
        records.append(record)
    return records
