"""Markdown tables of the translation-invariance study (readme.md, the README block).

Ours beside the papers' numbers (from ../shared/literature.md, section A): Zhang 2019's
ImageNet accuracy / consistency, Azulay & Weiss 2019's JMLR Table 1 ('Black' protocol) and
Kayhan & van Gemert 2020's red-green table. Every number of ours is an estimate with its
95% interval (two-level bootstrap over seeds and images), in percent; the claims table is the
engine's (`cnn_jax.outputs.claims_report`), the same for a fresh run and a re-analysed record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from cnn_jax.outputs.claims_report import claims_markdown
from cnn_jax.outputs.markdown import markdown_table

from .evidence import budgets_of
from .variants import describe

# Zhang 2019, ImageNet (accuracy, consistency), baseline -> Tri-3 (MaxBlurPool, filter 3).
ZHANG_PAPER = {
    "AlexNet": ((56.55, 78.18), (56.90, 82.15)),
    "VGG16": ((71.59, 88.52), (72.20, 89.60)),
    "ResNet18": ((69.74, 85.11), (71.69, 87.51)),
    "ResNet50": ((76.16, 89.20), (76.83, 90.91)),
}
# Azulay & Weiss 2019, JMLR Table 1, 'Black' protocol: P(top-1 change), MAC (torchvision).
AZULAY_PAPER = {"VGG16": (0.18, 0.06), "ResNet50": (0.20, 0.086), "DenseNet121": (0.19, 0.079)}
# Kayhan & van Gemert 2020, red-green (similar, dissimilar) test accuracy, mean over seeds.
KAYHAN_PAPER = {
    "kv_valid": (100.0, 0.2),
    "kv_same_zero": (99.8, 8.4),
    "kv_same_circular": (73.7, 73.7),
    "kv_full_zero": (89.7, 89.7),
}
COLUMNS = {
    "accuracy_unshifted": "acc. unshifted",
    "accuracy_shifted": "acc. shifted",
    "drop": "drop under shift",
    "consistency": "consistency",
    "p_top1_change": "P(top-1 change)",
    "mac": "MAC",
    "similar": "similar",
    "dissimilar": "dissimilar",
}


def _iv(d: Mapping[str, float] | None, scale: float = 100.0, digits: int = 1) -> str:
    if d is None:
        return "-"
    e, lo, hi = (d[k] * scale for k in ("estimate", "low", "high"))
    return f"{e:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


DIGITS = {"drop": 2}  # the drop is a fraction of a point: one more decimal


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return markdown_table(headers, rows).rstrip("\n")


WHAT = "description"  # the column beside each variant name: `variants.describe`, as the figures


def variant_table(
    summary: Mapping, variants: Sequence[str], metrics: Sequence[str], info: Mapping | None = None
) -> str:
    """One row per variant: what it is, its padding geometry and training budget (`info`, when
    the record has them), then each metric's estimate [95% interval] in percent."""
    rows, head = [], ["variant", WHAT] + (["geometry", "trained"] if info else [])
    for v in (v for v in variants if v in summary):
        about = [info[v]["geometry"], info[v]["budget"]] if info else []
        cells = [_iv(summary[v].get(m), digits=DIGITS.get(m, 1)) for m in metrics]
        rows.append([f"`{v}`", describe(v)] + about + cells)
    return _table(head + [COLUMNS[m] for m in metrics], rows)


