"""Tables of the memorization study: every condition's time to fit, fit and test accuracy, and
Zhang et al. 2017's CIFAR-10 figures beside ours (pure functions of the results dict)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cnn_jax.outputs.claims_report import claims_markdown
from cnn_jax.outputs.markdown import markdown_table

from .claims import BUDGET
from .conditions import describe, split_name

# Zhang et al. 2017, Table 1 (CIFAR-10), train / test accuracy %, from ../shared/literature.md
# section B2: a third-party transcription, four transcriptions agree [T x4]; no time to fit is
# given there (their Fig. 1 curves: not transcribed, NF).
ZHANG_TABLE1 = (
    ("Inception", "true labels, crop + weight decay", 100.0, 89.05),
    ("Inception", "true labels, no regularizer", 100.0, 85.75),
    ("Inception", "random labels", 100.0, 9.78),
    ("AlexNet", "true labels, crop + weight decay", 99.90, 81.22),
    ("AlexNet", "true labels, no regularizer", 100.0, 76.07),
    ("AlexNet", "random labels", 99.82, 9.86),
    ("MLP 3x512", "true labels, weight decay", 100.0, 53.35),
    ("MLP 3x512", "random labels", 100.0, 10.48),
)


def _epochs(c: Mapping[str, list], cap: float) -> str:
    """'12 14 >80 15': per seed, '>' cap where the run never fit."""
    return " ".join(f"{e:g}" if e is not None else f">{cap:g}" for e in c["epochs"])


def _pct(values: list[float]) -> str:
    v = 100 * np.asarray(values, np.float64)
    return f"{v.mean():.2f} ({v.min():.2f}-{v.max():.2f})"


def conditions_table(results: Mapping[str, Any]) -> str:
    """Per condition: what it is (`conditions.describe`, with what its regularizer sets), epochs
    to fit per seed, runs that fit, KM median, eval-mode training accuracy, test accuracy on
    the true labels (mean over seeds, range)."""
    thr = results["fit_threshold"]
    regularizers = ((results.get("config") or {}).get("experiment") or {}).get("regularizers")
    heads = ["data", "regularizer", "description", f"epochs to {thr:.0%} train acc. (per seed)",
             "fit", "KM median epochs", "train acc. % (eval)",
             "test acc. % (true labels)"]  # fmt: skip
    rows = []
    for variant, c in results["conditions"].items():
        data, reg = split_name(variant)
        cap = max(c["horizon_epochs"])
        fit = sum(e is not None for e in c["epochs"])
        med = c.get("km_median")
        rows.append([data.replace("_", " "), reg, describe(variant, regularizers), _epochs(c, cap),
                     f"{fit}/{len(c['epochs'])}",
                     "not reached" if med is None else f"{med:g}", _pct(c["train_accuracy"]),
                     _pct(c["test_accuracy"])])  # fmt: skip
    return markdown_table(heads, rows)


def zhang_table() -> str:
    """Zhang et al. 2017 Table 1 rows (CIFAR-10), for comparison with ours."""
    heads = ["model (CIFAR-10)", "setting", "train acc. %", "test acc. %"]
    rows = [[m, s, f"{tr:.2f}", f"{te:.2f}"] for m, s, tr, te in ZHANG_TABLE1]
    return markdown_table(heads, rows)


def readme_markdown(results: Mapping[str, Any]) -> str:
    """The record's readme: design line, conditions, claims, Zhang's figures."""
    n_seeds, n = len(results["seeds"]), results["train_images"]
    design = (
        f"**Memorization** (Zhang et al. 2017) on {results['dataset']}: {n:,} "
        f"training images, {n_seeds} seeds, epoch cap {results['epochs']}, fit = "
        f"{results['fit_threshold']:.0%} epoch-mean training accuracy (training mode); "
        f"{results['steps_per_epoch']} steps per epoch; wall "
        f"{results['wall_time_sec'] / 60:.1f} min."
    )
    return "\n".join([
        design, "", conditions_table(results), "", claims_markdown(results["claims"], [BUDGET]),
        "", "**Zhang et al. 2017, Table 1 (CIFAR-10)** beside ours (third-party transcription, "
        "four agree; their time to fit is not transcribed):", "", zhang_table(),
    ])  # fmt: skip
