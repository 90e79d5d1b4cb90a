"""Border information: the test digits redrawn so that their ink touches the canvas edge.

The seed notes claim padding "can help retain information by conserving data at the borders".
A VALID conv sees a border pixel from fewer output positions than an interior one; SAME zero
padding and CIRCULAR padding give every pixel the same number of views. The test: nets
trained on digits at random canvas positions are scored on the same test digits (a) with
their ink bounding box touching one edge of the canvas (top, bottom, left, right in turn, at
a fixed random offset along the edge) and (b) centred; per-image predictions are saved as the
extra splits `test_edge` and `test_center` of each run (`cnn_jax.outputs.predictions`), so variants
compare pairwise on the same images.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.datasets import digits
from cnn_jax.outputs import predictions
from cnn_jax.runs.load import load_run
from cnn_jax.steps import normalize

EDGES = ("top", "bottom", "left", "right")
PLACEMENT_SEED = 0


def ink_box(image_hw: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) inclusive bounds of the pixels > 0."""
    rows, cols = np.nonzero(image_hw)
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


def place_at_edge(image_hw: np.ndarray, canvas: int, edge: str, rng: np.random.Generator):
    """The digit on a blank canvas [canvas, canvas] with its ink touching `edge`."""
    top, bottom, left, right = ink_box(image_hw)
    ink = image_hw[top : bottom + 1, left : right + 1]
    h, w = ink.shape
    out = np.zeros((canvas, canvas), image_hw.dtype)
    row = int(rng.integers(0, canvas - h + 1))
    col = int(rng.integers(0, canvas - w + 1))
    row = {"top": 0, "bottom": canvas - h}.get(edge, row)
    col = {"left": 0, "right": canvas - w}.get(edge, col)
    out[row : row + h, col : col + w] = ink
    return out


def test_sets(canvas: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'test_edge' | 'test_center': (uint8 [N, canvas, canvas, 1], labels [N])}: the test split."""
    images, labels = digits.raw_digits()
    idx = digits.split_indices(labels)["test"]
    rng = np.random.default_rng(PLACEMENT_SEED)
    edge = [place_at_edge(images[i], canvas, EDGES[k % 4], rng) for k, i in enumerate(idx)]
    center = digits.place(images[idx], canvas, 1, "center")
    return {
        "test_edge": (np.stack(edge)[..., None], labels[idx]),
        "test_center": (center, labels[idx]),
    }


def touches_border(images_nhwc: np.ndarray) -> np.ndarray:
    """[N] bool: some ink on the outermost row or column."""
    x = images_nhwc[..., 0] > 0
    return x[:, 0].any(1) | x[:, -1].any(1) | x[:, :, 0].any(1) | x[:, :, -1].any(1)


def score_run(run_dir: str | Path, sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Evaluates one trained seed on each extra test set; saves its per-image predictions."""
    run = load_run(run_dir)
    if not np.array_equal(run.dataset.test.labels, sets["test_center"][1]):
        raise ValueError(f"dataset: {run_dir} was not trained on the digits split; allowed: digits")
    apply = jax.jit(partial(run.model.apply, train=False))
    out = {}
    for split, (images, labels) in sets.items():
        x_bhwc = normalize(jnp.asarray(images), run.dataset.mean, run.dataset.std)
        logits, _ = apply(run.variables, x_bhwc)
        prob = np.asarray(jax.nn.softmax(logits, axis=-1))
        top1 = prob.argmax(-1)
        p_correct = prob[np.arange(len(labels)), labels]
        predictions.save(
            predictions.path_of(run_dir, split), labels_n=labels, top1_n=top1, p_correct_n=p_correct
        )
        out[split] = float(np.mean(top1 == labels))
    return out
