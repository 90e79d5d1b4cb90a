"""Translation-invariance metrics from saved per-image predictions: intervals, paired tests.

Reads only `<run_dir>/shifted/*.npz` (`invariance_eval`) and the trainer's
`<run_dir>/predictions/test.npz`; nothing is retrained or re-evaluated. Per (seed, image):

- accuracy_unshifted: correct at shift (0, 0);
- accuracy_shifted: mean correctness over Zhang's two random shifts (uniform over the grid,
  so its mean estimates the mean accuracy over the shift grid);
- drop: accuracy_unshifted - accuracy_shifted of the same image, the robustness that
  accuracy_shifted mixes with accuracy (a less accurate net can drop less);
- consistency: 1[top-1 equal at the two random shifts] (Zhang 2019, Sec. 4.1); per pair of
  nets also on the images both classify correctly unshifted (`pair_scores`);
- p_top1_change: fraction of the 8 diagonal 1-pixel steps whose top-1 changes (Azulay & Weiss
  2019's "jaggedness"), and mac: mean |delta p| of the first shift's top-1 class (their MAC);
- per distance d: accuracy at (0, +-d) and consistency with the unshifted top-1 (seed's claim);
- red-green: accuracy on the similar and the dissimilar test set (Kayhan & van Gemert 2020).

Each metric gets `stats.hierarchical_bootstrap` (seeds, then images); the claims on these
scores are declared in `claims` and judged by the engine (`evidence`), not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnn_jax import stats
from cnn_jax.outputs import predictions

from . import evaluate

METRICS = ("accuracy_unshifted", "accuracy_shifted", "drop", "consistency", "p_top1_change", "mac")
# Pair quantities: a per-variant metric kept on the images both nets classify correctly.
BOTH_CORRECT = {"consistency_both_correct": "consistency"}


def _stack(rows: Sequence[Mapping[str, Any]], name: str) -> list[dict[str, np.ndarray]]:
    return [evaluate.load_set(r["run_dir"], name) for r in rows]


def shift_scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Metric -> [seeds, images] per-image scores of one variant's seeds (rows)."""
    zhang, azulay = _stack(rows, "zhang"), _stack(rows, "azulay")
    centre = evaluate.AZULAY_OFFSETS.index(0)
    out = {
        "accuracy_unshifted": np.stack([a["correct"][centre] for a in azulay]),
        "accuracy_shifted": np.stack([z["correct"].mean(0) for z in zhang]),
        "consistency": np.stack([(z["top1"][0] == z["top1"][1]) for z in zhang]),
        "p_top1_change": np.stack([(a["top1"][1:] != a["top1"][:-1]).mean(0) for a in azulay]),
        "mac": np.stack([a["mac"].mean(0) for a in azulay]),
    }
    out = {k: v.astype(np.float64) for k, v in out.items()}
    out["drop"] = out["accuracy_unshifted"] - out["accuracy_shifted"]
    return out


def both_correct(a_unshifted_sn: np.ndarray, b_unshifted_sn: np.ndarray) -> np.ndarray:
    """Bool [images]: correct unshifted for both nets in every seed.

    The crossed seeds x images test needs one image set for every seed (a complete matrix, no
    missing cells), so the set is the images both nets get right in all seeds, not a per-seed
    set; it is conditioned on unshifted accuracy only, never on the consistency it scores.
    """
    return (a_unshifted_sn.min(0) > 0.5) & (b_unshifted_sn.min(0) > 0.5)


def pair_scores(scores: Mapping[str, Mapping[str, np.ndarray]], a: tuple[str, str],
                b: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """[seeds, images] scores of arms a and b ((variant, metric) each); a `BOTH_CORRECT`
    quantity keeps the images `both_correct` for the two variants."""
    (va, ma), (vb, mb) = a, b
    if ma not in BOTH_CORRECT:
        return scores[va][ma], scores[vb][mb]
    keep = both_correct(scores[va]["accuracy_unshifted"], scores[vb]["accuracy_unshifted"])
    return scores[va][BOTH_CORRECT[ma]][:, keep], scores[vb][BOTH_CORRECT[mb]][:, keep]


def distance_scores(rows: Sequence[Mapping[str, Any]], name: str = "distance") -> dict[str, Any]:
    """{'distances': [D], 'accuracy': [seeds, D, images], 'consistency': [seeds, D, images]}:
    accuracy at (0, +-d) averaged over the two signs; agreement with the unshifted top-1
    (`name`: the 'distance' or the 'learned' set)."""
    sets = _stack(rows, name)
    dx = sets[0]["shifts"][:, 0, 1]
    distances = np.unique(np.abs(dx))
    acc, con = [], []
    for s in sets:
        zero = s["top1"][dx == 0][0]
        acc.append([s["correct"][np.abs(dx) == d].mean(0) for d in distances])
        con.append([(s["top1"][np.abs(dx) == d] == zero).mean(0) for d in distances])
    return {"distances": distances, "accuracy": np.array(acc, float), "consistency": np.array(con)}


def red_green_scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """{'similar', 'dissimilar'}: [seeds, images] correctness on Kayhan's two test sets."""
    similar = predictions.correct_matrix([r["run_dir"] for r in rows], "test")
    dissimilar = np.stack(
        [evaluate.load_set(r["run_dir"], "dissimilar")["correct"][0] for r in rows]
    )
    return {"similar": similar.astype(float), "dissimilar": dissimilar.astype(float)}


def intervals(scores: Mapping[str, np.ndarray], seed: int = 0) -> dict[str, stats.Interval]:
    """Metric -> two-level bootstrap interval of its mean (seeds, then images)."""
    return {k: stats.hierarchical_bootstrap(v, seed=seed) for k, v in scores.items()}


def _halving_1d(above_d: np.ndarray, distances: np.ndarray) -> float:
    if above_d[0] <= 0:
        return 0.0  # at chance already unshifted
    half = above_d[0] / 2
    below = np.nonzero(above_d <= half)[0]
    if not below.size:
        return float("inf")
    j = int(below[0])  # >= 1, since above_d[0] > half
    y0, y1 = above_d[j - 1], above_d[j]
    return float(distances[j - 1] + (y0 - half) / (y0 - y1) * (distances[j] - distances[j - 1]))


def halving_distance(curves: np.ndarray, distances: np.ndarray, chance: float, axis: int = 0):
    """Distance at which above-chance accuracy falls to half its unshifted value.

    `curves` [..., D] accuracy curves, averaged over `axis` first (the seeds); linear
    interpolation between grid distances; inf when it never halves within the grid.
    """
    mean = np.asarray(curves, float).mean(axis=axis) - chance
    flat = mean.reshape(-1, mean.shape[-1])
    out = np.array([_halving_1d(row, np.asarray(distances, float)) for row in flat])
    out = out.reshape(mean.shape[:-1])
    return float(out) if out.ndim == 0 else out


def halving_interval(acc_sdn: np.ndarray, distances: np.ndarray, chance: float) -> stats.Interval:
    """Halving distance of the seed-mean curve, percentile bootstrap over seeds."""
    per_seed = acc_sdn.mean(-1)  # [seeds, D]
    stat = lambda x, axis: halving_distance(x, distances, chance, axis=axis)
    if len(per_seed) < 2:
        value = stat(per_seed, 0)
        return stats.Interval(value, value, value, 0.95, "single seed")
    return stats.percentile_bootstrap(per_seed, stat, n_boot=1000)
