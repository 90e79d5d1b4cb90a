"""Per-image predictions of an evaluation: top-1 class, correctness, correct-class probability
and the logits.

Paired tests between variants (McNemar, paired bootstrap over seeds and images; see
`cnn_jax.stats`) need each run's per-image outcome on the same images, so every final
evaluation stores them next to results.json as `<run dir>/predictions/<split>.npz`:

- labels    [n]      the true classes (uint8, or int32 with more than 256 classes)
- top1      [..., n] the predicted class (same dtype as labels)
- correct   [..., n] uint8 0/1
- p_correct [..., n] float16 softmax probability of the true class
- logits    [..., n, classes] float16 (clipped to float16's range), where the writer had them:
  calibration and confidence analyses afterwards need every class's score, not only the true
  one's. Files written before logits were kept have none; `load` then returns no "logits".

A leading axis (e.g. one row per shift of a shifted evaluation) is allowed on all but labels.
Files are written atomically and read with `allow_pickle=False` (plain arrays only).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnn_jax.outputs.writers import file_sha256

KEYS = ("labels", "top1", "correct", "p_correct")
OPTIONAL_KEYS = ("logits",)
DIRNAME = "predictions"
HASHES = "predictions_sha256"  # results.json: {split: sha256 of predictions/<split>.npz}
log = logging.getLogger(__name__)
_unverified_noted = False
_FLOAT16_MAX = float(np.finfo(np.float16).max)


def _class_dtype(*arrays: np.ndarray) -> type:
    largest = max((int(a.max()) for a in arrays if a.size), default=0)
    smallest = min((int(a.min()) for a in arrays if a.size), default=0)
    return np.uint8 if smallest >= 0 and largest < 256 else np.int32


def save(path: str | os.PathLike, *, labels_n, top1_n, p_correct_n, logits_nc=None) -> None:
    """Writes one evaluation's per-image outputs to `path` (.npz) atomically.

    `top1_n` and `p_correct_n` are [n] or [..., n] (a leading axis such as shifts);
    `labels_n` is [n]; `logits_nc` (optional) is [..., n, classes]. Raises ValueError when
    the shapes disagree.
    """
    labels = np.asarray(labels_n)
    top1 = np.asarray(top1_n)
    p_correct = np.asarray(p_correct_n, np.float32)
    if labels.ndim != 1 or top1.shape[-1:] != labels.shape or p_correct.shape != top1.shape:
        raise ValueError(
            f"predictions: labels {labels.shape}, top1 {top1.shape}, p_correct "
            f"{p_correct.shape}; allowed: labels [n], top1 and p_correct [..., n] alike"
        )
    dtype = _class_dtype(labels, top1)
    arrays = {
        "labels": labels.astype(dtype),
        "top1": top1.astype(dtype),
        "correct": (top1 == labels).astype(np.uint8),
        "p_correct": p_correct.astype(np.float16),
    }
    if logits_nc is not None:
        arrays["logits"] = _logits(logits_nc, top1.shape)
    _write(Path(path), arrays)


def _logits(logits_nc, shape: tuple[int, ...]) -> np.ndarray:
    """The logits as float16 [..., n, classes], checked against top1's [..., n]."""
    logits = np.asarray(logits_nc, np.float32)
    if logits.shape[:-1] != shape:
        raise ValueError(
            f"predictions: logits {logits.shape}; allowed: top1's shape {shape} plus a class axis"
        )
    return np.clip(logits, -_FLOAT16_MAX, _FLOAT16_MAX).astype(np.float16)


def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`arrays` as an .npz at `path`, atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a predictions file: labels, top1, correct, p_correct, and logits when
    the file has them (older files do not)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"predictions: no file {path}; allowed: a run trained since per-image "
            "predictions exist (retrain it into a new --workdir)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {key: data[key] for key in KEYS}
            out.update({key: data[key] for key in OPTIONAL_KEYS if key in data.files})
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(
            f"predictions: {path} is unreadable ({e}); delete it and re-evaluate"
        ) from None
    return out


def _recorded_hash(run_dir: Path, split: str) -> str | None:
    """The sha256 the run's results.json holds for `split` (None where it holds none); a
    member that diverged (`run_results.DIVERGED`: no predictions) is one ValueError line."""
    try:
        results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    diverged = results.get("diverged") if isinstance(results, dict) else None
    if isinstance(diverged, dict):
        raise ValueError(
            f"predictions: {run_dir} diverged at step {diverged.get('step')} and has no "
            "predictions; allowed: the runs that finished (cnn_jax.runs.sweep.without_diverged)"
        )
    hashes = results.get(HASHES) if isinstance(results, dict) else None
    value = hashes.get(split) if isinstance(hashes, dict) else None
    return value if isinstance(value, str) else None


def load_verified(run_dir: str | os.PathLike, split: str) -> dict[str, np.ndarray]:
    """`load` of a run's predictions for `split`, once the file's sha256 matches the one the
    run's results.json holds (a file changed since the run wrote it is one line naming it).
    Files from runs that kept no hash are read as they are, which is said once."""
    global _unverified_noted
    run_dir = Path(run_dir)
    path, expected = path_of(run_dir, split), _recorded_hash(run_dir, split)
    if expected is None and path.is_file() and not _unverified_noted:
        _unverified_noted = True
        log.warning(
            "predictions: %s (and any like it) has no hash in its results.json "
            "(written before hashes were kept): read unverified",
            path,
        )
    elif expected is not None and path.is_file() and file_sha256(path) != expected:
        raise ValueError(
            f"predictions: {path} differs from the file the run wrote (its sha256 is not the "
            f"one {run_dir / 'results.json'} holds); allowed: that file, or retrain the run"
        )
    return load(path)


def path_of(run_dir: str | os.PathLike, split: str) -> Path:
    """Where a run's predictions for `split` live."""
    return Path(run_dir) / DIRNAME / f"{split}.npz"


def correct_matrix(run_dirs: Sequence[str | os.PathLike], split: str = "test") -> np.ndarray:
    """[seeds, images] (or [seeds, ..., images]) uint8 correctness of several runs.

    All runs must have been evaluated on the same images (same labels in the same order),
    else ValueError: a paired test of different test sets means nothing.
    """
    if not run_dirs:
        raise ValueError("run_dirs: empty; allowed: one or more run directories")
    loaded = [load_verified(d, split) for d in run_dirs]
    labels = loaded[0]["labels"]
    for d, item in zip(run_dirs, loaded):
        if not np.array_equal(item["labels"], labels) or item["correct"].shape != (
            loaded[0]["correct"].shape
        ):
            raise ValueError(
                f"predictions: {path_of(d, split)} holds other images than "
                f"{path_of(run_dirs[0], split)}; allowed: runs evaluated on the same split"
            )
    return np.stack([item["correct"] for item in loaded])
