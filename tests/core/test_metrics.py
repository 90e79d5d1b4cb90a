"""Metrics declared once (cnn_jax.metrics): the steps, the reduction and the report read it."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from cnn_jax import early_stopping, metrics, steps
from tests.core.test_steps import _setup


def test_steps_return_exactly_the_declared_accumulators():
    model, tx, state, batch = _setup()
    train = steps.make_train_step(model, tx, mean=(0.5,), std=(0.25,))
    _, train_metrics = jax.eval_shape(train, state, batch)
    evaluate = steps.make_eval_step(model, mean=(0.5,), std=(0.25,))
    eval_metrics, _ = jax.eval_shape(evaluate, state, batch)
    assert sorted(train_metrics) == sorted(a.name for a in metrics.TRAIN)
    assert sorted(eval_metrics) == sorted(a.name for a in metrics.EVAL)


def test_accumulate_reduces_each_metric_by_its_declared_reduction():
    a = {"loss_sum": 1.0, "correct": 2.0, "count": 4.0, "objective_sum": 1.5}
    a |= {"grad_norm": 3.0, "first_nonfinite_step": 7}
    b = {"loss_sum": 0.5, "correct": 1.0, "count": 4.0, "objective_sum": 0.25}
    b |= {"grad_norm": 9.0, "first_nonfinite_step": 5}
    out = jax.device_get(steps.accumulate(a, b))
    assert out == {
        "loss_sum": 1.5,
        "correct": 3.0,
        "count": 8.0,
        "objective_sum": 1.75,
        "grad_norm": 9.0,  # last
        "first_nonfinite_step": 5,  # min
    }


def test_an_undeclared_metric_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"^metric 'f1': not declared in cnn_jax.metrics"):
        steps.accumulate({"f1": 1.0}, {"f1": 2.0})
    with pytest.raises(ValueError, match=r"^metrics: a step returned \['correct'\]"):
        metrics.declared({"correct": 1.0}, metrics.EVAL)


def test_report_means_over_count_in_the_logged_order():
    host = {"loss_sum": np.array([2.0, 4.0]), "correct": np.array([1.0, 3.0])}
    host |= {"count": np.array([4.0, 4.0]), "grad_norm": np.array([0.5, 0.25])}
    host |= {"objective_sum": np.array([4.0, 8.0]), "first_nonfinite_step": np.array([9, 9])}
    per_seed = metrics.report(host)
    assert per_seed == [
        {"loss": 0.5, "accuracy": 0.25, "objective": 1.0, "grad_norm": 0.5},
        {"loss": 1.0, "accuracy": 0.75, "objective": 2.0, "grad_norm": 0.25},
    ]
    evaluated = metrics.report({"loss_sum": 1.0, "correct": 0.0, "count": 0.0})
    assert evaluated == [{"loss": 1.0, "accuracy": 0.0}]  # an empty count divides by 1


def test_empty_window_values_and_early_stopping_metrics_come_from_the_declaration():
    assert metrics.empty("count", (2,), np.float32).tolist() == [0.0, 0.0]
    assert metrics.empty("first_nonfinite_step", (), np.int32) == steps.NO_STEP
    assert early_stopping.METRICS == ("accuracy", "loss")
    tracker = early_stopping.EarlyStopping("loss", 2, 0.0, 1)
    assert tracker.update([1.0], 1).tolist() == [True]
    assert tracker.update([2.0], 2).tolist() == [False]  # lower loss is better
