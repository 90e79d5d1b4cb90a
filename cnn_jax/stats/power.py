"""Power of a paired crossed comparison, and the seeds x test images that would decide a claim.

A comparison's delta is the grand mean of the paired per-(seed, image) differences d_si. Under the
two-way crossed random-effects model d_si = mu + a_s + b_i + e_si (Searle, Casella & McCulloch
1992, ch. 4) Var(delta) = seed/S + image/N + residual/(S N): more images shrink only the image and
residual terms, more seeds the seed and residual ones, so a seed-dominated variance is not reduced
by more images.

Power: the one-sided t test at level alpha rejects with probability P(T > t_{1-alpha, df}), T
noncentral t with noncentrality delta/se (Cohen 1988, ch. 2; Julious 2004, Stat. Med. 23:1921).
For a design that has not been run the dof are Satterthwaite's (1946) for the ANOVA estimate of
Var(delta) at the new S, N, from the components (`VarianceComponents.df_at`): what
`cnn_jax.stats.crossed.crossed_variance` would report there without the seed-pooling pretest (with
it, the dof can only be larger: this is the conservative side).

Claims (one dict each, as the claims engine records them; delta oriented so that positive favours
the claim's "a", flipped by an optional "direction": -1) are powered on the distance that decides
them, each test one-sided at Holm's worst-case level alpha / m (`holm_alpha`):

* superiority: the observed size |delta|;
* non_inferiority (H0: delta <= -margin): delta + margin; non_superiority (H0: delta >= margin):
  margin - delta;
* equivalence (TOST, H0: |delta| >= margin): margin - |delta| for the nearer one-sided test, each
  test at power 1 - (1 - power)/2 so that both reject with at least `power` (Bonferroni on the type
  II errors; Julious 2004's beta/2 rule at delta = 0);
* exact: no test, no power.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats

from cnn_jax.stats.crossed import crossed_components

CLAIM_TYPES = ("superiority", "non_inferiority", "non_superiority", "equivalence", "exact")


@dataclass(frozen=True)
class VarianceComponents:
    """Variance components of paired per-(seed, image) differences, and the design they came from.

    Var(mean) = seed/S + image/N + residual/(S N) (two-way crossed random effects).
    """

    seed: float
    image: float
    residual: float
    n_seeds: int
    n_images: int

    def __post_init__(self):
        for field in ("seed", "image", "residual"):
            v = getattr(self, field)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{field}: {v!r}; allowed: a variance >= 0")

    @classmethod
    def from_matrix(cls, d_sn) -> VarianceComponents:
        """ANOVA estimates (expected mean squares, truncated at 0) from a [seeds, images] matrix."""
        d = np.asarray(d_sn, dtype=np.float64)
        if d.ndim != 2 or min(d.shape) < 2:
            raise ValueError(f"d_sn: shape {d.shape}; allowed: [seeds >= 2, images >= 2]")
        c = crossed_components(d[None])
        s, n = d.shape
        return cls(float(c["var_seed"][0]), float(c["var_image"][0]), float(c["var_err"][0]), s, n)

    def variance_at(self, seeds: int, images: int) -> float:
        """Var of the mean difference at S seeds x N images."""
        return self.seed / seeds + self.image / images + self.residual / (seeds * images)

    def se_at(self, seeds: int, images: int) -> float:
        """Standard error of the mean difference at S seeds x N images."""
        return math.sqrt(self.variance_at(seeds, images))

    def df_at(self, seeds: int, images: int) -> float:
        """Satterthwaite dof of the ANOVA variance estimate at S x N (S = 1: N - 1; N = 1: S - 1).

        Terms (E[MS_seed], E[MS_image], -E[MS_err]) / (S N) with S - 1, N - 1, (S - 1)(N - 1) dof.
        """
        if seeds == 1 or images == 1:
            return float(max(seeds, images) - 1)
        s, n, r = seeds, images, self.residual
        terms = np.array([n * self.seed + r, s * self.image + r, -r]) / (s * n)
        dofs = np.array([s - 1, n - 1, (s - 1) * (n - 1)], dtype=np.float64)
        v = terms.sum()
        return float(v**2 / np.sum(terms**2 / dofs)) if v > 0 else math.inf


def components_from_se(
    se: float, n_seeds: int, n_images: int, assume: str = "seed"
) -> VarianceComponents:
    """Components from a recorded se alone: the whole variance assigned to one factor.

    assume="seed" (conservative for planning seeds, the default): Var = seed/S, so only seeds
    reduce it and more images change nothing; "image": Var = image/N (optimistic for seeds).
    """
    if not (math.isfinite(se) and se >= 0):
        raise ValueError(f"se: {se!r}; allowed: a standard error >= 0")
    v = se**2
    if assume == "seed":
        return VarianceComponents(v * n_seeds, 0.0, 0.0, n_seeds, n_images)
    if assume == "image":
        return VarianceComponents(0.0, v * n_images, 0.0, n_seeds, n_images)
    raise ValueError(f"assume: {assume!r}; allowed: 'seed' or 'image'")


def holm_alpha(alpha: float, family_size: int) -> float:
    """The level one claim must meet in the worst case of Holm's (1979) step-down: alpha / m.

    Conservative: a claim with p <= alpha/m is rejected whatever the family's other p-values;
    with the others rejected first, a larger p can suffice (up to alpha).
    """
    if not (0 < alpha < 1):
        raise ValueError(f"alpha: {alpha!r}; allowed: (0, 1)")
    if int(family_size) != family_size or family_size < 1:
        raise ValueError(f"family_size: {family_size!r}; allowed: an integer >= 1")
    return alpha / family_size


def power_at(effect: float, se: float, df: float, *, alpha: float, sides: int = 1) -> float:
    """P(reject) of the t test at level alpha when the true difference is `effect` (noncentral t).

    sides=2 adds the rejection in the wrong direction. df = inf: the normal limit.
    """
    if sides not in (1, 2):
        raise ValueError(f"sides: {sides!r}; allowed: 1 or 2")
    if se == 0:
        return 1.0 if effect != 0 else alpha
    lam = abs(effect) / se
    if math.isinf(df):
        null, alt = scipy_stats.norm(), scipy_stats.norm(loc=lam)
    else:
        null, alt = scipy_stats.t(df), scipy_stats.nct(df, lam)
    tc = null.isf(alpha / sides)
    p = alt.sf(tc)
    if sides == 2:  # the wrong direction: a far tail, which nct can return as NaN
        p += np.nan_to_num(alt.cdf(-tc))
    return float(p)


def minimum_detectable_effect(
    se: float, df: float, *, alpha: float, power: float = 0.8, sides: int = 1
) -> float:
    """Smallest delta > 0 rejected with probability `power` at level alpha (noncentral t, exact).

    Cohen (1988, ch. 2); the normal approximation is (z_{1-alpha/sides} + z_power) se.
    """
    if not (alpha / sides < power < 1):
        raise ValueError(f"power: {power!r}; allowed: between alpha/sides and 1")
    if not (df > 0):
        raise ValueError(f"df: {df!r}; allowed: > 0")
    if se == 0:
        return 0.0
    gap = lambda lam: power_at(lam, 1.0, df, alpha=alpha, sides=sides) - power
    hi = scipy_stats.norm.isf(alpha / sides) + scipy_stats.norm.ppf(power) + 1.0
    while gap(hi) < 0:
        hi *= 2
    return float(optimize.brentq(gap, 0.0, hi, xtol=1e-12, rtol=1e-12)) * se


@dataclass(frozen=True)
class Design:
    """A seeds x images design, its se and dof from the components, and its power."""

    seeds: int
    images: int
    se: float
    df: float
    power: float


def _design(c: VarianceComponents, effect, s: int, n: int, alpha: float, sides: int) -> Design:
    se, df = c.se_at(s, n), c.df_at(s, n)
    return Design(s, n, se, df, power_at(effect, se, df, alpha=alpha, sides=sides))


def _smallest(ok, lo: int, hi: int) -> int | None:
    """Smallest k in [lo, hi] with ok(k), ok assumed monotone; None if not even ok(hi)."""
    if not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
    return lo


def required_design(
    components: VarianceComponents,
    effect: float,
    *,
    alpha: float,
    power: float,
    images: int | None = None,
    seeds: int | None = None,
    max_seeds: int = 1000,
    max_images: int = 1_000_000,
    sides: int = 1,
) -> Design | None:
    """Fewest seeds (at `images`) or images (at `seeds`) whose test detects `effect` with `power`.

    Pass exactly one of images, seeds. se and dof at each candidate come from the components
    (`VarianceComponents.df_at`). None when unreachable within the cap: e.g. more images cannot
    beat a seed-dominated variance (se >= sqrt(seed/S) at any N).
    """
    if (images is None) == (seeds is None):
        raise ValueError("required_design: pass exactly one of images= (to count seeds) or seeds=")
    if effect == 0:
        return None

    def ok(s: int, n: int) -> bool:
        return _design(components, effect, s, n, alpha, sides).power >= power

    if images is not None:
        if images < 1:
            raise ValueError(f"images: {images!r}; allowed: an integer >= 1")
        k = _smallest(lambda s: ok(s, images), 2, max_seeds)
        return None if k is None else _design(components, effect, k, images, alpha, sides)
    if seeds < 2:
        raise ValueError(f"seeds: {seeds!r}; allowed: an integer >= 2")
    k = _smallest(lambda n: ok(seeds, n), 2, max_images)
    return None if k is None else _design(components, effect, seeds, k, alpha, sides)


def _num(x: float, sign: bool = False) -> str:
    """Two significant digits in fixed notation (0.72, 1.9, 27, 175); `sign`: +0.72."""
    places = max(0, 1 - math.floor(math.log10(abs(x)))) if x != 0 and math.isfinite(x) else 0
    return f"{x:{'+' if sign else ''}.{places}f}"


def _units(estimate: Mapping) -> tuple[float, str]:
    """(scale, unit) for printing: recorded fractions print as points, other units as they are."""
    unit = estimate.get("unit", "fraction")
    return (100.0, "pt") if unit == "fraction" else (1.0, str(unit))


def _decide(kind: str, delta: float, margin: float | None, power: float) -> tuple[float, float]:
    """(distance that decides the claim, per-test power) for a claim type (module docstring)."""
    if kind == "superiority":
        return abs(delta), power
    if margin is None or not (margin > 0):
        raise ValueError(f"margin: {margin!r}; a {kind} claim needs a margin > 0")
    if kind == "non_inferiority":
        return delta + margin, power
    if kind == "non_superiority":
        return margin - delta, power
    return margin - abs(delta), 1 - (1 - power) / 2  # equivalence: both one-sided tests


def _get(claim: Mapping, key: str, where: str = ""):
    if key not in claim or claim[key] is None:
        raise ValueError(f"{where}{key}: missing; expected in every claim (claims engine schema)")
    return claim[key]


def _components(est: Mapping, s: int, n: int) -> tuple[VarianceComponents, str]:
    """Recorded components, else the whole variance as seed variance (and a note saying so,
    unless the quantity is per seed, e.g. a time to target, where that is all there is)."""
    c = est.get("components") or {}
    parts = [c.get("seed"), c.get("image"), c.get("residual", c.get("err"))]
    if c and all(x is not None for x in parts):
        return VarianceComponents(*map(float, parts), s, n), ""
    note = " (components not recorded: all variance taken as seed variance, conservative)"
    note = "" if n <= 1 else note
    return components_from_se(float(est["se"]), s, n, assume="seed"), note


def plan_line(claim: Mapping, *, power: float = 0.8, max_seeds: int = 1000) -> str:
    """One line: the claim's observed effect (a - b, as the tables show it; marked when it points
    against the claim), its design's minimum detectable effect at Holm's worst-case level, and the
    seeds (at the study's images) that would decide an effect of the observed size in the claim's
    direction.

    ``claim``: the claims engine's dict (claim, type, label, margin, family_size, alpha, estimate
    {delta, se, df, n_seeds, n_images, components?, unit?}, direction?). Without recorded
    components the whole variance is taken as seed variance (`components_from_se`), and the line
    says so. Exact claims: no test, so no power.
    """
    kind = _get(claim, "type")
    if kind not in CLAIM_TYPES:
        raise ValueError(f"type: {kind!r}; allowed: {', '.join(CLAIM_TYPES)}")
    head = f"{_get(claim, 'claim')} ({claim.get('label', '?')}): {kind}"
    if kind == "exact":
        return f"{head}: checked numerically: no test, no power to plan"
    est = _get(claim, "estimate")
    better = float(claim.get("better", claim.get("direction", 1)))  # the sign of a - b claimed
    delta_ab = float(_get(est, "delta", "estimate."))
    delta = delta_ab * better  # positive: the way the claim says
    se, s = float(_get(est, "se", "estimate.")), int(_get(est, "n_seeds", "estimate."))
    n = int(est.get("n_images") or 1)  # 1: a seeds-only comparison (e.g. times to target)
    comp, note = _components(est, s, n)
    family = int(_get(claim, "family_size"))
    level = holm_alpha(float(_get(claim, "alpha")), family)
    margin = None if claim.get("margin") is None else float(claim["margin"])
    dist, p_test = _decide(kind, delta, margin, power)
    scale, unit = _units(est) if "scale" not in claim else (claim["scale"], claim["unit"].strip())
    df = float(est.get("df") or comp.df_at(s, n))
    mde = minimum_detectable_effect(se, df, alpha=level, power=p_test) * scale
    sup = kind == "superiority"
    what = "effect" if sup else f"distance from the {margin * scale:g} {unit} margin"
    at = f" x {n} images" if n > 1 else ""
    against = " (against the claim)" if sup and delta < 0 else ""
    line = (
        f"{head}: observed {_num(delta_ab * scale, sign=True)} {unit}{against}, "
        f"minimum detectable {what} "
        f"{_num(mde)} {unit} at {s} seeds{at} (Holm over {family}, {power:.0%} power){note}; "
    )
    if dist <= 0:
        return line + "the estimate lies on the null side of the margin: no design decides it"
    # An effect is shown as a - b in the claim's direction (the tables' sign); a distance as a size.
    size = dist * scale * (better if sup else 1.0)
    shown = f"{'an effect' if sup else 'a distance'} of {_num(size, sign=sup)} {unit}"
    d = required_design(comp, dist, alpha=level, power=p_test, images=n, max_seeds=max_seeds)
    if d is not None:
        return line + f"{shown} needs {d.seeds} seeds{at}"
    floor = (
        f" (the image variance alone leaves se >= {_num(math.sqrt(comp.image / n) * scale)} {unit})"
    )
    return line + f"{shown} is not reached within {max_seeds} seeds{at}" + floor * (comp.image > 0)


def plan_claims(claims: Sequence[Mapping], **kwargs) -> list[str]:
    """`plan_line` for each claim (a claim judged at several budgets: one line per budget);
    an error names the claim's index."""
    lines = []
    for i, claim in enumerate(_per_budget(claims)):
        try:
            lines.append(plan_line(claim, **kwargs))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise ValueError(f"claims[{i}]: {e}") from None
    return lines


