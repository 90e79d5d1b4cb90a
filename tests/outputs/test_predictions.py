"""Per-image predictions keep the logits (float16) beside the labels; older files still load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnn_jax import run_results
from cnn_jax.outputs import predictions


def _outputs(n: int = 5, classes: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    logits = np.random.default_rng(seed).normal(size=(n, classes)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = np.arange(n) % classes
    p_correct = probs[np.arange(n), labels]
    return {"labels": labels, "top1": logits.argmax(-1), "p_correct": p_correct, "logits": logits}


def test_logits_are_saved_as_float16_beside_the_labels(tmp_path: Path):
    out = _outputs()
    path = tmp_path / "test.npz"
    predictions.save(path, labels_n=out["labels"], top1_n=out["top1"],
                     p_correct_n=out["p_correct"], logits_nc=out["logits"])  # fmt: skip
    loaded = predictions.load(path)
    assert loaded["logits"].dtype == np.float16 and loaded["logits"].shape == (5, 3)
    np.testing.assert_allclose(loaded["logits"], out["logits"], atol=2e-3)
    assert np.array_equal(loaded["labels"], out["labels"])


def test_huge_logits_stay_finite_and_a_wrong_shape_is_one_line(tmp_path: Path):
    out = _outputs()
    big = out["logits"] * 1e6
    predictions.save(tmp_path / "a.npz", labels_n=out["labels"], top1_n=out["top1"],
                     p_correct_n=out["p_correct"], logits_nc=big)  # fmt: skip
    assert np.isfinite(predictions.load(tmp_path / "a.npz")["logits"]).all()
    with pytest.raises(ValueError, match=r"^predictions: logits \(4, 3\); allowed"):
        predictions.save(tmp_path / "b.npz", labels_n=out["labels"], top1_n=out["top1"],
                         p_correct_n=out["p_correct"], logits_nc=big[:4])  # fmt: skip


def test_a_file_without_logits_still_loads(tmp_path: Path):
    out = _outputs()
    path = predictions.path_of(tmp_path / "run", "test")  # as written before logits were kept
    path.parent.mkdir(parents=True)
    np.savez(path, labels=out["labels"].astype(np.uint8), top1=out["top1"].astype(np.uint8),
             correct=(out["top1"] == out["labels"]).astype(np.uint8),
             p_correct=out["p_correct"].astype(np.float16))  # fmt: skip
    loaded = predictions.load(path)
    assert set(loaded) == set(predictions.KEYS)
    assert predictions.correct_matrix([tmp_path / "run"]).shape == (1, 5)


def test_a_run_writes_the_logits_of_each_member(tmp_path: Path):
    one, two = _outputs(seed=1), _outputs(seed=2)
    per_example = {"test": {k: np.stack([one[k], two[k]]) for k in ("top1", "p_correct", "logits")}}
    dirs = [tmp_path / "seed_0", tmp_path / "seed_1"]
    run_results.write_predictions(dirs, {"test": one["labels"]}, per_example)
    for member, out in zip(dirs, (one, two)):
        logits = predictions.load(predictions.path_of(member, "test"))["logits"]
        np.testing.assert_allclose(logits, out["logits"], atol=2e-3)
    single = {"test": {k: one[k] for k in ("top1", "p_correct", "logits")}}
    run_results.write_predictions([tmp_path / "one"], {"test": one["labels"]}, single)
    assert predictions.load(predictions.path_of(tmp_path / "one", "test"))["logits"].shape == (5, 3)


def test_a_diverged_members_predictions_are_refused_in_one_line(tmp_path: Path):
    """A diverged member writes no predictions: asking for them names the run and the step
    rather than a missing file to retrain."""
    member = tmp_path / "bad" / "seed_0"
    member.mkdir(parents=True)
    diverged = {"seed": 0, "test_accuracy": None, "diverged": {"step": 3, "what": "loss"}}
    (member / "results.json").write_text(json.dumps(diverged))
    with pytest.raises(ValueError, match=r"^predictions: .*bad/seed_0 diverged at step 3 ") as e:
        predictions.correct_matrix([member])
    assert "\n" not in str(e.value)
