"""Time to a target (e.g. the first step at 25% training error) with runs that never reach it.

A run that has not reached the target by the end of its budget is right-censored at its horizon
(its total steps): the time is only known to exceed it. Imputing the horizon as the time makes the
mean time of the slower arm grow with the budget, so a paired difference of imputed times grows
with the budget by construction (a longer budget only raises the imputed value) and
"budget-dependent" then describes the imputation, not the runs.

Here the estimand is the restricted mean time to target (RMST; Royston & Parmar 2013, BMC Med.
Res. Methodol. 13:152), mu(tau) = E[min(T, tau)], at a restriction tau no larger than any run's
horizon. Censoring is administrative (at the horizon, never before tau), so min(T, tau) is known
exactly for every run and a paired t over seeds of min(T_a, tau) - min(T_b, tau) is exact: no
survival-curve integral is needed. With one common restriction for every budget (e.g. the
smallest budget's horizon) the delta estimates the same quantity at every budget: it no longer
grows with the budget by construction, and a difference between budgets is a difference of runs.

Reported beside it per arm: the runs that reached the target within their horizon, the
Kaplan-Meier (1958, JASA 53:457) median with its interval (Brookmeyer & Crowley 1982 test
inversion on the complementary log-log scale with Greenwood's variance, as SAS LIFETEST and
statsmodels' ``SurvfuncRight.quantile_ci``), and the log-rank test (Mantel 1966, Cancer Chemother.
Rep. 50:163; Peto & Peto 1972) as a supplementary unpaired comparison of the curves. The KM and
log-rank arithmetic follows statsmodels' conventions (median: first event time where S < 0.5,
strictly), implemented here in numpy; the tests compare them with statsmodels where installed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as scipy_stats

Steps = Sequence[int | float | None]
_TIE = 1e-12  # S within this of 0.5 counts as 0.5 (a rounding of an exact 1/2 is not "below")


@dataclass(frozen=True)
class CensoredComparison:
    """Paired RMST difference a - b at ``restriction`` (steps), and per-arm KM summaries.

    ``delta`` < 0: arm a reaches the target sooner (within the restriction). Medians are None when
    the arm's KM curve never falls below 0.5; an interval end is None when the data do not bound
    it. ``logrank_p`` is None when neither arm has an event.
    """

    name: str
    delta: float
    se: float
    df: int
    low: float
    high: float
    p_value: float
    confidence: float
    restriction: float
    n_pairs: int
    rmst_a: float
    rmst_b: float
    reached_a: int
    reached_b: int
    median_a: float | None
    median_b: float | None
    median_ci_a: tuple[float | None, float | None]
    median_ci_b: tuple[float | None, float | None]
    logrank_p: float | None
    method: str

    def as_dict(self) -> dict:
        """JSON-safe dict: tuples as lists, any NaN or infinity as None."""
        return {k: _json_safe(v) for k, v in asdict(self).items()}

    def fmt(self, digits: int = 0) -> str:
        """One line: delta [low, high] p, reached counts and medians."""
        f = f"{{:+.{digits}f}}"
        med = [_fmt_median(m) for m in (self.median_a, self.median_b)]
        return (
            f"{self.name}: RMST({self.restriction:g}) {f.format(self.delta)} "
            f"[{f.format(self.low)}, {f.format(self.high)}] p={self.p_value:.3g}; reached "
            f"{self.reached_a}/{self.n_pairs} vs {self.reached_b}/{self.n_pairs}; "
            f"KM median {med[0]} vs {med[1]}"
        )


def _fmt_median(m: float | None) -> str:
    return "not reached" if m is None else f"{m:g}"


def _json_safe(v):
    if isinstance(v, tuple | list):
        return [_json_safe(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _arm(name: str, steps: Steps, horizons, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, reached, horizons) of one arm; a run not reached is censored at its horizon."""
    h = np.asarray(horizons, dtype=np.float64)
    h = np.full(n, float(h)) if h.ndim == 0 else h
    if h.shape != (n,) or not np.all(np.isfinite(h) & (h > 0)):
        raise ValueError(
            f"horizons_{name}: {horizons!r}; allowed: a positive number or {n} of them"
        )
    reached = np.array([s is not None for s in steps])
    t = np.array([h[i] if s is None else float(s) for i, s in enumerate(steps)])
    if np.any(reached & ((t < 0) | (t > h) | ~np.isfinite(t))):
        raise ValueError(
            f"{name}_steps: {list(steps)!r}; each must lie in [0, its horizon] or be None"
        )
    return t, reached, h


