"""Calibration of `cnn_jax.stats` on simulated seeds x images studies with a known truth.

Data-generating process (a logit-normal crossed model, chosen to match a CNN test set): image i has
difficulty d_i ~ N(mu, sd_img^2) shared by every seed and variant, plus a variant-specific part
u_vi ~ N(0, kappa^2); a seed shifts the logit by a_vs ~ N(0, tau^2); variant v adds effect_v; each
(seed, image) is correct with probability sigmoid(d_i + u_vi + a_vs + effect_v). The truth is the
population accuracy E[sigmoid(mu + effect_v + Z sqrt(sd_img^2 + kappa^2 + tau^2))] (Gauss-Hermite).
All simulated studies of one call share one bootstrap weight draw (a valid draw for each study).

Designs of record (the regularizer study's rows are (subset draw, training seed) pairs, a training
seed meaning the same initialisation under every draw: crossed factors): D draws x S seeds, the
model extended with a draw shift g_vd ~ N(0, tau_draw^2), a draw x seed shift k_vds ~ N(0,
tau_ds^2) and a draw x image part w_vdi ~ N(0, kappa_draw^2) (the seed shift a_vs is shared by the
draws); analysed flattened to D*S rows of one factor (`paired_t`) and as two crossed factors
(`paired_t_draws`).

    python -m experiments.calibration.main           # full table (a few minutes on 2 cores)
    python -m experiments.calibration.main --quick   # the configurations its tests check
    python -m experiments.calibration.main --record  # and publish it to results/stats_calibration
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize, special

from cnn_jax.stats import holm
from cnn_jax.stats.crossed import level_intervals, paired_t, paired_t_draws, tost_t

_CHUNK = 4_000_000  # simulated scores per chunk


@dataclass(frozen=True)
class Scenario:
    """Logit-scale parameters of the simulated population (see the module docstring)."""

    name: str
    mu: float = 7.5  # ~99% accuracy (MNIST-like)
    sd_img: float = 2.5
    tau: float = 0.1
    kappa: float = 0.5
    tau_draw: float = 0.0  # subset draw shift (designs of record)
    tau_ds: float = 0.0  # draw x seed shift
    kappa_draw: float = 0.0  # draw x image part


SCENARIOS = {
    "mnist": Scenario("mnist"),
    "mnist-seed-heavy": Scenario("mnist-seed-heavy", tau=0.4),
    "mnist-no-seed-effect": Scenario("mnist-no-seed-effect", tau=0.0),
    "fashion": Scenario("fashion", mu=3.8),
}

_DRAWS = {"tau_draw": 0.1, "tau_ds": 0.1, "kappa_draw": 0.3}
DESIGN_SCENARIOS = {  # separate draw and seed effects, for the designs of record
    "mnist-draw-heavy": Scenario("mnist-draw-heavy", **(_DRAWS | {"tau_draw": 0.4})),
    "mnist-seed-heavy-crossed": Scenario("mnist-seed-heavy-crossed", tau=0.4, **_DRAWS),
    "mnist-seed-nested": Scenario("mnist-seed-nested", tau=0.0, **(_DRAWS | {"tau_ds": 0.4})),
    "fashion-draws": Scenario("fashion-draws", mu=3.8, **(_DRAWS | {"tau_draw": 0.2})),
}
DESIGNS = ((1, 2), (2, 1), (1, 4), (2, 2), (4, 1))  # (draws, seeds): 2 and 4 rows


def truth(sc: Scenario, effect: float = 0.0) -> float:
    """Population accuracy of a variant with logit effect ``effect``."""
    x, w = np.polynomial.hermite_e.hermegauss(96)
    draws = sc.tau_draw**2 + sc.tau_ds**2 + sc.kappa_draw**2  # 0 without draws: unchanged
    sd = np.sqrt(sc.sd_img**2 + sc.kappa**2 + sc.tau**2 + draws)
    return float((special.expit(sc.mu + effect + sd * x) * w).sum() / w.sum())


def effect_for_delta(sc: Scenario, delta: float) -> float:
    """Logit effect giving variant a a true accuracy delta over a variant with effect 0."""
    base = truth(sc)
    return float(optimize.brentq(lambda e: truth(sc, e) - base - delta, -5, 5, xtol=1e-12))


def simulate(rng, sc: Scenario, m: int, s: int, n: int, effects) -> np.ndarray:
    """[variants, m, s, n] float32 0/1 scores: m studies, same images across variants and seeds."""
    f32 = np.float32
    d = rng.normal(sc.mu, sc.sd_img, size=(m, 1, n)).astype(f32)
    out = np.empty((len(effects), m, s, n), f32)
    for v, eff in enumerate(effects):
        img = d + rng.normal(0, sc.kappa, (m, 1, n)).astype(f32) + f32(eff)
        p_correct = special.expit(img + rng.normal(0, sc.tau, (m, s, 1)).astype(f32))
        out[v] = rng.random((m, s, n), dtype=f32) < p_correct
    return out


def simulate_draws(rng, sc: Scenario, m: int, nd: int, s: int, n: int, effects) -> np.ndarray:
    """[variants, m, draws, seeds, n] float32 0/1 scores: `simulate` with crossed draws and seeds
    (a seed's shift is the same under every draw; see the module docstring)."""
    f32 = np.float32

    def normal(sd: float, shape: tuple) -> np.ndarray:
        return rng.normal(0, sd, (m, *shape)).astype(f32)

    d = rng.normal(sc.mu, sc.sd_img, size=(m, 1, 1, n)).astype(f32)
    out = np.empty((len(effects), m, nd, s, n), f32)
    for v, eff in enumerate(effects):
        img = d + normal(sc.kappa, (1, 1, n)) + normal(sc.kappa_draw, (nd, 1, n)) + f32(eff)
        rows = normal(sc.tau_draw, (nd, 1, 1)) + normal(sc.tau, (1, s, 1))
        p_correct = special.expit(img + rows + normal(sc.tau_ds, (nd, s, 1)))
        out[v] = rng.random((m, nd, s, n), dtype=f32) < p_correct
    return out


ANALYSES = {  # how the regularizer study's [draws, seeds, images] differences can be analysed
    "one factor": lambda d, conf: paired_t(d.reshape(d.shape[0], -1, d.shape[-1]), conf),
    "draws x seeds": paired_t_draws,
}


def _analyses(nd: int, s: int) -> dict:
    """The distinct analyses of a design: with one draw or one seed both are the same test."""
    return ANALYSES if nd > 1 and s > 1 else {"one factor": ANALYSES["one factor"]}


def design_coverage(sc, nd, s, n, *, delta=0.002, sims=2000, seed=0, confidence=0.95) -> dict:
    """{analysis: coverage summary} of the paired-difference interval, D draws x S seeds."""
    eff, rng = effect_for_delta(sc, delta), np.random.default_rng(seed)
    true_delta, out = truth(sc, eff) - truth(sc), {k: ([], []) for k in _analyses(nd, s)}
    for m in _chunks(sims, nd * s, n, 2):
        a, b = simulate_draws(rng, sc, m, nd, s, n, [eff, 0.0])
        d = a.astype(np.float64) - b
        for name, test in _analyses(nd, s).items():
            r = test(d, confidence)
            out[name][0].append((r["low"] <= true_delta) & (true_delta <= r["high"]))
            out[name][1].append(r["high"] - r["low"])
    return {k: _summary(h, w, truth=true_delta) for k, (h, w) in out.items()}


def design_family_error(sc, nd, s, n, *, k=10, sims=2000, seed=0, alpha=0.05) -> dict:
    """{analysis: FWER} of Holm over k null comparisons against one baseline, D draws x S seeds."""
    rng, out = np.random.default_rng(seed), {a: ([], []) for a in _analyses(nd, s)}
    for m in _chunks(sims, nd * s, n, k + 1):
        y = simulate_draws(rng, sc, m, nd, s, n, [0.0] * (k + 1))
        d = (y[1:].astype(np.float64) - y[0]).reshape(k * m, nd, s, n)
        for name, test in _analyses(nd, s).items():
            p = test(d, 1 - alpha)["p"].reshape(k, m).T
            out[name][0].append((p < alpha).any(axis=1))
            out[name][1].append((holm(p) < alpha).any(axis=1))
    return {a: _fwer(raw, adj) for a, (raw, adj) in out.items()}


def _fwer(raw: list, adj: list) -> dict:
    raw, adj = np.concatenate(raw), np.concatenate(adj)
    return {"fwer_holm": adj.mean(), "fwer_unadjusted": raw.mean(), "se": _se(adj.mean(), adj.size)}


def _chunks(m: int, s: int, n: int, variants: int):
    step = max(1, _CHUNK // (s * n * variants))
    return [min(step, m - i) for i in range(0, m, step)]


def level_coverage(sc, s, n, *, sims=2000, n_boot=1000, seed=0, confidence=0.95) -> dict:
    """Coverage of `hierarchical_bootstrap`'s interval for one variant's population accuracy."""
    rng, t, hits, widths, seed_sd = np.random.default_rng(seed), truth(sc), [], [], []
    for m in _chunks(sims, s, n, 1):
        y = simulate(rng, sc, m, s, n, [0.0])[0]
        _, low, high = level_intervals(y, n_boot, confidence, seed + 1)
        hits.append((low <= t) & (t <= high))
        widths.append(high - low)
        seed_sd.append(y.mean(axis=2).std(axis=1, ddof=1) if s > 1 else np.zeros(m))
    return _summary(hits, widths, truth=t, seed_sd_pt=100 * np.concatenate(seed_sd).mean())


def paired_coverage(sc, s, n, *, delta=0.002, sims=2000, seed=0, confidence=0.95) -> dict:
    """Coverage of `paired_difference`'s interval for a true accuracy difference ``delta``."""
    eff, rng, hits, widths = effect_for_delta(sc, delta), np.random.default_rng(seed), [], []
    true_delta = truth(sc, eff) - truth(sc)
    for m in _chunks(sims, s, n, 2):
        a, b = simulate(rng, sc, m, s, n, [eff, 0.0])
        r = paired_t(a.astype(np.float64) - b, confidence)
        hits.append((r["low"] <= true_delta) & (true_delta <= r["high"]))
        widths.append(r["high"] - r["low"])
    return _summary(hits, widths, truth=true_delta)


def family_error(sc, s, n, *, k=10, sims=2000, seed=0, alpha=0.05, margin=None) -> dict:
    """Family-wise error under the global null: k variants vs a baseline, all identical.

    With ``margin``: every variant is exactly ``margin`` better (the TOST null's boundary), and the
    error is any TOST rejection (a false 'equivalent').
    """
    eff = 0.0 if margin is None else effect_for_delta(sc, margin)
    rng, raw, adj = np.random.default_rng(seed), [], []
    for m in _chunks(sims, s, n, k + 1):
        y = simulate(rng, sc, m, s, n, [0.0] + [eff] * k)
        d = (y[1:].astype(np.float64) - y[0]).reshape(k * m, s, n)
        r = paired_t(d, 1 - alpha)
        p = r["p"] if margin is None else tost_t(r["delta"], r["se"], r["df"], margin)
        p = p.reshape(k, m).T
        raw.append((p < alpha).any(axis=1))
        adj.append((holm(p) < alpha).any(axis=1))
    return _fwer(raw, adj)


def _se(p: float, n: int) -> float:
    return float(np.sqrt(max(p * (1 - p), 1e-12) / n))


def _summary(hits, widths, **extra) -> dict:
    h = np.concatenate(hits)
    cov = float(h.mean())
    out = {"coverage": cov, "se": _se(cov, h.size), "width_pt": 100 * np.concatenate(widths).mean()}
    return out | {k: float(v) for k, v in extra.items()}


QUICK = [  # (what, scenario, S, N): the configurations tests/stats/test_stats.py checks
    ("level", "mnist", 5, 1000),
    ("paired", "fashion", 5, 1000),
    ("paired", "mnist", 5, 1000),
    ("fwer", "fashion", 5, 1000),
    ("paired_design", "mnist-draw-heavy", (2, 2), 1000),
    ("fwer_design", "mnist-draw-heavy", (2, 2), 1000),
]


def _grid(quick: bool):
    if quick:
        return QUICK
    rows = [("level", sc, s, n) for sc in SCENARIOS for s in (1, 3, 5, 10) for n in (1000, 10000)]
    rows += [("paired", sc, s, n) for sc in SCENARIOS for s in (1, 3, 5, 10) for n in (1000, 10000)]
    rows += [("fwer", sc, s, 2000) for sc in SCENARIOS for s in (2, 3, 4, 5, 10)]
    rows += [("tost", sc, s, 10000) for sc in ("mnist", "fashion") for s in (3, 5)]
    rows += [("paired_design", sc, ds, 10000) for sc in DESIGN_SCENARIOS for ds in DESIGNS]
    return rows + [("fwer_design", sc, ds, 2000) for sc in DESIGN_SCENARIOS for ds in DESIGNS]


def _design_rows(what: str, name: str, ds: tuple[int, int], n: int, sims: int) -> list[dict]:
    """The rows of one design-of-record configuration, one per analysis."""
    sc, (nd, s) = DESIGN_SCENARIOS[name], ds
    if what == "paired_design":
        res = design_coverage(sc, nd, s, n, sims=sims)
    else:
        res = design_family_error(sc, nd, s, n, sims=sims)
    head = {"what": what, "scenario": name, "draws": nd, "seeds": s, "images": n}
    return [head | {"analysis": a} | r for a, r in res.items()]


def _body(r: dict) -> str:
    """One printed result: coverage and width, or family-wise error."""
    if "coverage" in r:
        return f"coverage {r['coverage']:.3f} +- {r['se']:.3f}  width {r['width_pt']:.2f} pt"
    body = f"FWER holm {r['fwer_holm']:.3f} +- {r['se']:.3f}"
    return body + f"  unadjusted {r['fwer_unadjusted']:.3f}  (10 comparisons)"


def run(quick: bool = False, sims: int = 2000, n_boot: int = 1000) -> list[dict]:
    """Print one line per configuration: coverage (or FWER) +- its Monte Carlo standard error."""
    print(f"# {sims} simulated studies each; n_boot={n_boot}; load average {os.getloadavg()}")
    rows = []
    for what, name, s, n in _grid(quick):
        if what.endswith("_design"):
            t0 = time.time()
            for r in _design_rows(what, name, s, n, sims):
                head = f"{what:13s} {name:24s} {r['draws']}x{r['seeds']} {r['analysis']:13s}"
                print(f"{head} N={n:<6d} {_body(r)}  [{time.time() - t0:.0f} s]", flush=True)
                rows.append(r)
            continue
        sc, t0 = SCENARIOS[name], time.time()
        head = f"{what:7s} {name:21s} S={s:<2d} N={n:<6d}"
        if what == "level":
            r = level_coverage(sc, s, n, sims=sims, n_boot=n_boot)
            body = f"coverage {r['coverage']:.3f} +- {r['se']:.3f}  width {r['width_pt']:.2f} pt"
            body += f"  truth {r['truth']:.4f}  seed sd {r['seed_sd_pt']:.2f} pt"
        elif what == "paired":
            r = paired_coverage(sc, s, n, sims=sims)
            body = f"coverage {r['coverage']:.3f} +- {r['se']:.3f}  width {r['width_pt']:.2f} pt"
        else:
            r = family_error(sc, s, n, sims=sims, margin=0.005 if what == "tost" else None)
            body = f"FWER holm {r['fwer_holm']:.3f} +- {r['se']:.3f}"
            body += f"  unadjusted {r['fwer_unadjusted']:.3f}  (10 comparisons)"
        print(f"{head} {body}  [{time.time() - t0:.0f} s]", flush=True)
        rows.append({"what": what, "scenario": name, "seeds": s, "images": n, **r})
    return rows


_WHAT = {
    "level": "95% interval of one variant's accuracy (`hierarchical_bootstrap`): coverage",
    "paired": "95% interval of a paired difference (`paired_difference`): coverage",
    "fwer": "Holm over 10 null comparisons: family-wise error (alpha 0.05)",
    "tost": "Holm over 10 TOST tests at the margin: false 'equivalent' rate (alpha 0.05)",
    "paired_design": "Designs of record, D draws x S seeds (one factor: the D*S rows flattened; "
    "draws x seeds: `paired_t_draws`): coverage of the 95% interval of a paired difference",
    "fwer_design": "Designs of record, D draws x S seeds: Holm over 10 null comparisons, "
    "family-wise error (alpha 0.05)",
}


def _column(r: dict) -> tuple:
    """A table column: (seeds, images), or (draws, seeds, analysis) for the designs of record."""
    if r["what"].endswith("_design"):
        return (r["draws"], r["seeds"], list(ANALYSES).index(r["analysis"]), r["images"])
    return (r["seeds"], r["images"])


def _label(col: tuple) -> str:
    if len(col) == 2:
        return f"S={col[0]}, N={col[1]}"
    nd, s, a, n = col
    analysis = list(ANALYSES)[a] if nd > 1 and s > 1 else "both"
    return f"{nd}x{s} {analysis}, N={n}"


def readme(rows: list[dict], sims: int) -> str:
    """The README block: one table per figure, scenarios as rows, seeds x images as columns."""
    out = [
        f"Calibration of `cnn_jax.stats` on {sims} simulated seeds x images studies per cell "
        "with a known truth (`experiments.calibration.main`; Monte Carlo standard error about "
        "0.005). Targets: coverage 0.93-0.97, family-wise error at most 0.05."
    ]
    for what, title in _WHAT.items():
        sel = [r for r in rows if r["what"] == what]
        if not sel:
            continue
        cols = sorted({_column(r) for r in sel}, key=lambda c: (len(c) == 4 and c[0] * c[1], c))
        key = "coverage" if what in ("level", "paired", "paired_design") else "fwer_holm"
        out += [
            "",
            f"**{title}**",
            "",
            "| scenario | " + " | ".join(_label(c) for c in cols) + " |",
            "|---" * (len(cols) + 1) + "|",
        ]
        for name in dict.fromkeys(r["scenario"] for r in sel):
            cell = {_column(r): r[key] for r in sel if r["scenario"] == name}
            vals = [f"{cell[c]:.3f}" if c in cell else "-" for c in cols]
            out.append(f"| {name} | " + " | ".join(vals) + " |")
    return "\n".join(out) + "\n"


def publish_record(rows: list[dict], sims: int, n_boot: int, wall_sec: float, load) -> None:
    """Publishes the table as results/stats_calibration (`cnn_jax.runs.record`)."""
    import json
    import tempfile

    from cnn_jax.runs import record
    from cnn_jax.stats.crossed import FEW_SEEDS, POOL_LEVEL, POOL_LEVEL_FEW_SEEDS

    scenarios = {k: vars(v) for k, v in (SCENARIOS | DESIGN_SCENARIOS).items()}
    config = {"sims": sims, "n_boot": n_boot, "scenarios": scenarios, "pool_level": POOL_LEVEL,
              "pool_level_few_seeds": POOL_LEVEL_FEW_SEEDS, "few_seeds": FEW_SEEDS}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "calibration.json").write_text(json.dumps(rows, indent=1) + "\n")
        (Path(tmp) / "readme.md").write_text(readme(rows, sims))
        record.publish("stats_calibration", tmp, ["calibration.json", "readme.md"], config=config,
                       dataset=None, wall_time_sec=wall_sec, load_at_start=load)  # fmt: skip


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m experiments.calibration.main", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--quick", action="store_true", help="only the configurations the tests check")
    ap.add_argument("--sims", type=int, default=2000, help="simulated studies per configuration")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates per interval")
    ap.add_argument("--record", action="store_true", help="publish to results/stats_calibration")
    args = ap.parse_args(argv)
    if args.record and args.quick:
        ap.error("--record: the record is the full table; drop --quick")
    load, t0 = os.getloadavg(), time.time()
    rows = run(args.quick, args.sims, args.n_boot)
    if args.record:
        publish_record(rows, args.sims, args.n_boot, time.time() - t0, load)


if __name__ == "__main__":
    main()