def both_correct_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Consistency of a and b on the images both classify correctly unshifted in every seed."""
    if not rows:
        return ""
    body = [[f"`{r['a']}` - `{r['b']}`", f"{describe(r['a'])} - {describe(r['b'])}", r["budget"],
             str(r["n_images"]), _iv(r["a_level"]), _iv(r["b_level"])] for r in rows]  # fmt: skip
    head = ["pair (a - b)", WHAT, "budget", "images both correct in every seed", "a", "b"]
    title = ("**Consistency on the images both nets classify correctly unshifted** (the same "
             "images in every seed, so the seeds x images design stays complete)")  # fmt: skip
    return title + "\n\n" + _table(head, body)


def _zhang_reference() -> str:
    rows = []
    for net, ((a0, c0), (a1, c1)) in ZHANG_PAPER.items():
        rows.append([net, f"{a0:.2f} / {c0:.2f}", f"{a1:.2f} / {c1:.2f}", f"{c1 - c0:+.2f}"])
    header = ["Zhang 2019 ImageNet", "baseline acc / cons", "Tri-3 acc / cons", "cons gain"]
    return _table(header, rows)


def _depth_table(depth: Mapping[str, Any], variants: Sequence[str]) -> str:
    rows = []
    for v in variants:
        curve, h = depth["curves"][v], depth["halving_distance"][v]
        d = curve["distances"]
        halving = "never (> grid)" if math.isinf(h["estimate"]) else (
            f"{h['estimate']:.1f} [{h['low']:.1f}, {h['high']:.1f}]")  # fmt: skip
        last = f"{_iv(curve['accuracy'][-1])} at d={d[-1]}"
        rows.append([f"`{v}`", describe(v), _iv(curve["accuracy"][0]), halving,
                     _iv(curve["consistency"][1]), last])  # fmt: skip
    header = ["variant", WHAT, "acc. d=0", "d where acc. above chance halves (px)",
              "consistency d=1", "acc. at largest d"]  # fmt: skip
    return _table(header, rows)


def _curve_table(curves: Mapping[str, Any], info: Mapping | None) -> str:
    """Accuracy and consistency at every test shift, one row per (net, training shift)."""
    distances = next(iter(curves.values()))["distances"]
    rows = []
    for v, c in curves.items():
        cells = [f"{100 * a['estimate']:.1f} / {100 * k['estimate']:.1f}"
                 for a, k in zip(c["accuracy"], c["consistency"])]  # fmt: skip
        rows.append([f"`{v}`", describe(v)] + ([info[v]["budget"]] if info else []) + cells)
    head = ["variant", WHAT] + (["trained"] if info else []) + [f"d={d}" for d in distances]
    note = "Accuracy / consistency with the unshifted top-1 (percent) at horizontal shift +-d px"
    return (
        note + " (intervals: results.json; curves: learned_vs_shift.png)\n\n" + _table(head, rows)
    )


def _kayhan_table(summary: Mapping, variants: Sequence[str], info: Mapping | None) -> str:
    rows = []
    for v in variants:
        paper = KAYHAN_PAPER.get(v, (math.nan, math.nan))
        about = [info[v]["geometry"]] if info else []
        ours = [_iv(summary[v]["similar"]), _iv(summary[v]["dissimilar"])]
        rows.append([f"`{v}`", describe(v)] + about + ours + [f"{paper[0]:.1f} / {paper[1]:.1f}"])
    header = ["padding", WHAT] + (["geometry"] if info else [])
    header += ["similar (ours)", "dissimilar (ours)", "paper similar / dissimilar"]
    return _table(header, rows)


def _two_dots_table(td: Mapping[str, Any]) -> str:
    series = {f"raw {r['kind']}": [] for r in td["raw"]}
    what = {f"raw {r['kind']}": f"raw pixels, 2x2 {r['kind']} pooling" for r in td["raw"]}
    for r in td["raw"]:
        series[f"raw {r['kind']}"].append(r)
    series.update({f"learned `{v}`": rows for v, rows in td["learned"].items()})
    what.update({f"learned `{v}`": f"trained layers of {describe(v)}" for v in td["learned"]})
    distances = [r["distance"] for r in next(iter(series.values()))]
    fmt = lambda r: "never" if r["mean"] is None else f"{r['mean']:.2f}"  # noqa: E731
    rows = [[name, what[name]] + [fmt(r) for r in rs] for name, rs in series.items()]
    head = ["poolings until two dots merge, d =", WHAT] + [str(d) for d in distances]
    return _table(head, rows)


def claims_table(results: Mapping[str, Any]) -> str:
    """The engine's claims (`results["claims"]`) as the one claims table, power lines below."""
    claims = results.get("claims") or []
    if not claims:
        return ""
    title = "**Claims** (paired on the same seeds and images; one Holm family for the study)"
    return title + "\n\n" + claims_markdown(claims, budgets_of(claims)).rstrip("\n")


