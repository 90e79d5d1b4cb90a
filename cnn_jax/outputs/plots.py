"""Plot helpers every study uses, so no figure misleads.

- `variant_colors`: one distinct colour per variant, never reused within a figure;
- `interval_errorbar` / `interval_band`: points with asymmetric error bars, or curves with
  shaded bands, drawn from `cnn_jax.stats.Interval`s (or anything with estimate/low/high,
  e.g. the `as_dict()` form read back from JSON); with `bounds=(0, 1)` an interval that leaves
  them is an error, never silently clipped;
- `fit_ylim`: y-limits from everything drawn, so no variant is cut off;
- `legend`: entries only for series that were actually drawn (no empty legend box);
- `spelled`: legend labels that spell a variant name out ("d2_max: 2 max-pool downsamplings");
- `log_xaxis`: a log x-axis ticked at the data's own values, no unreadable minor labels;
- `layout_problems`: what a reader would trip over (overlapping text, an unlabelled axis,
  text cut off at the figure's edge, an empty panel); the figure tests assert it is empty.

Figures are built on matplotlib's Agg canvas (`figure`), with no pyplot global state.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

ACCURACY_BOUNDS = (0.0, 1.0)
PERCENT = 100.0  # tables print accuracies in percent; so do the figures
_MAX_LOG_TICKS = 8
# Beyond tab20: a perceptually ordered colormap sampled evenly (Matplotlib's own, no extra dep).
_MANY_COLORS_CMAP = "turbo"
_MAX_COLORS = 256
_TOL = 1e-9  # float round-off in an interval's ends (e.g. Wilson at k = 0 or k = n)


def variant_colors(names: Sequence[str]) -> dict[str, str]:
    """Name -> hex colour, all distinct: tab10 up to 10 names, tab20 up to 20, else `turbo`.

    Colours follow the order of `names`, so the same list gives the same colours in every
    figure of a study. A repeated name is an error (it would share a colour with itself).
    """
    names = list(names)
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"names: {repeated} appear more than once; give each variant once")
    n = len(names)
    if n > _MAX_COLORS:
        raise ValueError(f"names: {n} variants; at most {_MAX_COLORS} distinct colours per figure")
    if n <= 10:
        colors = list(matplotlib.colormaps["tab10"].colors)[:n]
    elif n <= 20:
        colors = list(matplotlib.colormaps["tab20"].colors)[:n]
    else:
        cmap = matplotlib.colormaps[_MANY_COLORS_CMAP].resampled(_MAX_COLORS)
        colors = [cmap(i) for i in np.linspace(0, _MAX_COLORS - 1, n).round().astype(int)]
    return dict(zip(names, (to_hex(c) for c in colors), strict=True))


def _triples(intervals: Sequence[Any]) -> np.ndarray:
    """[n, 3] float array of (estimate, low, high) from Intervals or mappings with those keys."""
    rows = []
    for item in intervals:
        if item is None:
            rows.append((math.nan,) * 3)
        elif isinstance(item, Mapping):
            rows.append((item["estimate"], item["low"], item["high"]))
        else:
            rows.append((item.estimate, item.low, item.high))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 3)


def _checked(x: Sequence[Any], intervals: Sequence[Any], bounds) -> tuple[np.ndarray, np.ndarray]:
    """x and (estimate, low, high) with the rows that have no estimate dropped; validated."""
    est_lh = _triples(intervals)
    x = np.asarray(x)
    if len(x) != len(est_lh):
        raise ValueError(f"x: {len(x)} positions for {len(est_lh)} intervals; give one each")
    keep = np.isfinite(est_lh).all(axis=1)
    x, est_lh = x[keep], est_lh[keep]
    est, low, high = est_lh.T
    if np.any(low > est + _TOL) or np.any(high < est - _TOL):
        raise ValueError(
            "intervals: an interval does not contain its estimate (low <= estimate <= high)"
        )
    if bounds is not None and (np.any(low < bounds[0] - _TOL) or np.any(high > bounds[1] + _TOL)):
        worst = float(min(low.min(), bounds[0])), float(max(high.max(), bounds[1]))
        raise ValueError(
            f"intervals: span [{worst[0]:.3g}, {worst[1]:.3g}] leaves bounds {list(bounds)}; "
            "use a bounded interval (stats.hierarchical_bootstrap or stats.wilson)"
        )
    return x, est_lh


def interval_errorbar(
    ax: Axes,
    x: Sequence[Any],
    intervals: Sequence[Any],
    *,
    label: str | None,
    color: str,
    bounds: tuple[float, float] | None = None,
    scale: float = 1.0,
    **kwargs: Any,
):
    """Points at the estimates with asymmetric error bars to low/high; returns the container.

    Intervals that are None or NaN are not drawn (and, with nothing left, neither is the
    label). `bounds=ACCURACY_BOUNDS` checks every interval lies in [0, 1] (before `scale`,
    e.g. `scale=100` to draw percent).
    """
    x, est_lh = _checked(x, intervals, bounds)
    est, low, high = scale * est_lh.T
    kwargs.setdefault("marker", "o")
    kwargs.setdefault("capsize", 3)
    kwargs.setdefault("linestyle", "none")
    return ax.errorbar(
        x, est, yerr=np.maximum(np.stack([est - low, high - est]), 0.0), color=color,
        label=label if len(est) else None, **kwargs,
    )  # fmt: skip


def interval_band(
    ax: Axes,
    x: Sequence[Any],
    intervals: Sequence[Any],
    *,
    label: str | None,
    color: str,
    bounds: tuple[float, float] | None = None,
    scale: float = 1.0,
    alpha: float = 0.15,
    **kwargs: Any,
):
    """A line through the estimates with a shaded band from low to high; returns (line, band)."""
    x, est_lh = _checked(x, intervals, bounds)
    est, low, high = scale * est_lh.T
    (line,) = ax.plot(x, est, color=color, label=label if len(est) else None, **kwargs)
    band = ax.fill_between(x, low, high, color=color, alpha=alpha, linewidth=0)
    return line, band


def _drawn_y(ax: Axes) -> np.ndarray:
    """Every finite y value of the lines, error bars and bands on `ax`."""
    ys = [np.asarray(line.get_ydata(), dtype=np.float64).ravel() for line in ax.lines]
    for coll in ax.collections:
        if isinstance(coll, PathCollection):  # scatter: markers sit at the data offsets
            ys.append(np.asarray(coll.get_offsets(), dtype=np.float64).reshape(-1, 2)[:, 1])
        else:  # error bar lines, fill_between bands: vertices in data coordinates
            ys += [path.vertices[:, 1] for path in coll.get_paths()]
    ys += [np.array([p.get_y(), p.get_y() + p.get_height()]) for p in ax.patches]
    y = np.concatenate(ys) if ys else np.empty(0)
    return y[np.isfinite(y)]


def fit_ylim(
    ax: Axes, *, bounds: tuple[float, float] | None = None, margin: float = 0.05
) -> tuple[float, float]:
    """Sets y-limits that show everything drawn (plus `margin` of the range), within `bounds`.

    With `bounds=ACCURACY_BOUNDS` the axis never goes below 0 or above 1, and still shows every
    variant. Returns the limits set.
    """
    y = _drawn_y(ax)
    if y.size == 0:
        return ax.get_ylim()
    lo, hi = float(y.min()), float(y.max())
    pad = margin * (hi - lo) if hi > lo else max(abs(hi) * margin, 1e-3)
    lo, hi = lo - pad, hi + pad
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    ax.set_ylim(lo, hi)
    return lo, hi


def _has_data(artist: Any) -> bool:
    """False for a series with no finite point (nothing visible was drawn for it)."""
    if hasattr(artist, "get_ydata"):
        return bool(np.isfinite(np.asarray(artist.get_ydata(), dtype=np.float64)).any())
    if hasattr(artist, "lines"):  # an ErrorbarContainer: (data line, caps, bar collections)
        data_line, _, bars = artist.lines
        if data_line is not None:
            return _has_data(data_line)
        return any(len(c.get_segments()) for c in bars)
    return True


def legend(ax: Axes, **kwargs: Any):
    """A legend of the labelled series that were drawn (one entry per label, in drawing
    order); None, and no legend box, when there are none."""
    handles, labels = ax.get_legend_handles_labels()
    order = {id(a): i for i, a in enumerate(ax.get_children())}

    def drawn_at(pair: tuple[Any, str]) -> int:  # matplotlib lists error bars last
        artist = pair[0].lines[0] if hasattr(pair[0], "lines") else pair[0]
        return order.get(id(artist), len(order))

    seen: dict[str, Any] = {}
    for handle, label in sorted(zip(handles, labels), key=drawn_at):
        if label not in seen and _has_data(handle):
            seen[label] = handle
    if not seen:
        return None
    return ax.legend(list(seen.values()), list(seen), **kwargs)


def figure(nrows: int = 1, ncols: int = 1, *, figsize=(6.4, 4.0), **kwargs: Any):
    """A Figure on the Agg canvas and its axes (`squeeze`d like `plt.subplots`)."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save(fig: Figure, path: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Writes `fig` as PNG via a temp file and rename (a killed run leaves no half image)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=dpi)
    os.replace(tmp, path)
    return path


