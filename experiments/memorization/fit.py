"""Time to fit and the fit itself, per run: epochs until the training accuracy reaches the
study's threshold (censored when it never does), and per-image correctness on the (possibly
random) training labels.

Time: each logged training accuracy is the mean over one epoch of training-mode batches
(`train.log_every_steps` = steps per epoch), with dropout and augmentation active, so a
regularized run is timed on what it trains on; the first epoch whose mean reaches
`experiment.fit_threshold` is the time to fit. A run that never reaches it is right-censored
at its last epoch (`cnn_jax.stats.censored`). Fit: the final parameters scored on the training
split in evaluation mode (no dropout, no augmentation), per image, saved as the run's
`predictions/train.npz` (Zhang et al. 2017 report this training accuracy, Table 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.outputs import predictions
from cnn_jax.outputs.writers import read_metrics
from cnn_jax.runs.load import load_run
from cnn_jax.steps import normalize

TRAIN = "train"
CHUNK = 1024
FIELDS = ("seed", "steps", "epochs", "horizon", "train_accuracy", "test_accuracy", "run_dir")


def epoch_accuracy(run_dir: str | Path) -> tuple[list[int], list[float]]:
    """(steps, windowed training accuracy) of every logged training window of one run."""
    rows = [r for r in read_metrics(run_dir) if r.get("split") == "train"]
    return [int(r["step"]) for r in rows], [float(r["accuracy"]) for r in rows]


def time_to_fit(run_dir: str | Path, threshold: float, steps_per_epoch: int) -> dict[str, Any]:
    """{'steps', 'epochs' (None: never fit), 'horizon' (total steps), 'final_train_window'}."""
    steps, acc = epoch_accuracy(run_dir)
    if not steps:
        raise ValueError(f"{run_dir}: no logged training accuracy; rerun the study")
    hit = next((i for i, a in enumerate(acc) if a >= threshold), None)
    at = None if hit is None else steps[hit]
    return {
        "steps": at,
        "epochs": None if at is None else at / steps_per_epoch,
        "horizon": steps[-1],
        "final_train_window": acc[-1],
    }


def score_train(run_dir: str | Path) -> float:
    """Scores one run's final parameters on its training split (its own labels, random ones
    included) per image; saves predictions/train.npz once; returns the accuracy."""
    path = predictions.path_of(run_dir, TRAIN)
    if path.exists():
        return float(predictions.correct_matrix([run_dir], TRAIN).mean())
    run = load_run(run_dir)
    apply = jax.jit(partial(run.model.apply, train=False))
    images, labels = run.dataset.train.images, run.dataset.train.labels
    probs = []
    for start in range(0, len(labels), CHUNK):
        x = normalize(jnp.asarray(images[start : start + CHUNK]), run.dataset.mean, run.dataset.std)
        logits, _ = apply(run.variables, x)
        probs.append(np.asarray(jax.nn.softmax(logits, axis=-1)))
    prob = np.concatenate(probs)
    top1 = prob.argmax(-1)
    p_correct = prob[np.arange(len(labels)), labels]
    predictions.save(path, labels_n=labels, top1_n=top1, p_correct_n=p_correct)
    return float(np.mean(top1 == labels))


def per_condition(
    rows: Sequence[Mapping[str, Any]], threshold: float, steps_per_epoch: int
) -> dict[str, dict[str, list]]:
    """{variant: per-seed lists: seed, steps, epochs, horizon, train (eval-mode) accuracy,
    test accuracy, run_dir}, seeds in order."""
    out: dict[str, dict[str, list]] = {}
    for row in sorted(rows, key=lambda r: (r["variant"], int(r["seed"]))):
        t = time_to_fit(row["run_dir"], threshold, steps_per_epoch)
        c = out.setdefault(row["variant"], {k: [] for k in FIELDS})
        c["seed"].append(int(row["seed"]))
        for k in ("steps", "epochs", "horizon"):
            c[k].append(t[k])
        c["train_accuracy"].append(score_train(row["run_dir"]))
        c["test_accuracy"].append(float(row["results"]["final"]["test"]["accuracy"]))
        c["run_dir"].append(str(row["run_dir"]))
    return out