def compare_times(
    a_steps: Steps,
    b_steps: Steps,
    *,
    horizons_a,
    horizons_b,
    restriction: float,
    confidence: float = 0.95,
    name: str = "",
) -> CensoredComparison:
    """Paired RMST difference of the first steps reaching a target (None: not reached).

    a_steps[i] and b_steps[i] come from the same seed i; horizons are each run's total steps (a
    scalar or one per seed). ``restriction`` must not exceed any horizon (pass the smallest
    budget's horizon to compare budgets). Paired t over seeds of min(T, tau) (df = n - 1); all
    differences equal (se = 0): the exact two-sided sign-test p (1 when they are 0) and the
    interval [delta, delta].
    """
    n = len(a_steps)
    if len(b_steps) != n:
        raise ValueError(f"b_steps: {len(b_steps)} runs but a_steps has {n}; pair them by seed")
    if n < 2:
        raise ValueError(f"a_steps: {n} pair(s); a paired comparison needs at least 2 seeds")
    ta, ra, ha = _arm("a", a_steps, horizons_a, n)
    tb, rb, hb = _arm("b", b_steps, horizons_b, n)
    shortest = float(min(ha.min(), hb.min()))
    if not (0 < restriction <= shortest):
        raise ValueError(
            f"restriction: {restriction}; allowed: (0, {shortest:g}], the shortest horizon"
        )
    xa, xb = np.minimum(ta, restriction), np.minimum(tb, restriction)
    delta, se, p, half = _paired_t(xa - xb, confidence)
    (med_a, ci_a), (med_b, ci_b) = (km_median(ta, ra, confidence), km_median(tb, rb, confidence))
    return CensoredComparison(
        name=name,
        delta=delta,
        se=se,
        df=n - 1,
        low=delta - half,
        high=delta + half,
        p_value=p,
        confidence=confidence,
        restriction=float(restriction),
        n_pairs=n,
        rmst_a=float(xa.mean()),
        rmst_b=float(xb.mean()),
        reached_a=int(ra.sum()),
        reached_b=int(rb.sum()),
        median_a=med_a,
        median_b=med_b,
        median_ci_a=ci_a,
        median_ci_b=ci_b,
        logrank_p=logrank_p(ta, ra, tb, rb),
        method=f"paired t of restricted mean time (tau={restriction:g}); KM medians; log-rank",
    )


def _paired_t(d: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    """(delta, se, two-sided p, interval half-width) of the paired t on differences d."""
    n, delta = len(d), float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n))
    if se == 0:  # every difference equal: the sign test is the exact test left
        p = 1.0 if delta == 0 else float(scipy_stats.binomtest(n, n, 0.5).pvalue)
        return delta, 0.0, p, 0.0
    p = float(2 * scipy_stats.t.sf(abs(delta) / se, n - 1))
    return delta, se, p, float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1) * se)


def kaplan_meier(times, events) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(event times, S(t), Greenwood se) of the Kaplan-Meier (1958) estimate, right censoring.

    At tied times events precede censorings. se is NaN once every run at risk has had its event
    (S = 0), as in statsmodels.
    """
    t, e = np.asarray(times, dtype=np.float64), np.asarray(events, dtype=bool)
    ut, inv = np.unique(t, return_inverse=True)
    d = np.bincount(inv, weights=e, minlength=len(ut))
    at_risk = np.cumsum(np.bincount(inv, minlength=len(ut))[::-1])[::-1]
    keep = d > 0
    ut, d, at_risk = ut[keep], d[keep], at_risk[keep]
    surv = np.cumprod(1 - d / at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        green = np.cumsum(np.where(at_risk > d, d / (at_risk * (at_risk - d)), np.nan))
    return ut, surv, surv * np.sqrt(green)


def km_median(
    times, events, confidence: float = 0.95
) -> tuple[float | None, tuple[float | None, float | None]]:
    """KM median (first event time with S < 0.5, strictly: SAS's rule; None if none), interval.

    Interval (Brookmeyer & Crowley 1982, Biometrics 38:29): the event times whose test of
    S(t) = 0.5 on the cloglog scale, z = (g(S) - g(0.5)) / (g'(S) se), is not rejected at
    1 - confidence; low: the first such time, high: the event time after the last one (None when
    the last one is the last event time, or when no time is accepted).
    """
    ut, surv, se = kaplan_meier(times, events)
    below = np.flatnonzero(surv < 0.5 - _TIE)
    median = float(ut[below[0]]) if len(below) else None
    with np.errstate(divide="ignore", invalid="ignore"):
        g, g5 = np.log(-np.log(surv)), math.log(-math.log(0.5))
        z = (g - g5) * (-surv * np.log(surv)) / se
    ok = np.flatnonzero(np.abs(z) <= scipy_stats.norm.ppf(0.5 + confidence / 2))
    if len(ok) == 0:
        return median, (None, None)
    high = float(ut[ok[-1] + 1]) if ok[-1] + 1 < len(ut) else None
    return median, (float(ut[ok[0]]), high)


def logrank_p(times_a, events_a, times_b, events_b) -> float | None:
    """Two-sided p of the log-rank test (Mantel 1966; Peto & Peto 1972), chi-square 1 dof.

    Hypergeometric variance per distinct time; times with fewer than 2 at risk contribute nothing
    (statsmodels' ``survdiff``). None when there is no event to compare.
    """
    ta, tb = np.asarray(times_a, dtype=np.float64), np.asarray(times_b, dtype=np.float64)
    ea, eb = np.asarray(events_a, dtype=bool), np.asarray(events_b, dtype=bool)
    ut = np.unique(np.concatenate([ta, tb]))
    d_a = np.bincount(np.searchsorted(ut, ta[ea]), minlength=len(ut))
    d = d_a + np.bincount(np.searchsorted(ut, tb[eb]), minlength=len(ut))
    n_a = len(ta) - np.searchsorted(np.sort(ta), ut, side="left")
    n = n_a + len(tb) - np.searchsorted(np.sort(tb), ut, side="left")
    use = n > 1
    r = n_a[use] / n[use]
    var = float(np.sum(d[use] * r * (1 - r) * (n[use] - d[use]) / (n[use] - 1)))
    if var <= 0:
        return None
    chi2 = float(np.sum(d_a[use] - d[use] * r)) ** 2 / var
    return float(scipy_stats.chi2.sf(chi2, 1))