def spelled(names: Sequence[str], describe: Callable[[str], str]) -> dict[str, str]:
    """Name -> legend label '<name>: <one-line description>' (the tables' description)."""
    return {name: f"{name}: {describe(name)}" for name in names}


def title(*parts: Any) -> str:
    """A figure title from its non-empty parts (e.g. what, dataset, budget), joined by ' | '."""
    return " | ".join(str(p) for p in parts if p not in (None, ""))


def log_xaxis(ax: Axes, values: Sequence[float]) -> None:
    """Log x-axis with major ticks at (at most 8 of) the data's values, labelled plainly,
    and no minor tick labels (at small n they crowd into each other)."""
    ticks = sorted({float(v) for v in values if v and math.isfinite(float(v)) and v > 0})
    step = max(1, math.ceil(len(ticks) / _MAX_LOG_TICKS))
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks[::step]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())


def _drawn_ticklabels(ax: Axes) -> list[Text]:
    """The tick labels a draw shows (ticks inside the view, label visible and non-empty)."""
    out = []
    for axis in (ax.xaxis, ax.yaxis):
        for tick in axis._update_ticks():  # the ticks `Axis.draw` draws
            out += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    return out


def _texts(fig: Figure) -> list[Text]:
    """Every visible, non-empty text a draw of `fig` shows."""
    found = list(fig.texts)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        found += [*ax.texts, ax.title, ax._left_title, ax._right_title]
        if ax.axison:
            found += [ax.xaxis.label, ax.yaxis.label, *_drawn_ticklabels(ax)]
            found += [ax.xaxis.get_offset_text(), ax.yaxis.get_offset_text()]
        if ax.get_legend() is not None:
            found += [*ax.get_legend().get_texts(), ax.get_legend().get_title()]
    if fig.legends:
        found += [t for leg in fig.legends for t in leg.get_texts()]
    return [t for t in found if t.get_visible() and t.get_text().strip()]


