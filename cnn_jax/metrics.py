"""Training and evaluation metrics, declared once: each name and how it is reduced.

A step returns accumulators (`ACCUMULATORS`), device arrays reduced over the steps of a
logging window or an evaluation pass without a host sync: summed, the last value kept, or
the minimum. `report` turns reduced accumulators into the logged values (`LOGGED`, the keys
of metrics.jsonl records and of results.json `final`): a mean over the examples counted,
or the accumulator as it is. The train split's records add the host-side `WINDOW_FIELDS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

NO_STEP = int(np.iinfo(np.int32).max)  # "no non-finite step seen"
REDUCTIONS = {
    "sum": lambda total, new: total + new,
    "last": lambda total, new: new,
    "min": jnp.minimum,
}


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """A value a step returns, reduced over steps by `reduction` (a key of REDUCTIONS)."""

    name: str
    reduction: str
    empty: int | float = 0  # its value in an empty window


@dataclasses.dataclass(frozen=True)
class Logged:
    """A logged value: `source` / count ("mean" over the examples) or `source` ("last")."""

    name: str
    source: str
    reduction: str
    better: str | None = None  # "max" | "min": a validation metric early stopping can watch


EVAL = (
    Accumulator("loss_sum", "sum"),
    Accumulator("correct", "sum"),
    Accumulator("count", "sum"),  # examples (the mask's sum): the mean's denominator
)
TRAIN = EVAL + (
    Accumulator("objective_sum", "sum"),  # data loss + weight penalty, times count
    Accumulator("grad_norm", "last"),
    Accumulator("first_nonfinite_step", "min", NO_STEP),
)
ACCUMULATORS = {a.name: a for a in TRAIN}
LOGGED = (  # in this order in every metrics.jsonl record
    Logged("loss", "loss_sum", "mean", better="min"),
    Logged("accuracy", "correct", "mean", better="max"),
    Logged("objective", "objective_sum", "mean"),
    Logged("grad_norm", "grad_norm", "last"),
)
LOGGED_BY_NAME = {m.name: m for m in LOGGED}
# Train records only, per logging window (`cnn_jax.train`): the schedule's learning rate at
# the window's last step, and the window's counted images over its wall-clock seconds.
WINDOW_FIELDS = ("learning_rate", "images_per_sec")
HEADLINE = "accuracy"  # results.json `test_accuracy` is the test split's value of this
EARLY_STOPPING = tuple(sorted(m.name for m in LOGGED if m.better))


def accumulator(name: str) -> Accumulator:
    """The declaration of a step's output `name`; ValueError in one line when undeclared."""
    if name not in ACCUMULATORS:
        raise ValueError(
            f"metric {name!r}: not declared in cnn_jax.metrics; declared: {', '.join(ACCUMULATORS)}"
        )
    return ACCUMULATORS[name]


def declared(values: Mapping[str, Any], wanted: Sequence[Accumulator]) -> dict[str, Any]:
    """`values` in the declared order of `wanted`; ValueError unless the names match."""
    names = [a.name for a in wanted]
    if sorted(values) != sorted(names):
        raise ValueError(f"metrics: a step returned {sorted(values)}; declared: {names}")
    return {name: values[name] for name in names}


def reduce(total: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """`total` and one more step's `new` accumulators, each by its declared reduction."""
    return {k: REDUCTIONS[accumulator(k).reduction](total[k], new[k]) for k in new}


def empty(name: str, shape: Sequence[int], dtype: Any) -> np.ndarray:
    """An empty window's value of accumulator `name` (host array)."""
    return np.full(shape, accumulator(name).empty, dtype)


def report(host: Mapping[str, Any]) -> list[dict[str, float]]:
    """Reduced accumulators (host arrays, [] or [K]) -> the logged values, one dict per seed."""
    count = np.atleast_1d(np.maximum(host["count"], 1.0))
    out = {}
    for m in LOGGED:
        if m.source in host:
            value = np.atleast_1d(host[m.source])
            out[m.name] = value / count if m.reduction == "mean" else value
    return [{k: float(v[i]) for k, v in out.items()} for i in range(len(count))]