def _options_text(options: Mapping[str, Any] | None) -> str:
    """' (dataset options: subset_seed=0, train_subset=10000)', or '' without options."""
    if not options:
        return ""
    return " (dataset options: " + ", ".join(f"{k}={v}" for k, v in sorted(options.items())) + ")"


def markdown(results: Mapping[str, Any]) -> str:
    """The study's readme.md: what ran, per-protocol tables, the claims and their verdicts."""
    s, protocols = results["summary"], results["protocols"]
    ds, info = results["dataset"], results.get("variant_info")
    head = f"Translation invariance on **{ds['name']}**{_options_text(ds.get('options'))}: "
    head += f"{len(results['seeds'])} seeds, {results['num_images']} test images; percent, "
    head += "estimate [95% interval] (two-level bootstrap over seeds and images). Drop under "
    head += "shift: unshifted minus shifted correctness of the same image (robustness apart "
    head += "from accuracy); geometry: how each variant pads (PyTorch's, as the papers' code)."
    blocks = [head]
    for protocol in ("zhang", "azulay", "budget"):
        if protocol in protocols:
            variants = [v for v in results["variants"] if v in _group(results, protocol)]
            table = variant_table(s, variants, _METRICS[protocol], info)
            blocks += [f"**{_TITLES[protocol]}**", table]
    blocks.append(both_correct_table(results.get("both_correct") or []))
    if "zhang" in protocols:
        blocks.append(_zhang_reference())
    if "azulay" in protocols:
        ref = "; ".join(f"{k} {100 * p:.0f} / {100 * m:.1f}" for k, (p, m) in AZULAY_PAPER.items())
        blocks.append(
            f"Azulay & Weiss 2019 (ImageNet, 'Black'), in percent as our table: "
            f"P(top-1 change) / MAC: {ref}."
        )
    if "depth" in protocols:
        variants = list(results["depth"]["curves"])
        blocks += [f"**{_TITLES['depth']}**", _depth_table(results["depth"], variants)]
    if "two_dots" in results:
        blocks.append(_two_dots_table(results["two_dots"]))
    if "learned" in protocols:
        curves = results["learned"]["curves"]
        blocks += [f"**{_TITLES['learned']}**", _curve_table(curves, results.get("variant_info"))]
    if "kayhan" in protocols:
        variants = [v for v in results["variants"] if v in KAYHAN_PAPER]
        blocks += [f"**{_TITLES['kayhan']}**", _kayhan_table(s, variants, info)]
    blocks.append(claims_table(results))
    if results.get("unjudged"):
        blocks.append("Not judged: " + "; ".join(results["unjudged"]) + ".")
    return "\n\n".join(b for b in blocks if b) + "\n"


_ZHANG_COLUMNS = ("accuracy_unshifted", "accuracy_shifted", "drop", "consistency")
_METRICS = {
    "zhang": _ZHANG_COLUMNS + ("p_top1_change", "mac"),
    "azulay": ("accuracy_unshifted", "p_top1_change", "mac"),
    "budget": _ZHANG_COLUMNS + ("p_top1_change", "mac"),
}
_TITLES = {
    "zhang": "Zhang 2019 protocol (shift-augmented training, two random shifts per image)",
    "azulay": "Azulay & Weiss 2019 protocol (1-pixel diagonal shifts on the black canvas)",
    "budget": "Zhang 2019 variants at 3x training budget",
    "depth": "Seed's claim: invariance against shift distance and downsampling depth",
    "kayhan": "Kayhan & van Gemert 2020 red-green absolute-position test",
    "learned": "Learned vs built-in invariance: nets trained with shifts up to r px",
}


def _group(results: Mapping[str, Any], key: str) -> set[str]:
    return set(results.get("groups", {}).get(key, ()))