def _is_image_panel(ax: Axes) -> bool:
    return bool(ax.images) and not ax.lines and not ax.collections


def _is_colorbar(ax: Axes) -> bool:
    return hasattr(ax, "_colorbar")


def _label_problems(fig: Figure) -> list[str]:
    """Unlabelled axes: a plot needs an x and a y label (or the figure's sup-labels); a colour
    bar needs its label; an image panel may go without (its title or row label names it);
    a panel with nothing drawn should not be there."""
    sup_x = fig._supxlabel is not None and fig._supxlabel.get_text().strip()
    sup_y = fig._supylabel is not None and fig._supylabel.get_text().strip()
    out = []
    for i, ax in enumerate(fig.axes):
        name = f"axes {i} ({ax.get_title() or ax.get_label() or 'untitled'})"
        if _is_colorbar(ax):
            long = ax.yaxis if ax._colorbar.orientation == "vertical" else ax.xaxis
            if not long.label.get_text().strip():
                out.append(f"{name}: colour bar without a label")
            continue
        if not ax.get_visible() or _is_image_panel(ax):
            continue
        if not (ax.lines or ax.collections or ax.patches or ax.texts or ax.images):
            out.append(f"{name}: empty panel (nothing drawn); remove it")
            continue
        if not (ax.get_xlabel().strip() or sup_x):
            out.append(f"{name}: no x label")
        if not (ax.get_ylabel().strip() or sup_y):
            out.append(f"{name}: no y label")
    return out


def _hidden_lines(fig: Figure) -> list[str]:
    """Legend lines drawn over an earlier one through the very same points (it vanishes)."""
    out = []
    for ax in fig.axes:
        shown = [ln for ln in ax.lines if ln.get_visible() and len(ln.get_xdata()) > 1
                 and not ln.get_label().startswith("_")]  # fmt: skip
        for i, a in enumerate(shown):
            for b in shown[i + 1 :]:
                xa, xb = np.asarray(a.get_xydata()), np.asarray(b.get_xydata())
                if xa.shape == xb.shape and np.allclose(xa, xb, equal_nan=True):
                    out.append(f"line {b.get_label()!r} hides {a.get_label()!r} (same points)")
    return out


def _inside(box: Any, outer: Any) -> bool:
    return outer.contains(box.x0, box.y0) and outer.contains(box.x1, box.y1)


def layout_problems(fig: Figure, *, tolerance_px: float = 1.0) -> list[str]:
    """One line per defect a reader would see: two texts overlapping, an axes without its
    labels (`_label_problems`), a text or the figure's tight box reaching past its edge, a
    line hidden under an identical one."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = _texts(fig)
    boxes = [t.get_window_extent(renderer).expanded(1, 1) for t in texts]
    shrunk = [b.padded(-tolerance_px) for b in boxes]
    out = []
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if shrunk[i].overlaps(shrunk[j]):
                out.append(f"text {texts[i].get_text()!r} overlaps {texts[j].get_text()!r}")
    edge = fig.bbox.padded(tolerance_px)
    out += [f"text {t.get_text()!r} falls outside the figure"
            for t, box in zip(texts, boxes) if not _inside(box, edge)]  # fmt: skip
    tight = fig.get_tightbbox(renderer)
    if tight is not None and not _inside(tight, fig.bbox_inches.padded(tolerance_px / fig.dpi)):
        out.append(f"tight bbox {tight.bounds} leaves the figure {fig.bbox_inches.bounds}")
    return out + _label_problems(fig) + _hidden_lines(fig)
