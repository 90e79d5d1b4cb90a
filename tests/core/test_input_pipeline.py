"""Batching: deterministic order from (seed, epoch), resumable mid-epoch, padded eval batches."""

from __future__ import annotations

import numpy as np

from cnn_jax import input_pipeline
from cnn_jax.system import parallel


def _data(n=50):
    images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1)
    return images, np.arange(n, dtype=np.int32)


def test_epoch_order_is_a_function_of_seed_and_epoch():
    images, labels = _data()
    a = [b["label"] for b in input_pipeline.train_batches(images, labels, 8, seed=1, epoch=2)]
    b = [b["label"] for b in input_pipeline.train_batches(images, labels, 8, seed=1, epoch=2)]
    c = [b["label"] for b in input_pipeline.train_batches(images, labels, 8, seed=1, epoch=3)]
    assert len(a) == 6 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))
    assert len(set(np.concatenate(a).tolist())) == 48  # no repeats within an epoch


def test_resume_mid_epoch_yields_the_remaining_batches():
    images, labels = _data()
    full = list(input_pipeline.train_batches(images, labels, 8, seed=0, epoch=0))
    rest = list(input_pipeline.train_batches(images, labels, 8, seed=0, epoch=0, start_batch=4))
    assert len(rest) == 2
    for x, y in zip(full[4:], rest):
        np.testing.assert_array_equal(x["label"], y["label"])


def test_seeded_batches_stack_a_different_order_per_seed():
    images, labels = _data()
    batches = list(input_pipeline.seeded_train_batches(images, labels, 8, seeds=(0, 1), epoch=0))
    assert batches[0]["image"].shape == (2, 8, 1, 1, 1)
    assert not np.array_equal(batches[0]["label"][0], batches[0]["label"][1])


def test_eval_batches_cover_every_example_once_with_mask():
    images, labels = _data(21)
    seen = []
    for batch in input_pipeline.eval_batches(images, labels, 8):
        assert batch["image"].shape[0] == 8
        seen.extend(batch["label"][batch["mask"]].tolist())
    assert seen == list(range(21))


def test_prefetch_delivers_sharded_batches_in_order():
    images, labels = _data()
    mesh = parallel.make_mesh()
    batches = input_pipeline.train_batches(images, labels, 8, seed=0, epoch=0)
    got = [np.asarray(b["label"]) for b in input_pipeline.prefetch_to_device(batches, mesh)]
    want = [b["label"] for b in input_pipeline.train_batches(images, labels, 8, seed=0, epoch=0)]
    assert all(np.array_equal(x, y) for x, y in zip(got, want)) and len(got) == 6
