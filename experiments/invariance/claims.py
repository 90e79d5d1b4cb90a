"""What the translation-invariance study claims: declarations for `cnn_jax.stats.judge`.

Each claim names variant a against b on one quantity, with the paper's direction; the engine
(`cnn_jax.stats`) decides every label. Claims, by protocol:

- Zhang 2019, robustness split from accuracy: each anti-aliased variant (MaxBlurPool, strided
  + BlurPool) against its base on the invariance quantities (the per-image accuracy drop under
  shift, consistency, consistency on the images both nets classify correctly unshifted) and,
  as separate claims, on accuracy (unshifted, shifted); the GAP head, which under-fits, on the
  drop and on consistency among both-correct images only (levels would penalise a less
  accurate net whatever its invariance); the same claim at the 1x and 3x budgets (variants
  suffixed `_3x`), so the engine tests the budget interaction;
- Azulay & Weiss 2019: shift augmentation lowers P(top-1 change) and MAC (max < max_noaug,
  blur3_noaug < max_noaug), and so does anti-aliasing (each anti-aliased variant < its base);
- the seed's claim: downsampling raises consistency at a small shift and accuracy at a large one
  over no downsampling (d0); augmentation raises accuracy at the large shift;
- learned vs built-in invariance: training shifts up to r px raise each net's consistency at a
  small test shift and its accuracy at a large one over the same net trained without shifts
  (the large shift lies beyond every trained range but the widest); without augmentation,
  each net's built-in consistency at the small shift against max pooling's;
- Kayhan & van Gemert 2020: VALID and zero padding 1 (their S-conv) classify the similar test
  set better than the dissimilar one (absolute position is encoded); circular and zero-FULL
  padding cannot tell them apart, by construction (`IDENTITIES`): exact claims, checked, never
  tested.

Margins are relative to b's error on the quantity (`Margin(relative=, floor=)`): a fixed 2-point
margin would call a variant 'equivalent' to max pooling while doubling its 2.3% shifted error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from cnn_jax.stats.claims import Claim, Kind, Margin

Key = tuple[str, str]  # (variant, metric): one arm of a stored or fresh comparison
Cells = dict[str, tuple[Key, Key]]  # budget -> (a, b)
Declared = list[tuple[Claim, Cells]]

BUDGET_SUFFIX = {"1x": "", "3x": "_3x"}
JAGGEDNESS = ("p_top1_change", "mac")  # Azulay & Weiss 2019
LOWER_IS_BETTER = ("drop",) + JAGGEDNESS
INVARIANCE = ("drop", "consistency", "consistency_both_correct")  # anti-aliasing's own claims
ACCURACY = ("accuracy_unshifted", "accuracy_shifted")  # stated separately
UNDER_FITTING = {"gap": ("drop", "consistency_both_correct")}  # compared on these only
# No bias, a zero background and a swap (16 px) that is a multiple of the total stride (8):
# circular and zero-FULL padding map the dissimilar image's features onto the similar one's.
IDENTITIES = ("kv_same_circular", "kv_full_zero")
NAMES = {
    "drop": "the accuracy drop under shift",
    "consistency": "consistency",
    "consistency_both_correct": "consistency",  # + ON_BOTH_CORRECT after the baseline
    "accuracy_unshifted": "unshifted accuracy",
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
    for build in (_zhang, _azulay, _depth, _learned, _kayhan):
        out += build(exp, has, margin)
    return out


def _sup(text: str, a: str, b: str, quantity: str, margin: Margin | None = None) -> Claim:
    """A superiority claim; `margin` only where 'no difference' is an answer worth stating
    (Zhang's blur vs max), since each margin adds two hypotheses to the study's Holm family."""
    return Claim(text, a, b, quantity, Kind.SUPERIORITY, better_of(quantity), margin)


def zhang_base(variant: str) -> str:
    """The baseline a Zhang variant is compared with: strided for the strided family."""
    return "strided" if variant.startswith("strided") else "max"


def _budget_cells(exp: Any, has: Callable[..., bool], v: str, base: str, metric: str) -> Cells:
    """(a, b) per budget where both variants ran: 1x, and 3x under the 'budget' protocol."""
    budgets = ("1x", "3x") if "budget" in exp.protocols else ("1x",)
    return {
        k: ((v + BUDGET_SUFFIX[k], metric), (base + BUDGET_SUFFIX[k], metric))
        for k in budgets
        if has(v + BUDGET_SUFFIX[k], base + BUDGET_SUFFIX[k])
    }


ON_BOTH_CORRECT = " on the images both classify correctly unshifted"


def _direction(metric: str, base: str) -> str:
    """'lowers X below max's' or 'raises X over max' (+ the image set of a pair quantity)."""
    where = ON_BOTH_CORRECT if metric == "consistency_both_correct" else ""
    if better_of(metric) < 0:
        return f"lowers {NAMES[metric]} below {base}'s{where}"
    return f"raises {NAMES[metric]} over {base}{where}"


def _zhang(exp: Any, has: Callable[..., bool], margin: Margin) -> Declared:
    """Zhang 2019: invariance claims, then accuracy claims, per variant over the budgets."""
    if "zhang" not in exp.protocols:
        return []
    out: Declared = []
    for v in exp.zhang_variants:
        if v in ("max", "strided"):
            continue
        base = zhang_base(v)
        for m in UNDER_FITTING.get(v, INVARIANCE + ACCURACY):
            if cells := _budget_cells(exp, has, v, base, m):
                kind = "accuracy" if m in ACCURACY else "invariance"
                text = f"{v} {_direction(m, base)} ({kind}; Zhang 2019)"
                out.append((_sup(text, v, base, m, margin), cells))
    return out


def _azulay(exp: Any, has: Callable[..., bool], margin: Margin) -> Declared:
    """Azulay & Weiss 2019: augmentation (max) and blur (blur3_noaug) against max_noaug; each
    anti-aliased Zhang variant against its base, over the budgets (Zhang's own comparison)."""
    if "azulay" not in exp.protocols:
        return []
    out: Declared = []
    for a, what in (("max", "shift augmentation"), ("blur3_noaug", "blur")):
        if has(a, "max_noaug"):
            for m in JAGGEDNESS:
                text = f"{what} lowers {NAMES[m]} ({a} < max_noaug; Azulay & Weiss 2019)"
                cells = {"1x": ((a, m), ("max_noaug", m))}
                out.append((_sup(text, a, "max_noaug", m), cells))
    for v in exp.get("zhang_variants", ()) if "zhang" in exp.protocols else ():
        if "blur" not in v:
            continue
        base = zhang_base(v)
        for m in JAGGEDNESS:
            if cells := _budget_cells(exp, has, v, base, m):
                text = f"{v} {_direction(m, base)} (jaggedness; Azulay & Weiss 2019)"
                out.append((_sup(text, v, base, m, margin), cells))
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


_SHIFT_TRAINED = re.compile(r"^(.+)_shift(\d+)$")  # variants.py: <zhang net>_shift<r>


def _learned(exp: Any, has: Callable[..., bool], margin: Margin) -> Declared:
    """Learned (training shifts r > 0 against r = 0, per net) and built-in (each net against
    max, both without shifts) invariance at `learned_small` / `learned_large` px."""
    if "learned" not in exp.protocols:
        return []
    small, large = int(exp.learned_small), int(exp.learned_large)
    cons, acc = f"consistency@{small}", f"accuracy@{large}"
    out: Declared = []
    for v in exp.learned_variants:
        net, r = _SHIFT_TRAINED.match(v).groups()
        plain = f"{net}_shift0"
        if int(r) > 0 and has(v, plain):
            for m, d, what in ((cons, small, "consistency"), (acc, large, "accuracy")):
                where = "beyond" if d > int(r) else "within"
                text = f"shifts up to {r} px in training raise {net}'s {what} at {d} px ({where})"
                out.append((_sup(text, v, plain, m), {"1x": ((v, m), (plain, m))}))
        elif int(r) == 0 and net != "max" and has(v, "max_shift0"):
            text = f"{net} raises consistency at {small} px over max, no shifts in training"
            out.append(
                (_sup(text, v, "max_shift0", cons), {"1x": ((v, cons), ("max_shift0", cons))})
            )
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