def _per_budget(claims: Sequence[Mapping]) -> list[Mapping]:
    """The engine's per-claim results (`budgets`: {budget: entry}) as one entry per budget."""
    out = []
    for c in claims:
        if isinstance(c.get("budgets"), Mapping) and "type" not in c:
            out += [dict(v, claim=f"{v['claim']} @{b}") for b, v in c["budgets"].items()]
        else:
            out.append(c)
    return out


def design_line(
    components: VarianceComponents,
    effect: float,
    *,
    seeds: int,
    images: int,
    family_size: int = 1,
    alpha: float = 0.05,
    power: float = 0.8,
    unit: str = "pt",
    max_seeds: int = 1000,
    max_images: int = 1_000_000,
) -> str:
    """One line answering "to detect `effect` at `power`, what design do I need?" (one-sided)."""
    level = holm_alpha(alpha, family_size)
    holm = f"{alpha:g}/{family_size}, Holm's worst case" if family_size > 1 else f"{alpha:g}"
    c, kw = components, dict(alpha=level, power=power)
    by_seeds = required_design(c, effect, images=images, max_seeds=max_seeds, **kw)
    by_images = required_design(c, effect, seeds=seeds, max_images=max_images, **kw)
    mde = minimum_detectable_effect(c.se_at(seeds, images), c.df_at(seeds, images), **kw)
    need = (
        f"{by_seeds.seeds} seeds x {images} images"
        if by_seeds
        else f"more than {max_seeds} seeds at {images} images"
    )
    if by_images:
        other = f"or {seeds} seeds x {by_images.images} images"
    elif c.seed > 0:
        floor = f"{_num(math.sqrt(c.seed / seeds))} {unit}"
        other = f"at {seeds} seeds more images cannot: seed variance alone leaves se >= {floor}"
        other += f" ({seeds - 1} dof)"
    else:
        other = f"at {seeds} seeds not within {max_images} images"
    return (
        f"to detect {effect:+g} {unit} at {power:.0%} power (one-sided t at alpha {holm}) you "
        f"need {need}; {other}; {seeds} seeds x {images} images detect {_num(mde)} {unit}"
    )
