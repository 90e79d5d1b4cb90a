"""Which verdicts changed between two versions of a record of record.

    python -m cnn_jax.runs.verdict_changes OLD NEW [--all]

OLD and NEW are record folders (`results/<study>/`; a rerun moves the previous one to
`results/.superseded/<study>/<date>/`) or their `results.json`. Every cell the claims engine
judged (a claim, its `a - b`, its training-set size where the study has one, and a budget or
"across budgets") is matched by those names; the changed ones are printed as a Markdown table,
old -> new with the estimate and its 95% interval in the claim's unit, then how many kept their
label (`--all` lists those too). A claim only one version has shows "(absent)" on the other
side. So a note's "every verdict that changed" is read from the records, never typed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cnn_jax.outputs.markdown import markdown_table

ACROSS = "across budgets"
Key = tuple[str, str, str, str, str]  # claim text, a, b, n ('' without), budget


def load_claims(path: str | Path) -> list[Mapping[str, Any]]:
    """The judged claims of a record (`claims`, or `analysis.claims` for the regularizer study)."""
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{file}: cannot be read as JSON ({type(e).__name__}); give a record "
                         "folder (results/<study>/) or its results.json") from None  # fmt: skip
    claims = results.get("claims", (results.get("analysis") or {}).get("claims"))
    if not isinstance(claims, list):
        raise ValueError(f"{file}: no 'claims' list: a record judged by the claims engine?")
    return claims


def _shown(cell: Mapping[str, Any] | None, scale: float, unit: str) -> str:
    """'label +d [low, high] unit' (the label alone for an identity or an across-budgets cell)."""
    if cell is None:
        return "(absent)"
    label, delta = cell.get("label"), (cell.get("estimate") or {}).get("delta")
    if label == "exact" or not isinstance(delta, int | float):
        return str(label)
    text = f"{label} {scale * delta:+.2f}"
    low, high = cell.get("low"), cell.get("high")
    if isinstance(low, int | float) and isinstance(high, int | float):
        text += f" [{scale * low:+.2f}, {scale * high:+.2f}]"
    return text + unit


def cells(claims: Sequence[Mapping[str, Any]]) -> dict[Key, tuple[Mapping, float, str]]:
    """(claim, a, b, n, budget) -> (the judged cell, the claim's scale, its unit)."""
    out: dict[Key, tuple[Mapping, float, str]] = {}
    for c in claims:
        base = (str(c.get("text")), str(c.get("a")), str(c.get("b")), str(c.get("n") or ""))
        scale, unit = float(c.get("scale") or 1.0), str(c.get("unit") or "")
        for budget, cell in (c.get("budgets") or {}).items():
            out[(*base, str(budget))] = (cell, scale, unit)
        if c.get("budget_label"):
            out[(*base, ACROSS)] = ({"label": c["budget_label"]}, scale, unit)
    return out


def changes(old: Sequence[Mapping], new: Sequence[Mapping], every: bool = False) -> list[list[str]]:
    """Rows [claim, a - b, n, budget, old, new] of the cells whose label changed (all: `every`)."""
    before, after = cells(old), cells(new)
    rows = []
    for key in sorted(set(before) | set(after)):
        (o, so, uo), (n, sn, un) = before.get(key, (None, 1.0, "")), after.get(key, (None, 1.0, ""))
        if every or (o or {}).get("label") != (n or {}).get("label"):
            text, a, b, size, budget = key
            rows.append([text, f"{a} - {b}", size or "-", budget, _shown(o, so, uo),
                         _shown(n, sn, un)])  # fmt: skip
    return rows


def markdown(rows: Sequence[Sequence[str]], changed: int, unchanged: int) -> str:
    """The rows as a Markdown table, and the counts under it."""
    table = markdown_table(["claim", "a - b", "n", "budget", "old", "new"], rows)
    return table + f"\n{changed} changed; {unchanged} kept their label.\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_jax.runs.verdict_changes",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("old", help="the earlier record folder or its results.json")
    parser.add_argument("new", help="the later record folder or its results.json")
    parser.add_argument("--all", action="store_true", help="list unchanged cells too")
    args = parser.parse_args(argv)
    try:
        old, new = load_claims(args.old), load_claims(args.new)
    except ValueError as e:
        print(f"{parser.prog}: {e}", file=sys.stderr)
        return 2
    every, changed = changes(old, new, every=True), changes(old, new)
    rows = every if args.all else changed
    print(markdown(rows, len(changed), len(every) - len(changed)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
