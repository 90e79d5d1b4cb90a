"""Intervals and paired comparisons for seeds x test-image studies, and the claims engine.

Data model: a variant is scored on the same N test images by S training seeds, giving a crossed
``[seeds, images]`` matrix (``scores_sn``) of per-image scores (0/1 correctness or a metric). Both
factors are random: seeds sample training randomness, images sample the test population. The
variance of a grand mean comes from the crossed random-effects ANOVA with Satterthwaite dof
(`cnn_jax.stats.crossed.crossed_variance`). The two-level ("pigeonhole") bootstrap that resamples
seeds and images (Owen 2007) has that variance in closed form but biased (seed part by (S-1)/S,
interaction about 3x), so:

* levels (`hierarchical_bootstrap`): bootstrap replicates give the shape and keep the interval
  inside the scores' range; the percentile levels are widened (Hesterberg 2015, "expanded
  percentile") until the width matches t_nu * sqrt(Var) (plain percentiles under-cover with few
  seeds);
* differences (`paired_difference`): t-interval and p-value from the same variance of the
  per-(seed, image) paired differences: no bootstrap resolution floor on p; TOST for equivalence.

What a study claims and the label each claim earns is decided in one place, the claims engine:
`claims` (claim types, margins, estimates), `evidence` (estimates from scores, seeds or records),
`judge` (one Holm family per study, Holm-compatible intervals), `budgets` (budget interactions),
`censored` (times to a target), `power` (what would decide an inconclusive claim; ``python -m
cnn_jax.stats plan``). Calibration figures: ``python -m experiments.calibration.main``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special
from scipy import stats as scipy_stats

from cnn_jax.stats.crossed import level_intervals, paired_t, tost_t
from cnn_jax.stats.multiplicity import holm as holm  # re-exported: stats.holm

_CHUNK = 2_000_000  # resampled elements materialised per chunk, bounds memory


@dataclass(frozen=True)
class Interval:
    """An estimate and a two-sided interval at ``confidence``; ``method`` names the construction."""

    estimate: float
    low: float
    high: float
    confidence: float
    method: str

    def as_dict(self) -> dict:
        return asdict(self)

    def fmt(self, scale: float = 100.0, digits: int = 1) -> str:
        """'98.7 [97.1, 99.3]' (scale 100 turns proportions into percent)."""
        e, lo, hi = (f"{v * scale:.{digits}f}" for v in (self.estimate, self.low, self.high))
        return f"{e} [{lo}, {hi}]"


@dataclass(frozen=True)
class Comparison:
    """a - b on matched seeds and images; ``se``/``df`` are the t-statistic's scale and dof."""

    name: str
    delta: float
    low: float
    high: float
    p_value: float
    n_seeds: int
    n_images: int
    method: str
    p_equivalence: float | None = None
    margin: float | None = None
    se: float | None = None
    df: float | None = None
    confidence: float = 0.95

    def as_dict(self) -> dict:
        return asdict(self)

    def fmt(self, scale: float = 100.0, digits: int = 2) -> str:
        """Table row: 'name: +0.42 [+0.11, +0.73]  p=0.004  p_tost=0.3'."""
        d, lo, hi = (f"{v * scale:+.{digits}f}" for v in (self.delta, self.low, self.high))
        row = f"{self.name}: {d} [{lo}, {hi}]  p={self.p_value:.3g}"
        if self.p_equivalence is not None:
            row += f"  p_tost={self.p_equivalence:.3g}"
        return row


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: {confidence}; allowed: strictly between 0 and 1, e.g. 0.95")
    return float(special.ndtri(0.5 + confidence / 2))


