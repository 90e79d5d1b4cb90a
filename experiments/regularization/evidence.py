"""The regularizer study's evidence: one `Estimate` per (a cell, b cell), fresh or from a record.

Fresh runs: a cell's rows are (subset draw, seed) pairs scored on the same test images. When the
matched rows form a full draws x seeds grid, draws and seeds are two crossed random factors
(`cnn_jax.stats.crossed.draws_seeds_components`: three-way crossed ANOVA with the images,
Satterthwaite dof); otherwise the rows are one factor (`paired_estimate`). Records: the stored
comparison (delta, se, dof, rows) is read back (`estimate_from_record`), from the first analysis'
`comparisons` or from a re-analysed record's `claims`, so a re-analysis can be repeated.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnn_jax.stats.claims import Estimate
from cnn_jax.stats.crossed import draws_seeds_components
from cnn_jax.stats.evidence import estimate_from_record, paired_estimate

from .claims import Cell

DRAWS_SEEDS = "paired crossed t, draws x seeds x images (Satterthwaite)"
FLAT = "paired crossed t, (draw, seed) rows as one factor (not a full draws x seeds grid)"


def grid_shape(keys: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    """(draws, seeds) when the sorted (draw, seed) keys are a full grid, else None."""
    draws, seeds = sorted({k[0] for k in keys}), sorted({k[1] for k in keys})
    full = [(d, s) for d in draws for s in seeds]
    return (len(draws), len(seeds)) if list(keys) == full else None


def _rows_components(c: Mapping[str, np.ndarray], nd: int, ns: int, n: int) -> dict[str, float]:
    """The draws x seeds components as the seeds x images model of `cnn_jax.stats.power` with
    rows = draws x seeds as "seeds" (the same variance at this design)."""
    g = {k: float(c[f"var_{k}"][0]) for k in ("draw", "seed", "image", "draw_seed", "draw_image",
                                               "seed_image", "err")}  # fmt: skip
    g = {k: 0.0 if math.isnan(v) else v for k, v in g.items()}
    r = nd * ns
    rows = r * (g["draw"] / nd + g["seed"] / ns + g["draw_seed"] / r)
    resid = r * n * (g["draw_image"] / (nd * n) + g["seed_image"] / (ns * n) + g["err"] / (r * n))
    return {"seed": rows, "image": g["image"], "residual": resid}


def fresh_estimate(
    a_rn: np.ndarray,
    b_rn: np.ndarray,
    keys: Sequence[tuple[int, int]],
    reference_error: float | None,
) -> Estimate:
    """a - b on matched (draw, seed) rows x test images (rows sorted by (draw, seed))."""
    shape, rows = grid_shape(keys), [list(map(int, k)) for k in keys]
    if shape is None:
        e = paired_estimate(a_rn, b_rn, reference_error=reference_error)
        c = dict(e.components or {})  # `cnn_jax.stats.power` names the error term 'residual'
        c["residual"] = c.pop("err", c.get("residual"))
        return dataclasses.replace(e, method=FLAT, components=c, extra={"rows": rows})
    d = np.asarray(a_rn, np.float64) - np.asarray(b_rn, np.float64)
    nd, ns = shape
    c = draws_seeds_components(d.reshape(1, nd, ns, d.shape[1]))
    return Estimate(
        delta=float(d.mean()), se=math.sqrt(float(c["v"][0])), df=float(c["nu"][0]),
        n_seeds=d.shape[0], n_images=d.shape[1], method=DRAWS_SEEDS,
        pooled=bool(c["pooled"][0]), reference_error=reference_error,
        deviation=float(np.abs(d).max()), components=_rows_components(c, nd, ns, d.shape[1]),
        extra={"draws": nd, "seeds": ns, "rows": rows}, paired=d,
    )  # fmt: skip


def stored_comparisons(analysis: Mapping[str, Any]) -> dict[tuple[Cell, Cell], dict[str, Any]]:
    """{(a cell, b cell): stored comparison} of a record's analysis (first or re-analysed)."""
    out: dict[tuple[Cell, Cell], dict[str, Any]] = {}
    for c in analysis.get("comparisons", ()):
        key = (tuple(c["a"]), tuple(c["b"]))
        out[key] = dict(c["comparison"], extra={"rows": c.get("rows")})
    for claim in analysis.get("claims", ()):
        for budget, cells in claim["cells"].items():
            key = (tuple(cells["a"]), tuple(cells["b"]))
            out.setdefault(key, dict(claim["budgets"][budget]["estimate"]))
    return out


def record_estimate(stored: Mapping[str, Any], reference_error: float | None) -> Estimate:
    """An Estimate from one stored comparison, keeping its rows, components and pooling."""
    e = estimate_from_record(stored, reference_error=reference_error)
    pooled = e.pooled if stored.get("pooled") is None else bool(stored["pooled"])
    return dataclasses.replace(
        e, pooled=pooled, components=stored.get("components"), extra=stored.get("extra") or {}
    )


def from_record(stored: Mapping[tuple[Cell, Cell], Mapping[str, Any]]):
    """The (a, b, reference_error) -> Estimate function of a record's stored comparisons;
    one line naming a comparison the record lacks."""

    def estimate(a: Cell, b: Cell, reference_error: float | None) -> Estimate:
        key = (tuple(a), tuple(b))
        if key not in stored:
            raise ValueError(f"record: no stored comparison of {a} vs {b}; rerun the study")
        return record_estimate(stored[key], reference_error)

    return estimate
