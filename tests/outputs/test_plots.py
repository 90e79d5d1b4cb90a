"""cnn_jax.outputs.plots: distinct colours, bounded interval bars and bands, y-limits, legends."""

from __future__ import annotations

import dataclasses

import matplotlib.image
import numpy as np
import pytest
from matplotlib.colors import to_rgb

from cnn_jax import stats
from cnn_jax.outputs import plots


@dataclasses.dataclass(frozen=True)
class _Interval:  # the fields of the cnn_jax.stats.Interval contract
    estimate: float
    low: float
    high: float


def _wilson(k: int, n: int, z: float = 1.959964) -> _Interval:
    """Wilson score interval (Wilson 1927), written out here so the test needs no stats module."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return _Interval(p, centre - half, centre + half)


@pytest.mark.parametrize("n", [3, 10, 15, 20, 25, 60])
def test_variant_colors_distinct(n):
    names = [f"v{i}" for i in range(n)]
    colors = plots.variant_colors(names)
    assert list(colors) == names
    rgb = np.array([to_rgb(c) for c in colors.values()])
    assert len(set(colors.values())) == n
    gaps = np.abs(rgb[:, None] - rgb[None]).max(-1) + np.eye(n)
    assert gaps.min() > 0.01  # visibly different, not just different hex strings
    assert plots.variant_colors(names) == colors  # deterministic


def test_variant_colors_rejects_repeats():
    with pytest.raises(ValueError, match=r"\['a'\] appear more than once"):
        plots.variant_colors(["a", "b", "a"])


def test_errorbars_stay_in_unit_interval_and_match_intervals():
    fig, ax = plots.figure()
    # extreme accuracies (0/n and n/n) are where a t-interval leaves [0, 1]
    intervals = [_wilson(k, 30) for k in (0, 1, 15, 29, 30)]
    bars = plots.interval_errorbar(
        ax, range(5), intervals, label="a", color="C0", bounds=plots.ACCURACY_BOUNDS
    )
    (segments,) = [c.get_segments() for c in bars.lines[2]]
    ys = np.array([[seg[0][1], seg[1][1]] for seg in segments])
    np.testing.assert_allclose(ys, [[iv.low, iv.high] for iv in intervals])
    assert ys.min() >= 0.0 and ys.max() <= 1.0
    low, high = plots.fit_ylim(ax, bounds=plots.ACCURACY_BOUNDS)
    assert low >= 0.0 and high <= 1.0
    # a t-interval like the old README's 0.987 [0.971, 1.003] is refused, not clipped
    with pytest.raises(ValueError, match=r"leaves bounds \[0.0, 1.0\]"):
        plots.interval_errorbar(
            ax, [0], [_Interval(0.987, 0.971, 1.003)], label="t", color="C1", bounds=(0.0, 1.0)
        )


def test_band_from_mappings_and_bounds():
    fig, ax = plots.figure()
    rows = [{"estimate": 0.5, "low": 0.4, "high": 0.6}, {"estimate": 0.9, "low": 0.8, "high": 1.0}]
    line, band = plots.interval_band(ax, [0, 1], rows, label="x", color="C0", bounds=(0, 1))
    np.testing.assert_allclose(line.get_ydata(), [0.5, 0.9])
    pct, _ = plots.interval_band(ax, [0, 1], rows, label="p", color="C2", bounds=(0, 1), scale=100)
    np.testing.assert_allclose(pct.get_ydata(), [50.0, 90.0])
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(0.4) and ys.max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="contain its estimate"):
        plots.interval_band(ax, [0], [_Interval(0.5, 0.6, 0.7)], label="y", color="C1")
    with pytest.raises(ValueError, match="2 positions for 1 intervals"):
        plots.interval_band(ax, [0, 1], [_Interval(0.5, 0.4, 0.7)], label="y", color="C1")


def test_fit_ylim_shows_every_variant():
    fig, ax = plots.figure()
    plots.interval_errorbar(ax, [0, 1], [_wilson(29, 30), _wilson(28, 30)], label="a", color="C0")
    plots.interval_errorbar(ax, [2], [_wilson(5, 30)], label="weak", color="C1")
    ax.set_ylim(0.9, 1.0)  # a hand-set limit that would hide the weak variant
    low, high = plots.fit_ylim(ax, bounds=plots.ACCURACY_BOUNDS)
    assert low <= _wilson(5, 30).low and high >= _wilson(29, 30).high
    assert ax.get_ylim() == (low, high)


def test_legend_only_for_drawn_series(tmp_path):
    fig, ax = plots.figure()
    colors = plots.variant_colors(["a", "b", "c", "d"])
    plots.interval_errorbar(ax, [0], [_wilson(20, 30)], label="a", color=colors["a"])
    plots.interval_errorbar(ax, [0, 1], [None, None], label="b", color=colors["b"])  # no data
    nan = _Interval(np.nan, np.nan, np.nan)
    plots.interval_band(ax, [0, 1], [nan, nan], label="c", color=colors["c"])  # no data
    plots.interval_band(ax, [0, 1], [_wilson(1, 3), _wilson(2, 3)], label="d", color=colors["d"])
    ax.plot([0, 1], [np.nan, np.nan], label="e")  # an all-NaN line
    plots.interval_errorbar(ax, [1], [_wilson(3, 9)], label="f", color="C5", fmt="none")
    ax.plot([0, 1], [0.5, 0.5], label="a")  # same label twice: one entry
    leg = plots.legend(ax)
    assert [t.get_text() for t in leg.get_texts()] == ["a", "d", "f"]
    path = plots.save(fig, tmp_path / "f.png")
    assert matplotlib.image.imread(path).ndim == 3
    assert not list(tmp_path.glob(".*.tmp"))


def test_no_legend_without_labels():
    fig, ax = plots.figure()
    ax.plot([0, 1], [0, 1])
    assert plots.legend(ax) is None and ax.get_legend() is None


def test_with_stats_intervals():
    """Real intervals; wilson(30, 30) has high = 1 - 2**-53 < estimate = 1 (round-off)."""
    rng = np.random.default_rng(0)
    scores = [(rng.random((3, 200)) < p).astype(np.uint8) for p in (0.995, 0.9, 0.5)]
    intervals = [stats.hierarchical_bootstrap(s, n_boot=200, seed=0) for s in scores]
    intervals.append(stats.wilson(30, 30))
    fig, ax = plots.figure()
    bars = plots.interval_errorbar(
        ax, range(4), [iv.as_dict() for iv in intervals], label="v", color="C0", bounds=(0, 1)
    )
    ys = np.concatenate([np.asarray(seg)[:, 1] for seg in bars.lines[2][0].get_segments()])
    assert ys.min() >= 0.0 and ys.max() <= 1.0
    plots.interval_band(ax, range(4), intervals, label="w", color="C1", bounds=(0, 1))
