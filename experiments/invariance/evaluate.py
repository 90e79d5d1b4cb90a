"""Shifted evaluation of one trained run: per-shift, per-image predictions saved to disk.

Every protocol's metric is computed later from these files (`invariance_analysis`), so
nothing retrains or re-evaluates to compare variants. Shift sets (all content shifts over the
black canvas, mode 'zero', so the background stays 0 and nothing wraps):

- 'zhang': two independent shifts per test image, uniform over [-m, m]^2 (Zhang 2019's
  consistency protocol draws two random crop offsets per image); the same draws for every run.
- 'azulay': the diagonal shifts (k, k), k = -4..4 (Azulay & Weiss 2019 evaluate 8 consecutive
  offsets, each against the next one pixel further diagonally); k = 0 is the unshifted image.
- 'distance': horizontal shifts (0, +-d) for the study's distances (the seed's claim);
- 'learned': the same for `experiment.learned_distances` (learned vs built-in invariance).

Each set is written with `cnn_jax.outputs.predictions.save` to <run_dir>/shifted/<set>.npz
(leading shift axis; with the logits, float16), plus <set>_shifts.npy with the shifts and, for
'azulay', azulay_mac.npz with the per-pair |delta p| of the first shift's top-1 class (Azulay &
Weiss's MAC).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from cnn_jax import datasets
from cnn_jax.config.specs import DatasetSpec
from cnn_jax.measure import invariance
from cnn_jax.outputs import predictions
from cnn_jax.runs.load import load_run

SETS = ("zhang", "azulay", "distance", "learned")
HORIZONTAL = {"distance": "distances", "learned": "learned_distances"}  # set -> its distances
DIRNAME = "shifted"
AZULAY_OFFSETS = tuple(range(-4, 5))


def shift_plan(exp: Mapping[str, Any], num_images: int, sets: tuple[str, ...]) -> dict:
    """Set name -> per-image shifts, int32 [S, N, 2] (dy, dx); fixed by the config alone."""
    out = {}
    if "zhang" in sets:
        m = int(exp["max_shift"])
        rng = np.random.default_rng(int(exp["shift_seed"]))
        out["zhang"] = rng.integers(-m, m + 1, size=(2, num_images, 2)).astype(np.int32)
    if "azulay" in sets:
        diag = np.array([[k, k] for k in AZULAY_OFFSETS], np.int32)
        out["azulay"] = np.broadcast_to(diag[:, None], (len(diag), num_images, 2)).copy()
    for name, key in HORIZONTAL.items():
        if name in sets:
            d = sorted({s * int(x) for x in exp[key] for s in (-1, 1)})
            row = np.array([[0, x] for x in d], np.int32)
            out[name] = np.broadcast_to(row[:, None], (len(row), num_images, 2)).copy()
    return out


@functools.partial(jax.jit, static_argnums=(0, 4))
def _shifted_outputs(predict_fn, variables, x_bhwc, shifts_b2, pad):
    """(logits, softmax) of every image at its own shift."""
    shifted = invariance.shift_each(x_bhwc, shifts_b2, "zero", pad)
    logits = predict_fn(variables, shifted)[0]
    return logits, jax.nn.softmax(logits, -1)


def _outputs(predict_fn, variables, images, shifts_sn2, batch: int) -> tuple[np.ndarray, ...]:
    """(logits, softmax outputs), each [S, N, K], of every image at its own shift, in
    fixed-size chunks."""
    pad = int(np.abs(shifts_sn2).max()) if shifts_sn2.size else 0
    n = len(images)
    logits, probs = [], []
    for s in range(len(shifts_sn2)):
        parts = []
        for start in range(0, n, batch):
            x, sh = images[start : start + batch], shifts_sn2[s, start : start + batch]
            k = len(x)
            if k < batch:  # pad the last chunk so every call has one shape (one compile)
                x = np.concatenate([x, np.repeat(x[:1], batch - k, 0)])
                sh = np.concatenate([sh, np.repeat(sh[:1], batch - k, 0)])
            out = _shifted_outputs(predict_fn, variables, x, sh, pad)
            parts.append([np.asarray(a)[:k] for a in out])
        logits.append(np.concatenate([p[0] for p in parts]))
        probs.append(np.concatenate([p[1] for p in parts]))
    return np.stack(logits), np.stack(probs)


def _save(
    folder: Path, name: str, labels: np.ndarray, probs_snk: np.ndarray, logits_snk: np.ndarray
) -> None:
    """One set's predictions, with the logits (float16: calibration and confidence can be
    analysed afterwards without re-evaluating)."""
    p_correct = np.take_along_axis(probs_snk, labels[None, :, None].astype(np.int64), -1)[..., 0]
    predictions.save(
        folder / f"{name}.npz", labels_n=labels, top1_n=probs_snk.argmax(-1),
        p_correct_n=p_correct, logits_nc=logits_snk,
    )  # fmt: skip


def _mac_pairs(probs_snk: np.ndarray) -> np.ndarray:
    """|p(c | shift k+1) - p(c | shift k)| for c = top-1 at shift k, [S-1, N] (Azulay & Weiss)."""
    top = probs_snk[:-1].argmax(-1)[..., None]
    first = np.take_along_axis(probs_snk[:-1], top, -1)[..., 0]
    second = np.take_along_axis(probs_snk[1:], top, -1)[..., 0]
    return np.abs(second - first)


def scored_images(exp: Mapping[str, Any], available: int) -> int:
    """`experiment.num_images`: the first N test images; None (the default) scores them all."""
    n = exp.get("num_images")
    if n is None:
        return available
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"experiment.num_images: {n!r}; allowed: None (all) or an integer >= 2")
    return min(n, available)


def evaluate_run(run_dir: str | Path, exp: Mapping[str, Any], sets: tuple[str, ...]) -> Path:
    """Writes <run_dir>/shifted/ for `sets` (skipped when done with the same settings)."""
    folder = Path(run_dir) / DIRNAME
    keys = ("num_images", "max_shift", "shift_seed", "distances")
    settings = {k: exp.get(k) for k in keys}
    if "learned" in sets:
        settings["learned_distances"] = exp.get("learned_distances")
    settings = json.loads(json.dumps({**settings, "sets": list(sets)}))
    marker = folder / "settings.json"
    if marker.exists() and json.loads(marker.read_text()) == settings:
        return folder
    run = load_run(run_dir)
    test = run.dataset.test
    n = scored_images(exp, len(test.labels))
    images, labels = test.images[:n].astype(np.float32), np.asarray(test.labels[:n])
    predict = invariance.make_predict_fn(run.model, run.dataset.mean, run.dataset.std)
    batch = int(exp.get("batch_size", 250))
    folder.mkdir(parents=True, exist_ok=True)
    for name, shifts in shift_plan(exp, n, sets).items():
        logits, probs = _outputs(predict, run.variables, images, shifts, batch)
        _save(folder, name, labels, probs, logits)
        np.save(folder / f"{name}_shifts.npy", shifts)
        if name == "azulay":
            mac = _mac_pairs(probs).astype(np.float16)
            np.savez(folder / "azulay_mac.npz", mac_pn=mac)
    if "dissimilar" in sets:
        _evaluate_dissimilar(run, predict, folder, batch)
    marker.write_text(json.dumps(settings))
    return folder


def _evaluate_dissimilar(run, predict, folder: Path, batch: int) -> None:
    """Kayhan & van Gemert's dissimilar test set (heights swapped) of the red-green data."""
    data = DatasetSpec.from_config(run.config.dataset)
    opts = dict(data.options, test_set="dissimilar")
    test = datasets.load("red_green", data_dir=data.data_dir, **opts).test
    images = test.images.astype(np.float32)
    zero = np.zeros((1, len(images), 2), np.int32)
    logits, probs = _outputs(predict, run.variables, images, zero, batch)
    _save(folder, "dissimilar", np.asarray(test.labels), probs, logits)


def load_set(run_dir: str | Path, name: str) -> dict[str, np.ndarray]:
    """The saved predictions of one shift set, plus 'shifts' [S, N, 2] (and 'mac' for azulay)."""
    folder = Path(run_dir) / DIRNAME
    out = predictions.load(folder / f"{name}.npz")
    shifts_path = folder / f"{name}_shifts.npy"
    if shifts_path.exists():
        out["shifts"] = np.load(shifts_path, allow_pickle=False)
    if name == "azulay":
        with np.load(folder / "azulay_mac.npz", allow_pickle=False) as f:
            out["mac"] = f["mac_pn"].astype(np.float32)
    return out
