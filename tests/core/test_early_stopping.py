"""Early stopping bookkeeping and per-seed selection of the best parameters."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.early_stopping import EarlyStopping, select_where


def test_stops_after_patience_non_improving_evaluations():
    es = EarlyStopping("accuracy", patience=2, min_delta=0.01, num_seeds=1)
    history = [0.5, 0.6, 0.605, 0.59, 0.7]
    stopped_at = None
    for epoch, value in enumerate(history, start=1):
        es.update([value], epoch)
        if es.all_stopped:
            stopped_at = epoch
            break
    assert stopped_at == 4  # 0.605 is within min_delta of 0.6, then 0.59: two bad evaluations
    assert es.state["best_epoch"][0] == 2 and es.state["best"][0] == pytest.approx(0.6)


def test_loss_mode_and_independent_seeds():
    es = EarlyStopping("loss", patience=1, min_delta=0.0, num_seeds=2)
    np.testing.assert_array_equal(es.update([1.0, 1.0], 1), [True, True])
    np.testing.assert_array_equal(es.update([0.5, 1.2], 2), [True, False])
    assert list(es.stopped) == [False, True] and not es.all_stopped
    # a stopped seed no longer improves or counts
    np.testing.assert_array_equal(es.update([0.6, 0.1], 3), [False, False])
    assert es.all_stopped and list(es.state["best_epoch"]) == [2, 1]


def test_select_where_picks_per_seed():
    new = {"w": jnp.ones((2, 3)), "b": jnp.ones((2,))}
    old = {"w": jnp.zeros((2, 3)), "b": jnp.zeros((2,))}
    out = select_where(np.array([True, False]), new, old)
    np.testing.assert_array_equal(out["w"], [[1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(out["b"], [1, 0])
    single = select_where(np.array(True), {"w": jnp.ones(3)}, {"w": jnp.zeros(3)})
    np.testing.assert_array_equal(single["w"], [1, 1, 1])


@pytest.mark.parametrize(
    "args,match",
    [
        (("auc", 2, 0.0), r"early_stopping.metric: unknown value 'auc'"),
        (("loss", 0, 0.0), r"early_stopping.patience: 0"),
        (("loss", 2, -1.0), r"early_stopping.min_delta: -1.0"),
    ],
)
def test_bad_early_stopping_config(args, match):
    with pytest.raises(ValueError, match=match):
        EarlyStopping(*args, num_seeds=1)
