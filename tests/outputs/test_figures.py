"""Every study's figures, drawn from small synthetic inputs (no training), read at a glance.

`plots.layout_problems` must find nothing: no two texts overlap, nothing leaves the figure,
every plot axes has an x and a y label (image panels may go without: their title or row label
names them; a colour bar needs its label), no empty panel, no line hidden under an identical
one. Titles name the dataset (and budget where the study has one), and accuracies are drawn
in percent, as the tables print them.
"""

from __future__ import annotations

import zlib

import matplotlib.image
import ml_collections
import numpy as np
import pytest

from cnn_jax.measure import two_dots, visualize
from cnn_jax.outputs import plots
from experiments.anatomy import plots as anatomy_plots
from experiments.invariance import plots as invariance_plots
from experiments.invariance.report import ZHANG_METRICS
from experiments.invariance.tables import KAYHAN_PAPER
from experiments.regularization import report as regularization_report

CONTEXT = "mnist, 3 epochs"


def _iv(estimate: float, half: float = 0.02) -> dict[str, float]:
    return {"estimate": estimate, "low": max(estimate - half, 0.0), "high": min(estimate + half, 1)}


def _seeded(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def assert_reads_well(fig, *words: str) -> None:
    """No layout problem; every word appears in some title (dataset, budget)."""
    assert plots.layout_problems(fig) == []
    titles = " ".join([fig.get_suptitle()] + [ax.get_title() for ax in fig.axes])
    for word in words:
        assert word in titles, f"{word!r} missing from the titles: {titles!r}"


def _ylabels(fig) -> str:
    return " ".join(ax.get_ylabel() for ax in fig.axes)


# Invariance ---------------------------------------------------------------------------------

ZHANG = ["max", "blur2", "blur3", "blur5", "gap", "strided", "strided_blur3", "max_noaug"]


def _summary(variants) -> dict:
    out = {}
    for v in variants:
        a = 0.9 + 0.08 * _seeded(v).random()
        out[v] = {m: _iv(a) for m in ZHANG_METRICS}
        out[v]["drop"] = {"estimate": 0.01, "low": -0.005, "high": 0.02}
        out[v] |= {"similar": _iv(a), "dissimilar": _iv(a - 0.3)}
    return out


def _curve(name: str, distances) -> dict:
    acc = np.linspace(0.95, 0.5, len(distances)) - 0.05 * _seeded(name).random()
    return {"distances": list(distances), "accuracy": [_iv(a) for a in acc],
            "consistency": [_iv(a) for a in acc + 0.03]}  # fmt: skip


def test_invariance_metric_panels():
    fig = invariance_plots.metric_panels(_summary(ZHANG), ZHANG, ZHANG_METRICS, CONTEXT)
    assert_reads_well(fig, "mnist", "3 epochs")
    assert "%" in _ylabels(fig)
    legend_text = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert "blur3: MaxBlurPool Tri-3, shift-augmented" in legend_text


def test_invariance_accuracy_vs_shift():
    variants = ["d0", "d1_max", "d2_max", "d3_max", "d3_blur", "d3_strided"]
    curves = {v: _curve(v, [0, 1, 2, 4, 8]) for v in variants}
    fig = invariance_plots.accuracy_vs_shift(curves, variants, CONTEXT)
    assert_reads_well(fig, "mnist")
    assert max(fig.axes[0].get_ylim()) > 1.5  # percent, not fractions


def test_invariance_learned_vs_shift_has_a_column_per_net_and_a_line_per_range():
    variants = [f"{net}_shift{r}" for net in ("max", "gap") for r in (0, 2, 6)]
    curves = {v: _curve(v, [0, 1, 2, 4, 8, 12]) for v in variants}
    fig = invariance_plots.learned_vs_shift(curves, variants, CONTEXT)
    assert_reads_well(fig, "mnist", "3 epochs")
    assert len(fig.axes) == 4  # accuracy and consistency for each of the two nets
    assert [ax.get_title() for ax in fig.axes[:2]] == [
        "max pooling",
        "max pooling, global-average\nhead",
    ]
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert legend == ["trained without shifts", "trained with shifts up to r = 2 px",
                      "trained with shifts up to r = 6 px"]  # fmt: skip
    assert max(fig.axes[0].get_ylim()) > 1.5  # percent, not fractions


def test_invariance_red_green():
    variants = list(KAYHAN_PAPER)
    fig = invariance_plots.red_green(_summary(variants), KAYHAN_PAPER, CONTEXT)
    assert_reads_well(fig, "mnist")
    ticks = [t.get_text().replace("\n", " ") for t in fig.axes[0].get_xticklabels()]
    assert "zero SAME padding (Kayhan)" in ticks


def test_invariance_two_dots_keeps_identical_series_visible():
    rows = [{"distance": d, "min": m, "mean": m, "max": m + 1} for d, m in [(1, 0), (2, 1), (4, 2)]]
    raw = [{"kind": k, **r} for k in ("max", "max_blur") for r in rows]  # identical series
    fig = invariance_plots.two_dots(raw, {"d3_max": rows, "d3_blur": rows}, CONTEXT)
    assert_reads_well(fig, "mnist")


# The two-dots picture of pooling (cnn_jax.measure.two_dots) -------------------------------


def test_two_dots_pooling_figure_reads_at_a_glance(tmp_path):
    kinds = ("max", "avg", "max_blur")
    table = two_dots.merge_table([1, 2, 4, 8], kinds=kinds, levels=3)
    table += [dict(r, kind="blur") for r in table if r["kind"] == "max"]  # identical to max
    fig = two_dots.plot_two_dots(4, table, kinds=(*kinds, "blur"), size=16, levels=3,
                                 context=CONTEXT)  # fmt: skip
    assert_reads_well(fig, "Two dots 4 px apart", "mnist", "3 epochs")
    (curves,) = [ax for ax in fig.axes if ax.lines]
    legend_text = [t.get_text() for t in curves.get_legend().get_texts()]
    assert "avg: average pooling 2x2, stride 2" in legend_text and len(legend_text) == 4
    assert len({(ln.get_marker(), ln.get_linestyle()) for ln in curves.lines}) == 4
    assert all(ln.get_marker() not in (None, "None", "") for ln in curves.lines)
    assert [t.get_text() for t in curves.get_xticklabels()] == ["1", "2", "4", "8"]
    (bar,) = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    assert "maximum" in bar.get_xlabel()
    png = plots.save(fig, tmp_path / "two_dots.png")
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[1] > pixels.shape[0] > 200 and pixels[..., :3].std() > 0.05


# Regularization -----------------------------------------------------------------------------

SIZES = ["250", "1000", "4000"]
SMALL_N = ["100", "150", "200", "300"]  # within one decade: log minor ticks get labels


def _claim(a: str, n: str, delta: float) -> dict:
    verdict = {"estimate": {"delta": delta}, "low": delta - 0.01, "high": delta + 0.01}
    return {"role": "helps", "a": a, "n": n, "budgets": {"converged": verdict}}


def _regularization_results(sizes=SIZES, size_all: int = 59000) -> dict:
    settings = ["dropout_s0.4_lr0.003", "weight_decay_s0.0001_lr0.003", "augment_s1_lr0.001",
                "all_x1_lr0.003"]  # fmt: skip
    claims = [_claim(s, n, 0.01 * k) for k, s in enumerate(settings) for n in [*sizes, "all"]]
    grid = [{"learning_rate": lr, "strength": s, "factor": None, "validation_accuracy": 0.9 - lr}
            for lr in (1e-3, 3e-3) for s in (0.1, 0.2, 0.4)]  # fmt: skip
    all_grid = [g | {"strength": None, "factor": g["strength"] * 10} for g in grid]
    tuning = {"grids": {"dropout": grid, "weight_decay": grid, "all": all_grid}}
    return {"dataset": "mnist", "train_size_all": size_all, "tuning": tuning,
            "analysis": {"claims": claims}}  # fmt: skip


@pytest.mark.parametrize(("sizes", "size_all"), [(SIZES, 59000), (SMALL_N, 450)])
def test_regularization_gain_vs_size(sizes, size_all):
    fig = regularization_report.plot_gain_vs_size(_regularization_results(sizes, size_all))
    assert_reads_well(fig, "mnist", "converged")
    legend_text = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "all_x1: all regularizers, strength x1" in legend_text
    assert not [t for t in fig.axes[0].xaxis.get_minorticklabels() if t.get_text()]


def test_regularization_tuning():
    fig = regularization_report.plot_tuning(_regularization_results()["tuning"], "mnist")
    assert_reads_well(fig, "mnist")
    assert "%" in _ylabels(fig)


# Anatomy ------------------------------------------------------------------------------------


def _anatomy_exp() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({
        "stride": {"strides": (1, 2), "depth": 2, "kernel": 3},
        "depth": {"depths": (1, 3, 7), "same_only_depths": (13,), "large_kernel": 7,
                  "large_depths": (1, 3)},
        "border": {"paddings": ("SAME", "VALID")},
    })  # fmt: skip


def _fake_correct(rows, split: str = "test") -> np.ndarray:
    p = 0.8 + 0.15 * _seeded(rows[0]["variant"] + split).random()
    return (_seeded(rows[0]["variant"]).random((3, 200)) < p).astype(np.int8)


def test_anatomy_hyperparameters(monkeypatch, tmp_path):
    from experiments.anatomy import variants

    monkeypatch.setattr(anatomy_plots.report, "correct_sn", _fake_correct)
    exp = _anatomy_exp()
    names = {
        "stride": ["stride1_flatten", "stride1_gap", "stride2_flatten", "stride2_gap",
                   "stride2_flatten_matched"],
        "kernels": [variants.kernel_name(f, k) for f in (5, 7) for k in ("stack", "params")],
        "depth": [variants.depth_name(k, p, d) for k, p in ((3, "SAME"), (3, "VALID"), (7, "VALID"))
                  for d in (1, 3, 7, 13)],
        "border": ["border_same", "border_valid"],
    }  # fmt: skip
    by_part = {part: dict.fromkeys(ns) for part, ns in names.items()}
    everything = [n for ns in names.values() for n in ns]
    groups = {b: {n: [{"variant": n, "seed": 0}] for n in everything} for b in ("1x", "3x")}
    fig = anatomy_plots.hyperparameters_figure(
        exp, by_part, set(everything), groups, 28, tmp_path / "h.png", "digits"
    )
    assert_reads_well(fig, "digits", "1x")
    assert (tmp_path / "h.png").exists()


def test_anatomy_activation_curves(tmp_path):
    steps = np.arange(0, 500, 50)
    curves = {a: [{"step": steps, "accuracy": 1 - np.exp(-steps / (100 + 50 * i))}] * 2
              for i, a in enumerate(("relu", "tanh", "gelu"))}  # fmt: skip
    fig = anatomy_plots.curves_figure(curves, 0.75, tmp_path / "c.png", "digits, 3x")
    assert_reads_well(fig, "digits", "3x")
    assert "%" in _ylabels(fig)


# Pictures of what a CNN computes ------------------------------------------------------------


def test_top_activating_images_title_clear_of_labels():
    images = _seeded("img").integers(0, 255, (9, 12, 12, 1)).astype(np.uint8)
    titles = [f"{k} | {s:.2f}" for k, s in enumerate(np.linspace(3, 1, 9))]
    fig = visualize.images_figure(
        images,
        titles,
        title="block2/act channel 0: top 9 test "
        "images\neach: true label | max of the channel's map",
    )
    assert_reads_well(fig, "top 9")
    used = [ax for ax in fig.axes if ax.images]
    assert len(used) == len(fig.axes)  # no empty panels left over


def test_feature_maps_have_colour_bars():
    rng = _seeded("maps")
    maps = {
        "input": rng.random((1, 12, 12, 1)),
        "block0/conv": rng.normal(size=(1, 10, 10, 4)),
        "block0/act": rng.random((1, 10, 10, 4)),
        "block1/act": rng.random((1, 4, 4, 8)),
    }
    notes = {"block0/act": "RF 3, jump 1"}
    fig = visualize.feature_maps_figure(maps, 0, max_channels=6, notes=notes, title="m: image 0")
    assert_reads_well(fig, "image 0")
    assert sum(hasattr(ax, "_colorbar") for ax in fig.axes) == len(maps)


def test_filter_grid_figure():
    kernel = _seeded("k").normal(size=(3, 3, 1, 8))
    assert_reads_well(visualize.filter_grid_figure(kernel, "tiny block0 filters"), "block0")


@pytest.mark.parametrize("bad", ["overlap", "no_label", "outside", "hidden"])
def test_layout_problems_catches_each_defect(bad):
    fig, ax = plots.figure()
    ax.plot([0, 1], [0, 1], label="a")
    ax.set(xlabel="x", ylabel="y")
    if bad == "overlap":
        ax.text(0.5, 0.5, "one label")
        ax.text(0.5, 0.5, "another")
    elif bad == "no_label":
        ax.set_ylabel("")
    elif bad == "outside":
        fig.text(0.95, 0.5, "a long text that runs past the right edge")
    else:
        ax.plot([0, 1], [0, 1], label="b")
    assert plots.layout_problems(fig)
