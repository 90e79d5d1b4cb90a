"""The claims table every study prints (`claims.md`, the readme blocks), from the engine's dicts.

Reads `cnn_jax.stats.budgets.ClaimResult.as_dict()` output (fresh or from a record's
results.json), so a re-analysed record and a new run print the same table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cnn_jax.outputs.markdown import markdown_table
from cnn_jax.stats import power

POOLED = "†"


def _num(x: float | None, scale: float, digits: int, sign: bool = True) -> str:
    if x is None:
        return "-inf" if sign else "?"
    return f"{scale * x:{'+' if sign else ''}.{digits}f}"


def _bound(x: float | None, scale: float, digits: int, low: bool) -> str:
    if x is None:  # an infinite simultaneous bound: the family left that side open
        return "-inf" if low else "+inf"
    return _num(x, scale, digits)


def budget_cell(v: Mapping[str, Any], digits: int = 2) -> str:
    """'+0.72 pt [-0.13, +1.55] {-0.91, +2.30} p 0.46: inconclusive' (see `header`)."""
    s, e = v["scale"], v["estimate"]
    if v["type"] == "exact":
        dev = e.get("deviation")
        return f"max abs(a - b) {dev:.1e} (tolerance {v['tolerance']:g}): **{v['label']}**"
    d = _num(e["delta"], s, digits) + v["unit"]
    ci = f"[{_num(v['low'], s, digits)}, {_num(v['high'], s, digits)}]"
    sim = f"{{{_bound(v['sim_low'], s, digits, True)}, {_bound(v['sim_high'], s, digits, False)}}}"
    mark = POOLED if e.get("pooled") else ""
    return f"{d} {ci} {sim} p {v['p_holm']:.2g}: **{v['label']}**{mark}"


def _label(c: Mapping[str, Any]) -> str:
    text = f"{c['a']} - {c['b']}"
    first = next(iter(c["budgets"].values()), None)
    if first and first.get("margin") is not None:
        m = first["margin"] * first["scale"]
        text += f"; margin {m:.2g}{first['unit']} ({first['margin_rule']})"
    return text + (f" ({c['what']})" if c.get("what") else "")


def _across(c: Mapping[str, Any]) -> str:
    if not c.get("budget_label"):
        return "-"
    ps = [i["p_holm"] for i in c["interactions"] if i.get("p_holm") is not None]
    return c["budget_label"] + (f" (interaction p {min(ps):.2g})" if ps else "")


def header(claims: Sequence[Mapping[str, Any]]) -> str:
    """What every cell means: the intervals, the family, the marks."""
    n = max((v["family_size"] for c in claims for v in c["budgets"].values()), default=0)
    return (
        "Each budget: delta a - b [95% interval per comparison] {simultaneous 95% bounds "
        f"compatible with Holm over the study's {n} hypotheses}}, Holm-adjusted p of the deciding "
        f"test, label. {POOLED}: the seed variance was pooled away by the preliminary F test "
        "(the interval then rests on the images' dof). Across budgets: the difference of deltas "
        "between budgets (Holm over the study's interactions).\n"
    )


def claims_markdown(claims: Sequence[Mapping[str, Any]], budgets: Sequence[str]) -> str:
    """The claims table, then one power line per inconclusive (claim, budget)."""
    heads = ["claim", "type", "a - b"] + [f"{b} budget" for b in budgets]
    heads += ["across budgets", "result"]
    rows = []
    for c in claims:
        cells = [budget_cell(c["budgets"][b]) if b in c["budgets"] else "-" for b in budgets]
        rows.append([c["text"], c["kind"].replace("_", "-"), _label(c), *cells, _across(c),
                     f"**{c['result']}**"])  # fmt: skip
    lines = power_lines(claims)
    tail = "\n**What would decide the inconclusive ones** (power 80%, Holm's strictest level):\n\n"
    tail = tail + "".join(f"- {line}\n" for line in lines) if lines else ""
    return header(claims) + "\n" + markdown_table(heads, rows) + tail


def power_lines(claims: Sequence[Mapping[str, Any]]) -> list[str]:
    """`cnn_jax.stats.power` lines for each inconclusive (claim, budget)."""
    entries = [
        dict(v, claim=f"{c['text']} ({c['a']} - {c['b']}) @{b}")
        for c in claims
        for b, v in c["budgets"].items()
        if v["label"] == "inconclusive"
    ]
    return power.plan_claims(entries) if entries else []
