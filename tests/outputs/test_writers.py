"""Run outputs: atomic writes survive failures, metrics.jsonl survives kills and resumes,
TensorBoard gets the scalars, and the git revision is recorded."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import jax.numpy as jnp
import ml_collections
import ml_dtypes
import numpy as np
import pytest

from cnn_jax.outputs import writers
from cnn_jax.outputs.writers import (
    MetricsWriter,
    UnreadableJSONError,
    atomic_write_json,
    atomic_write_text,
    git_revision,
    read_json,
    read_metrics,
)


def test_atomic_write_text_replaces_and_leaves_no_temp_files(tmp_path: Path):
    path = tmp_path / "out.txt"
    atomic_write_text(path, "first")
    path.chmod(0o600)
    atomic_write_text(path, "second")
    assert path.read_text() == "second"
    assert path.stat().st_mode & 0o777 == 0o600  # An existing file keeps its permissions.
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failed_write_keeps_the_old_file_and_no_temp_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "results.json"
    atomic_write_json(path, {"accuracy": 0.5})

    def crash(fd: int) -> None:  # The text is in the temp file, not yet renamed over.
        raise OSError("disk on fire")

    monkeypatch.setattr(writers.os, "fsync", crash)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_json(path, {"accuracy": 0.9, "padding": "x" * 100_000})
    monkeypatch.undo()
    with pytest.raises(TypeError, match="object"):
        atomic_write_json(path, {"bad": object()})
    assert read_json(path) == {"accuracy": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_atomic_write_json_converts_numbers_arrays_configs_and_paths(tmp_path: Path):
    config = ml_collections.ConfigDict({"model": {"width": 8}, "lr": 0.1})
    obj = {
        "b": np.float32(0.5),
        "a": jnp.asarray(3, jnp.int32),
        "array": np.arange(3),
        "jax_array": jnp.ones((2,), jnp.bfloat16),
        "bf16": np.asarray(1.5, ml_dtypes.bfloat16),
        "config": config,
        "path": Path("/tmp/x"),
        "flag": np.bool_(True),
    }
    path = tmp_path / "r.json"
    atomic_write_json(path, obj)
    assert read_json(path) == {
        "a": 3,
        "array": [0, 1, 2],
        "b": 0.5,
        "bf16": 1.5,
        "config": {"lr": 0.1, "model": {"width": 8}},
        "flag": True,
        "jax_array": [1.0, 1.0],
        "path": "/tmp/x",
    }
    text = path.read_text()
    assert text.startswith('{\n  "a": 3,') and text.endswith("}\n")


def test_metrics_are_plain_numbers_one_line_each(tmp_path: Path):
    with MetricsWriter(tmp_path, tensorboard=False) as writer:
        writer.write(1, "train", {"loss": jnp.asarray(2.5), "correct": np.int64(7)})
        writer.write(2, "validation", {"accuracy": np.float32(0.75)})
    records = read_metrics(tmp_path)
    assert [r["step"] for r in records] == [1, 2]
    first = records[0]
    assert list(first) == ["step", "split", "loss", "correct", "time"]
    assert first["split"] == "train" and first["loss"] == 2.5 and first["correct"] == 7
    assert type(first["correct"]) is int and isinstance(first["time"], float)
    assert records[1]["accuracy"] == 0.75
    assert read_metrics(tmp_path / "metrics.jsonl") == records
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_bad_metrics_are_rejected(tmp_path: Path):
    with MetricsWriter(tmp_path, tensorboard=False) as writer:
        with pytest.raises(ValueError, match="scalar"):
            writer.write(1, "train", {"loss": np.ones(3)})
        with pytest.raises(ValueError, match="reserved"):
            writer.write(1, "train", {"step": 1})
    with pytest.raises(ValueError, match="closed"):
        writer.write(1, "train", {"loss": 1.0})


def _write_steps(workdir: Path, steps: range, **kwargs) -> None:
    with MetricsWriter(workdir, tensorboard=False, **kwargs) as writer:
        for step in steps:
            writer.write(step, "train", {"loss": 1.0 / step})
            if step % 2 == 0:
                writer.write(step, "validation", {"accuracy": step / 10})


def _without_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


def test_torn_last_line_is_skipped_and_repaired_before_appending(tmp_path: Path):
    _write_steps(tmp_path, range(1, 3))
    with open(tmp_path / "metrics.jsonl", "ab") as f:
        f.write(b'{"step": 3, "split": "tra')  # A kill in the middle of a line.
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 2]
    _write_steps(tmp_path, range(3, 4))  # Appending (no resume) cuts the torn tail first.
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 2, 3]


def test_malformed_line_in_the_middle_raises(tmp_path: Path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2"):
        read_metrics(tmp_path)


def test_damaged_middle_line_is_reported_and_set_aside_on_resume(tmp_path: Path, caplog):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\ngarbled\n{"step": 2}\n{"step": 3}\n')
    with caplog.at_level("WARNING"):
        MetricsWriter(tmp_path, tensorboard=False, resume_from_step=2).close()
    assert "metrics.jsonl:2: damaged line b'garbled\\n' set aside" in caplog.text
    assert (tmp_path / "metrics.jsonl.damaged").read_text() == "garbled\n"
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]


def test_resumed_run_logs_what_an_uninterrupted_run_logs(tmp_path: Path):
    uninterrupted, resumed = tmp_path / "a", tmp_path / "b"
    _write_steps(uninterrupted, range(1, 9))
    _write_steps(resumed, range(1, 7))  # Killed at step 6 with a torn line; checkpoint at 4.
    with open(resumed / "metrics.jsonl", "ab") as f:
        f.write(b'{"step": 7, "spl')
    _write_steps(resumed, range(5, 9), resume_from_step=4)
    expected = _without_time(read_metrics(uninterrupted))
    assert _without_time(read_metrics(resumed)) == expected
    assert sorted(p.name for p in resumed.iterdir()) == ["metrics.jsonl"]


def _tensorboard_scalars(workdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Parses tensorboardX event files (TFRecord framing) without TensorFlow."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(workdir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_tensorboard_gets_split_slash_name_scalars(tmp_path: Path):
    with MetricsWriter(tmp_path) as writer:
        writer.write(10, "train", {"loss": 0.25})
        writer.write(10, "validation", {"accuracy": 0.5})
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert _tensorboard_scalars(tmp_path) == {
        "train/loss": [(10, 0.25)],
        "validation/accuracy": [(10, 0.5)],
    }


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")
def test_git_revision_in_a_temporary_repo(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "repo"
    repo.mkdir()
    assert git_revision(repo) is None

    def git(*args: str) -> str:
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com")
        env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
        out = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
        return out.stdout.decode().strip()

    git("init", "-q")
    assert git_revision(repo) is None  # No commit yet.
    (repo / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "--short", "HEAD")
    assert git_revision(repo) == head
    (repo / "untracked.txt").write_text("ignored by the dirty check")
    assert git_revision(repo) == head
    (repo / "a.py").write_text("x = 2\n")
    assert git_revision(repo) == f"{head}-dirty"
    assert json.dumps(git_revision())  # This checkout: a str (or None in an sdist).


@pytest.mark.parametrize("content", [b'{"test_accuracy": 0.9', b"\xff\xfe not text"])
def test_an_unreadable_record_names_its_file(tmp_path: Path, content: bytes):
    path = tmp_path / "results.json"
    path.write_bytes(content)
    with pytest.raises(UnreadableJSONError, match=rf"^{re.escape(str(path))}: not valid JSON"):
        read_json(path)
