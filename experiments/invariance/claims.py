"""What the translation-invariance study claims: declarations for `cnn_jax.stats.judge`.

Each claim names variant a against b on one quantity, with the paper's direction; the engine
(`cnn_jax.stats`) decides every label. Claims, by protocol:

- Zhang 2019: MaxBlurPool (and a GAP head) raise consistency and shifted accuracy over max
  pooling, strided + BlurPool over strided; the same claim at the 1x and 3x budgets (variants
  suffixed `_3x`), so the engine tests the budget interaction;
- Azulay & Weiss 2019: shift augmentation (and blur) lower P(top-1 change) and MAC;
- the seed's claim: downsampling raises consistency at a small shift and accuracy at a large one
  over no downsampling (d0); augmentation raises accuracy at the large shift;
- Kayhan & van Gemert 2020: VALID and zero-SAME padding classify the similar test set better
  than the dissimilar one (absolute position is encoded); circular and zero-FULL padding cannot
  tell them apart, by construction (`IDENTITIES`): exact claims, checked, never tested.

Margins are relative to b's error on the quantity (`Margin(relative=, floor=)`): a fixed 2-point
margin would call a variant 'equivalent' to max pooling while doubling its 2.3% shifted error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnn_jax.stats.claims import Claim, Kind, Margin

Key = tuple[str, str]  # (variant, metric): one arm of a stored or fresh comparison
Cells = dict[str, tuple[Key, Key]]  # budget -> (a, b)
Declared = list[tuple[Claim, Cells]]

BUDGET_SUFFIX = {"1x": "", "3x": "_3x"}
LOWER_IS_BETTER = ("p_top1_change", "mac")
# No bias, a zero background and a swap (16 px) that is a multiple of the total stride (8):
# circular and zero-FULL padding map the dissimilar image's features onto the similar one's.
IDENTITIES = ("kv_same_circular", "kv_full_zero")
NAMES = {
    "consistency": "consistency",
    "accuracy_shifted": "shifted accuracy",
    "p_top1_change": "P(top-1 change)",
    "mac": "MAC",
}


def better_of(metric: str) -> int:
    """+1 when a higher value is better (accuracy, consistency), -1 for P(top-1 change), MAC."""
    return -1 if metric in LOWER_IS_BETTER else 1


def reference_error(level: float, better: int) -> float:
    """b's error on the quantity: 1 - level when higher is better, else the level itself."""
    return 1.0 - level if better > 0 else level


def margin_of(exp: Any) -> Margin:
    """`experiment.margin_relative` x b's error, within [`margin_floor`, `margin_cap`]."""
    relative = float(exp.get("margin_relative", 0.2))
    floor = float(exp.get("margin_floor", 0.002))
    return Margin(relative=relative, floor=floor, cap=float(exp.get("margin_cap", 0.01)))


def alpha_of(exp: Any) -> float:
    """`experiment.alpha`: the study's family-wise error rate (Holm over every claim)."""
    alpha = float(exp.get("alpha", 0.05))
    if not 0 < alpha < 1:
        raise ValueError(f"experiment.alpha: {alpha!r}; allowed: strictly between 0 and 1")
    return alpha


def declare(exp: Any, present: set[str]) -> Declared:
    """Every claim of the study's protocols whose variants were run (`present`)."""
    has = lambda *vs: all(v in present for v in vs)  # noqa: E731
    margin = margin_of(exp)
    out: Declared = []
    for build in (_zhang, _azulay, _depth, _kayhan):
        out += build(exp, has, margin)
    return out


def _sup(text: str, a: str, b: str, quantity: str, margin: Margin | None = None) -> Claim:
    """A superiority claim; `margin` only where 'no difference' is an answer worth stating
    (Zhang's blur vs max), since each margin adds two hypotheses to the study's Holm family."""
    return Claim(text, a, b, quantity, Kind.SUPERIORITY, better_of(quantity), margin)