def wilson(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson (1927, JASA 22:209) score interval for a binomial proportion k/n; inside [0, 1].

    For one run's accuracy (test images only, no seed variation). Newcombe (1998, Stat. Med. 17:857)
    recommends it over the Wald interval, which leaves [0, 1] and under-covers near 0 and 1.
    """
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"wilson: k={k}, n={n}; allowed: n >= 1 and 0 <= k <= n")
    z = _z(confidence)
    p, z2 = k / n, z * z
    centre = (k + z2 / 2) / (n + z2)
    half = z / (n + z2) * math.sqrt(k * (n - k) / n + z2 / 4)
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    return Interval(p, low, high, confidence, "wilson")


def _as_sn(name: str, scores) -> np.ndarray:
    y = np.asarray(scores, dtype=np.float64)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2 or y.shape[1] < 2 or not np.isfinite(y).all():
        raise ValueError(
            f"{name}: shape {np.shape(scores)}; allowed: finite [seeds, images] with >= 2 images"
        )
    return y


def hierarchical_bootstrap(
    scores_sn, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Grand mean of a variant's [seeds, images] scores with a two-level bootstrap interval.

    Two-level (hierarchical) bootstrap over seeds then images (Davison & Hinkley 1997, sec. 3.8;
    Saravanan et al. 2020, "Application of the hierarchical bootstrap to multi-level data"), in the
    crossed form (`two_level_replicates`), with expanded-percentile levels calibrated to the crossed
    variance and its Satterthwaite dof (`expanded_percentile`). Scores in [0, 1] give an interval in
    [0, 1] by construction. S = 1 reduces to an image bootstrap: it covers test-set sampling only,
    not seed variation. Measured coverage of a 95% interval (``python -m cnn_jax.stats
    --calibrate``): 0.94-0.97 at 5 seeds x 1,000-10,000 images; 0.93 when seed variance dominates
    near 99% accuracy (skewed seed means: a rare bad seed); conservative (0.97-0.99) with 3 seeds
    and little seed variance. Use >= 5 seeds; one seed ignores seed variance (0.44-0.95).
    """
    y = _as_sn("scores_sn", scores_sn)[None]
    _z(confidence)
    est, low, high = level_intervals(y, n_boot, confidence, seed)
    return Interval(float(est[0]), float(low[0]), float(high[0]), confidence, "two-level bootstrap")


def _outer_quantiles(rep: np.ndarray, q_low: float, q_high: float) -> tuple[float, float]:
    """np.quantile's (linear) bounds; where a replicate is infinite (a statistic that can be
    'never', e.g. a distance not reached within the grid) interpolating would give inf - inf, so
    each bound is the order statistic next outward: an infinite bound means that at least that
    share of the replicates was infinite."""
    if np.isfinite(rep).all():
        low, high = np.quantile(rep, [q_low, q_high])
        return float(low), float(high)
    low, high = np.quantile(rep, q_low, method="lower"), np.quantile(rep, q_high, method="higher")
    return float(low), float(high)


def percentile_bootstrap(
    values,
    statistic: Callable = np.mean,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    expand: bool = True,
) -> Interval:
    """Bootstrap percentile interval (Efron & Tibshirani 1993, ch. 13) of ``statistic(values)``.

    Resamples the units on axis 0 with replacement; ``statistic`` must accept ``axis=`` (np.mean,
    np.median, ...), it is applied to all replicates at once. ``expand`` widens the levels for small
    n as Hesterberg (2015): Phi^-1(1 - alpha'/2) = sqrt(n/(n-1)) t_{n-1, 1-alpha/2}; the interval
    stays inside the range of the replicates (a [0, 1] metric stays in [0, 1]).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 0 or x.shape[0] < 2 or not np.isfinite(x).all():
        raise ValueError(f"values: shape {x.shape}; allowed: >= 2 finite values on axis 0")
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    step = max(1, _CHUNK // x.size)
    reps = []
    for start in range(0, n_boot, step):
        idx = rng.integers(0, n, size=(min(step, n_boot - start), n))
        reps.append(np.asarray(statistic(x[idx], axis=1), dtype=np.float64))
    rep = np.concatenate(reps)
    if rep.ndim != 1:
        raise ValueError(
            "statistic: must reduce axis 1 of [n_boot, n] replicates to one value each"
        )
    alpha = 1 - confidence
    if expand:
        t = scipy_stats.t.ppf(1 - alpha / 2, n - 1)
        alpha = 2 * special.ndtr(-math.sqrt(n / (n - 1)) * t)
    low, high = _outer_quantiles(rep, alpha / 2, 1 - alpha / 2)
    method = "expanded percentile bootstrap" if expand else "percentile bootstrap"
    return Interval(float(statistic(x, axis=0)), float(low), float(high), confidence, method)


def _check_margin(margin: float) -> float:
    if not (isinstance(margin, int | float) and math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin: {margin!r}; allowed: a positive number (e.g. 0.01 = 1 point)")
    return float(margin)


def paired_difference(
    a_sn,
    b_sn,
    *,
    name: str = "",
    margin: float | None = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    value_range: tuple[float, float] | None = (0.0, 1.0),
) -> Comparison:
    """mean(a) - mean(b) on the same seeds and test images: t-interval, two-sided p, TOST.

    Paired: the per-(seed, image) differences d_si = a_si - b_si are analysed as one crossed
    [seeds, images] matrix, so what two variants share (seed s, image i) cancels; this is what the
    paired two-level bootstrap (same seed and image indices for a and b) estimates. Its variance has
    a closed form (Owen 2007), biased for few seeds; we use the unbiased crossed random-effects
    variance (`crossed_variance`) with Satterthwaite dof directly: a Welch-Satterthwaite t-test.
    Measured at 5 seeds (the calibration study, ``experiments/calibration``): 95% coverage 0.95-0.97
    when seed variance dominates, conservative (0.97-0.99) with little seed variance (5 seeds cannot
    rule a seed component out); Holm over 10 such tests keeps the family-wise error <= 0.05 from 2
    to 10 seeds (with fewer than 5 seeds the seed component is pooled less readily, `pool_level`,
    which makes few-seed intervals conservative: 0.96-0.99).
    No Monte Carlo error and no 1/(n_boot+1) floor on p; the interval is {delta0: p(delta0) >=
    alpha} (test inversion), so p < alpha exactly when 0 is outside it. ``n_boot``/``seed`` are
    accepted for API stability and unused. ``margin``: TOST p (Schuirmann 1987), |delta| < margin.
    ``value_range``: the scores' range (default [0, 1]: accuracies, agreements, probabilities);
    the interval is intersected with the differences it allows, [lo - hi, hi - lo], so a few-seed
    t-interval never claims more than +-100 points (the true difference is always inside, so
    coverage and the test are unchanged). Scores outside the range raise; None: no bound.
    """
    a, b = _as_sn("a_sn", a_sn), _as_sn("b_sn", b_sn)
    if a.shape != b.shape:
        raise ValueError(f"b_sn: shape {b.shape} differs from a_sn {a.shape}; pass matched runs")
    _z(confidence)
    r = {k: float(v[0]) for k, v in paired_t((a - b)[None], confidence).items()}
    delta, se, dof = r["delta"], r["se"], r["df"]
    low, high = _within_range(r["low"], r["high"], a, b, value_range)
    p_eq = None if margin is None else float(tost_t(delta, se, dof, _check_margin(margin)))
    return Comparison(
        name=name,
        delta=delta,
        low=low,
        high=high,
        p_value=min(1.0, r["p"]),
        n_seeds=a.shape[0],
        n_images=a.shape[1],
        method="paired crossed t (Satterthwaite)",
        p_equivalence=p_eq,
        margin=None if margin is None else float(margin),
        se=se,
        df=dof,
        confidence=confidence,
    )


def _within_range(low, high, a, b, value_range) -> tuple[float, float]:
    """[low, high] intersected with the possible differences of scores in `value_range`."""
    if value_range is None:
        return float(low), float(high)
    lo, hi = map(float, value_range)
    for name, x in (("a_sn", a), ("b_sn", b)):
        if x.min() < lo or x.max() > hi:
            raise ValueError(
                f"{name}: scores in [{x.min():g}, {x.max():g}] outside value_range "
                f"[{lo:g}, {hi:g}]; pass the metric's range (value_range=None: unbounded)"
            )
    span = hi - lo
    return max(float(low), -span), min(float(high), span)


def mcnemar_exact(a_correct_n, b_correct_n) -> float:
    """Exact McNemar (1947) test of two classifiers on the same images (one run each).

    Conditional on the n_ab + n_ba discordant images, n_ab ~ Binomial(n_ab + n_ba, 1/2) under H0;
    two-sided p = min(1, 2 P(X <= min(n_ab, n_ba))) (Fagerland et al. 2013, BMC Med. Res. Meth.).
    """
    a, b = np.asarray(a_correct_n), np.asarray(b_correct_n)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"b_correct_n: shape {b.shape}; allowed: 1-D, same as a {a.shape}")
    a, b = a.astype(bool), b.astype(bool)
    n_ab, n_ba = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if n_ab + n_ba == 0:
        return 1.0
    return float(min(1.0, 2 * scipy_stats.binom.cdf(min(n_ab, n_ba), n_ab + n_ba, 0.5)))


def tost_p(comparison_or_samples, margin: float) -> float:
    """TOST p (Schuirmann 1987, J. Pharmacokin. Biopharm. 15:657) for H1: |delta| < margin.

    A Comparison: two one-sided t-tests with its se and dof. An array of bootstrap replicates of
    delta: p = max((1 + #{x <= -margin}), (1 + #{x >= margin})) / (n + 1).
    """
    m = _check_margin(margin)
    if isinstance(comparison_or_samples, Comparison):
        c = comparison_or_samples
        if c.se is None or c.df is None:
            raise ValueError(f"comparison {c.name!r}: no se/df; build it with paired_difference")
        return float(tost_t(c.delta, c.se, c.df, m))
    x = np.asarray(comparison_or_samples, dtype=np.float64).ravel()
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError("comparison_or_samples: allowed: a Comparison or finite replicates")
    tail = max(np.sum(x <= -m), np.sum(x >= m))
    return float((1 + tail) / (x.size + 1))
