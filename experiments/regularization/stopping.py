"""Whether early stopping really stopped a 'converged' run, and the stopping epochs per cell.

A run is *capped* when early stopping never triggered: training ended at the epoch cap with
fewer than `patience` non-improving evaluations after the best one (Prechelt 1998: the stopping
criterion, not the budget, must end a run for its result to be called converged). The trainer
records `stopped_early` per seed; for records made before it did, a run is capped when its best
epoch lies within `patience` epochs of the cap (best_epoch + patience > cap, evaluations every
epoch).

Capped runs are kept in the converged comparisons and marked there, not excluded: dropping them
would drop exactly the slow learners (informative censoring: the rows left favour whichever
variant converges fast) and break the draws x seeds pairing, so each converged claim instead
states how many of its rows hit the cap, and the stopping epochs are tabled per cell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnn_jax.early_stopping import EarlyStoppingSpec
from cnn_jax.outputs.markdown import markdown_table

from .variants import describe

CONVERGED = "converged"


def patience_of(config: Mapping[str, Any]) -> int:
    """The study's early-stopping patience (the trainer's default where the section is absent)."""
    section = config.get("early_stopping") or {}
    return int(section.get("patience", EarlyStoppingSpec.patience))


def capped(
    best_epoch: int | None, cap: int | None, patience: int, stopped_early: bool | None = None
) -> bool | None:
    """Whether a run ended at the cap without early stopping (None: no early stopping ran)."""
    if stopped_early is not None:
        return not stopped_early
    if best_epoch is None or cap is None:
        return None
    return int(best_epoch) + int(patience) > int(cap)


def cell_stopping(results: Sequence[Mapping[str, Any]], patience: int) -> dict[str, Any]:
    """The stopping epochs of one converged cell's runs (their results.json or summaries)."""
    best = [r.get("best_epoch") for r in results]
    caps = [r.get("epochs", r.get("epochs_max")) for r in results]
    flags = [capped(b, c, patience, r.get("stopped_early")) for b, c, r in zip(best, caps, results)]
    return {
        "best_epochs": [None if b is None else int(b) for b in best],
        "capped_runs": [bool(f) for f in flags],
        "capped": sum(bool(f) for f in flags),
        "cap": max((int(c) for c in caps if c is not None), default=None),
        "patience": int(patience),
    }


def fill_levels(
    levels: Sequence[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]], patience: int
) -> list[dict[str, Any]]:
    """Levels of a record made before stopping was stored: each converged level gets
    `cell_stopping` of its run summaries (results.json 'runs')."""
    out = []
    for lv in levels:
        lv = dict(lv)
        if lv["mode"] == CONVERGED and "stopping" not in lv:
            mine = [r for r in runs if _cell_of(r) == (lv["setting"], lv["n"], lv["mode"])]
            lv["stopping"] = cell_stopping(mine, patience)
        out.append(lv)
    return out


def _cell_of(run: Mapping[str, Any]) -> tuple[str, str, str]:
    return run["key"].split("/")[1], str(run["n"]), run["mode"]


def capped_note(levels: Sequence[Mapping[str, Any]], cells: Mapping[str, Any]) -> str | None:
    """'rests on capped runs: a 3/4, b 0/4 never stopped early' for a claim's converged cells,
    None when no row of either hit the cap (or the claim has no converged budget)."""
    pair = cells.get(CONVERGED)
    if pair is None:
        return None
    stops = {(lv["setting"], lv["n"], lv["mode"]): lv.get("stopping") for lv in levels}
    counts = []
    for side in ("a", "b"):
        s = stops.get(tuple(pair[side]))
        if s is None:
            return None
        counts.append((side, s["capped"], len(s["capped_runs"])))
    if not any(k for _, k, _ in counts):
        return None
    listed = ", ".join(f"{side} {k}/{n}" for side, k, n in counts)
    return f"converged rests on capped runs: {listed} never stopped early"


def annotate(claims: Sequence[Mapping[str, Any]], levels: Sequence[Mapping[str, Any]]) -> list:
    """Each claim dict with 'capped' (the `capped_note`, or None) and the note in its 'what'."""
    out = []
    for c in claims:
        note = capped_note(levels, c.get("cells", {}))
        what = c.get("what") or ""
        if note:
            what = f"{what}; {note}" if what else note
        out.append({**c, "what": what, "capped": note})
    return out


def stopping_table(levels: Sequence[Mapping[str, Any]]) -> str:
    """Per converged cell: the cap, the stopping (best) epochs, their median and range, and how
    many runs were capped (marked * in the list)."""
    heads = ["setting", "description", "n", "rows", "epoch cap", "patience",
             "stopping epochs (* capped)", "median [min, max]", "capped"]  # fmt: skip
    rows = []
    for lv in levels:
        s = lv.get("stopping")
        if lv["mode"] != CONVERGED or not s:
            continue
        pairs = sorted((b, c) for b, c in zip(s["best_epochs"], s["capped_runs"]) if b is not None)
        listed = " ".join(f"{b}{'*' if c else ''}" for b, c in pairs) or "-"
        epochs = [b for b, _ in pairs]
        spread = f"{np.median(epochs):g} [{min(epochs)}, {max(epochs)}]" if epochs else "-"
        runs = len(s["capped_runs"])
        name = lv["setting"].split("_lr")[0]
        rows.append([name, describe(name), lv["n"], runs, s["cap"], s["patience"], listed, spread,
                     f"{s['capped']}/{runs}"])  # fmt: skip
    return markdown_table(heads, rows)
