"""The shifted predictions keep the logits beside the labels (float16), so calibration and
confidence can be analysed afterwards; the softmax-based numbers are unchanged."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments.invariance import evaluate


def _predict(variables, x_bhwc):
    """A fixed linear 'net': 3 logits from the image's pixel sums (no training)."""
    flat = x_bhwc.reshape(x_bhwc.shape[0], -1)
    return flat[:, :3] * variables + jnp.arange(3.0), None


def test_shifted_predictions_keep_their_logits(tmp_path: Path):
    rng = np.random.default_rng(0)
    images = rng.random((5, 6, 6, 1)).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1])
    shifts = np.zeros((2, 5, 2), np.int32)
    shifts[1, :, 1] = 1
    logits, probs = evaluate._outputs(_predict, 2.0, images, shifts, batch=4)
    assert logits.shape == probs.shape == (2, 5, 3)
    np.testing.assert_allclose(np.asarray(jax.nn.softmax(logits, -1)), probs, rtol=1e-6)
    folder = tmp_path / evaluate.DIRNAME
    folder.mkdir()
    evaluate._save(folder, "zhang", labels, probs, logits)
    saved = evaluate.load_set(tmp_path, "zhang")
    assert saved["logits"].dtype == np.float16 and saved["logits"].shape == (2, 5, 3)
    np.testing.assert_allclose(saved["logits"], logits, rtol=1e-3)
    np.testing.assert_array_equal(saved["top1"], probs.argmax(-1))