def _zhang(exp: Any, has: Callable[..., bool], margin: Margin) -> Declared:
    """Zhang 2019, one claim per (variant, metric) over the 1x and (if trained) 3x budgets."""
    if "zhang" not in exp.protocols:
        return []
    budgets = ("1x", "3x") if "budget" in exp.protocols else ("1x",)
    out: Declared = []
    for v in exp.zhang_variants:
        if v in ("max", "strided"):
            continue
        base = "strided" if v.startswith("strided") else "max"
        for m in ("consistency", "accuracy_shifted"):
            cells = {
                k: ((v + BUDGET_SUFFIX[k], m), (base + BUDGET_SUFFIX[k], m))
                for k in budgets
                if has(v + BUDGET_SUFFIX[k], base + BUDGET_SUFFIX[k])
            }
            if cells:
                text = f"{v} raises {NAMES[m]} over {base} (Zhang 2019)"
                out.append((_sup(text, v, base, m, margin), cells))
    return out


def _azulay(exp: Any, has: Callable[..., bool], margin: Margin) -> Declared:
    """Azulay & Weiss 2019: augmentation (max) and blur (blur3_noaug) against max_noaug."""
    if "azulay" not in exp.protocols:
        return []
    out: Declared = []
    for a, what in (("max", "shift augmentation"), ("blur3_noaug", "blur")):
        if has(a, "max_noaug"):
            for m in LOWER_IS_BETTER:
                text = f"{what} lowers {NAMES[m]} ({a} < max_noaug; Azulay & Weiss 2019)"
                cells = {"1x": ((a, m), ("max_noaug", m))}
                out.append((_sup(text, a, "max_noaug", m), cells))
    return out


def _depth(exp: Any, has: Callable[..., bool], margin: Margin) -> Declared:
    """The seed's claim: downsampling against d0; augmentation at the large shift."""
    if "depth" not in exp.protocols:
        return []
    small, large = f"consistency@{exp.small_distance}", f"accuracy@{exp.large_distance}"
    out: Declared = []
    for v in exp.depth_variants:
        if v != "d0" and not v.endswith("_aug") and has(v, "d0"):
            for m, what in ((small, "consistency at a small"), (large, "accuracy at a large")):
                text = f"{v} raises {what} shift ({m.split('@')[1]} px) over d0 (seed's claim)"
                out.append((_sup(text, v, "d0", m), {"1x": ((v, m), ("d0", m))}))
    for v in exp.depth_variants:
        plain = v.removesuffix("_aug")
        if v.endswith("_aug") and has(v, plain):
            text = f"augmentation raises {plain}'s accuracy at {exp.large_distance} px"
            out.append((_sup(text, v, plain, large), {"1x": ((v, large), (plain, large))}))
    return out


def _kayhan(exp: Any, has: Callable[..., bool], margin: Margin) -> Declared:
    """Kayhan & van Gemert 2020: similar - dissimilar accuracy, > 0 or exactly 0 (`IDENTITIES`)."""
    if "kayhan" not in exp.protocols:
        return []
    out: Declared = []
    for v in exp.kayhan_variants:
        if not has(v):
            continue
        a, b, cell = f"{v}.similar", f"{v}.dissimilar", {"1x": ((v, "similar"), (v, "dissimilar"))}
        if v in IDENTITIES:
            text = f"{v} cannot encode absolute position: similar = dissimilar (Kayhan 2020)"
            claim = Claim(text, a, b, "accuracy", Kind.EXACT, tolerance=exact_tolerance(exp))
        else:
            text = f"{v} encodes absolute position: similar > dissimilar (Kayhan 2020)"
            claim = _sup(text, a, b, "accuracy")
        out.append((claim, cell))
    return out


def exact_tolerance(exp: Any) -> float:
    """`experiment.exact_tolerance`: the largest |similar - dissimilar| an identity allows."""
    tol = float(exp.get("exact_tolerance", 0.0))
    if not tol >= 0:
        raise ValueError(f"experiment.exact_tolerance: {tol!r}; allowed: a number >= 0")
    return tol
