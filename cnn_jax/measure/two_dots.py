"""The seed notes' two-dots picture, measured: when does repeated pooling merge two dots?

A feature map holds two unit dots `distance` pixels apart in one row. Repeated 2x2 stride-2
pooling (the project's own `layers.Pool`) shrinks it; the dots stay distinguishable while the
map keeps two separate peaks (regional maxima with a valley between them; a plateau or a
shoulder counts once). Where the pair sits relative to the pooling grid (its phase) changes
the answer, so every phase is tried.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from cnn_jax.config.checks import check_choice
from cnn_jax.nn import pool_kinds
from cnn_jax.nn.layers import Pool

# Every registered kind that pools at all (`none` applies no window, so it never merges).
POOL_KINDS = tuple(
    name for name, kind in pool_kinds.POOL_KINDS.items() if kind.windows(2, 2, 3, "VALID")
)


def _padding(name: str) -> str:
    """Kinds with a pooling window use the textbook VALID 2x2 window; a blur-only kind pads
    (SAME) so sizes halve exactly. Unknown kinds and `none` are a one-line ValueError."""
    check_choice("kind", name, POOL_KINDS)
    return "VALID" if pool_kinds.POOL_KINDS[name].window_must_fit else "SAME"


def two_dots_map(size: int, distance: int, col: int, row: int | None = None) -> np.ndarray:
    """[size, size] float32 zeros with ones at (row, col) and (row, col + distance)."""
    row = size // 2 if row is None else row
    if distance < 1 or not 0 <= col < col + distance < size or not 0 <= row < size:
        raise ValueError(
            f"distance: dots at columns {col} and {col + distance} (row {row}) do not fit; "
            f"allowed: 0 <= col < col + distance < size={size}, distance >= 1"
        )
    map_hw = np.zeros((size, size), np.float32)
    map_hw[row, [col, col + distance]] = 1.0
    return map_hw


@functools.lru_cache(maxsize=32)
def _jitted_pool(kind: str, blur_size: int):
    """One jitted 2x2 stride-2 pooling per kind: one compile per map shape, not one per op."""
    pool = Pool(kind=kind, window=2, stride=2, padding=_padding(kind), blur_size=blur_size)
    return jax.jit(lambda x_bhwc: pool.apply({}, x_bhwc))


def _pool_levels(maps_bhw: np.ndarray, kind: str, levels: int, blur_size: int) -> list:
    """[maps, pooled once, ..., pooled `levels` times] for a batch of maps [B, H, W]."""
    pool = _jitted_pool(kind, int(blur_size))
    x_bhwc = jnp.asarray(maps_bhw, jnp.float32)[..., None]
    out = [np.asarray(maps_bhw, np.float32)]
    for _ in range(levels):
        if min(x_bhwc.shape[1:3]) < 2:
            raise ValueError(
                f"levels: {levels} poolings shrink a {maps_bhw.shape[1:]} map below 1x1"
            )
        x_bhwc = pool(x_bhwc)
        out.append(np.asarray(x_bhwc[..., 0]))
    return out


def pool_sequence(map_hw: np.ndarray, kind: str, levels: int, blur_size: int = 3) -> list:
    """[map, pooled once, ..., pooled `levels` times] with 2x2 stride-2 pooling of `kind`."""
    return [m[0] for m in _pool_levels(np.asarray(map_hw)[None], kind, levels, blur_size)]


def count_peaks(map_hw: np.ndarray, rtol: float = 1e-5) -> int:
    """Number of regional maxima above zero: plateaus (8-connected, equal values up to
    `rtol` x max) whose every neighbour is strictly lower. Two dots are told apart while a
    valley separates them, so two peaks remain; a shoulder or a shared plateau counts once."""
    peak = float(np.max(map_hw))
    if peak <= 0:
        return 0
    levels = np.round(np.asarray(map_hw, np.float64) / (rtol * peak))
    eight = np.ones((3, 3), bool)
    candidates = (ndimage.maximum_filter(levels, footprint=eight, mode="nearest") == levels) & (
        levels > 0
    )
    labels, count = ndimage.label(candidates, structure=eight)
    peaks = 0
    for k in range(1, count + 1):
        plateau = labels == k
        ring = ndimage.binary_dilation(plateau, structure=eight) & ~plateau
        value = levels[plateau].max()
        peaks += int(not ring.any() or levels[ring].max() < value)
    return peaks


def poolings_to_merge(maps: Sequence[np.ndarray]) -> int | None:
    """First pooling level at which fewer than two peaks remain (None: still two at the end)."""
    for level, map_hw in enumerate(maps):
        if count_peaks(map_hw) < 2:
            return level
    return None


def merge_table(
    distances: Sequence[int],
    kinds: Sequence[str] = POOL_KINDS,
    levels: int = 5,
    blur_size: int = 3,
) -> list[dict[str, Any]]:
    """For each kind and distance: poolings until the dots merge, over all 2^levels phases.

    Rows: {kind, distance, min, mean, max, never} where min/mean/max are over the phases that
    merged within `levels` poolings and `never` counts phases still distinguishable at the end.
    The map is large enough that no dot comes near its border.
    """
    period, margin = 2**levels, 2 ** max(levels - 1, 1)
    size = period * -(-(2 * margin + period + max(distances)) // period)
    rows = []
    for kind in kinds:
        for d in distances:
            maps = np.stack([two_dots_map(size, d, margin + p) for p in range(period)])
            pooled = _pool_levels(maps, kind, levels, blur_size)
            merged, never = [], 0
            for phase in range(period):
                level = poolings_to_merge([m[phase] for m in pooled])
                if level is None:
                    never += 1
                else:
                    merged.append(level)
            stats = (min(merged), float(np.mean(merged)), max(merged)) if merged else (None,) * 3
            rows.append(
                {
                    "kind": kind,
                    "distance": int(d),
                    "min": stats[0],
                    "mean": stats[1],
                    "max": stats[2],
                    "never": never,
                }
            )
    return rows


# Legend and row words of each pooling kind (2x2 windows, stride 2, as `merge_table` pools).
_KIND_WORDS = {
    "max": "max pooling 2x2, stride 2",
    "avg": "average pooling 2x2, stride 2",
    "blur": "blur {b}x{b}, stride 2 (no max)",
    "max_blur": "MaxBlurPool: max 2x2 stride 1, blur {b}x{b} stride 2 (Zhang 2019)",
}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_STYLES = ("-", "--", "-.", ":")
_OFFSET = 0.06  # sideways offset on the log2 axis, +-, so coinciding kinds stay visible


def describe_kind(kind: str, blur_size: int = 3) -> str:
    """One line saying what a pooling kind does (legend and row labels of `plot_two_dots`)."""
    check_choice("kind", kind, POOL_KINDS)
    return _KIND_WORDS.get(kind, kind).format(b=int(blur_size))


def _map_panels(fig, grid, distance: int, kinds, size: int, levels: int, col: int, blur: int):
    """One row per kind: the map and each pooled level, every panel on its own scale (0 to
    its maximum: avg pooling shrinks the values, the peaks are what is compared); returns the
    last image (for the colour bar) and the image axes."""
    image, axes = None, []
    for r, kind in enumerate(kinds):
        maps = pool_sequence(two_dots_map(size, distance, col), kind, levels, blur)
        for level, map_hw in enumerate(maps):
            ax = fig.add_subplot(grid[r, level])
            top = float(map_hw.max()) or 1.0
            image = ax.imshow(map_hw / top, cmap="magma", vmin=0.0, vmax=1.0,
                              interpolation="nearest")  # fmt: skip
            peaks = count_peaks(map_hw)
            plural = "" if peaks == 1 else "s"
            ax.set_title(f"{map_hw.shape[0]}x{map_hw.shape[1]}: {peaks} peak{plural}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            if level == 0:
                ax.set_ylabel(textwrap.fill(f"{kind}: {describe_kind(kind, blur)}", 20),
                              fontsize=7)  # fmt: skip
            axes.append(ax)
    return image, axes


def _merge_curves(ax, table: Sequence[dict[str, Any]], kinds, blur: int) -> None:
    """Poolings until merged against the distance, one series per kind: its own colour,
    marker and dash, and a small sideways offset, so identical series stay visible."""
    from cnn_jax.outputs import plots

    colors = plots.variant_colors(list(kinds))
    shifts = np.linspace(-_OFFSET, _OFFSET, len(kinds)) if len(kinds) > 1 else [0.0]
    for i, kind in enumerate(kinds):
        rows = [row for row in table if row["kind"] == kind and row["mean"] is not None]
        if not rows:
            continue
        d = np.array([row["distance"] for row in rows], float) * 2.0 ** shifts[i]
        style = {"marker": _MARKERS[i % len(_MARKERS)], "ms": 8 - 1.2 * (i % 4),
                 "linestyle": _STYLES[i % len(_STYLES)], "zorder": 3 + i}  # fmt: skip
        ax.plot(d, [row["mean"] for row in rows], color=colors[kind],
                label=f"{kind}: {describe_kind(kind, blur)}", **style)  # fmt: skip
        ax.fill_between(d, [row["min"] for row in rows], [row["max"] for row in rows],
                        color=colors[kind], alpha=0.12, linewidth=0)  # fmt: skip
    plots.log_xaxis(ax, [row["distance"] for row in table])
    ax.set(xlabel="distance between the dots (pixels)", ylabel="2x2 poolings until merged")
    ax.set_title("mean over the pair's phase; band: min-max", fontsize=8)
    ax.grid(alpha=0.3)
    plots.legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)


def plot_two_dots(
    distance: int,
    table: Sequence[dict[str, Any]],
    kinds: Sequence[str] = POOL_KINDS,
    size: int = 32,
    levels: int = 4,
    col: int | None = None,
    context: str = "",
    blur_size: int = 3,
):
    """Figure: the pooled maps of one dot pair per kind (rows) and level (columns), and the
    number of poolings until the dots merge against their distance (from `merge_table`).

    Read at a glance, as the study figures (`cnn_jax.outputs.plots`): each kind spelled out
    (`describe_kind`) in its row label and legend; every series visible (own colour, marker,
    dash, small offset); the distance axis ticked at the tabled distances; one labelled colour
    bar for the maps; `context` (e.g. the dataset and budget of learned layers) in the title.
    The y axis counts poolings, as the study's two-dots table does.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from cnn_jax.outputs import plots

    col = size // 2 - distance // 2 if col is None else col
    fig = Figure(figsize=(1.7 * (levels + 1) + 7.5, 1.9 * len(kinds) + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(kinds), levels + 2, width_ratios=[1] * (levels + 1) + [3.2])
    image, map_axes = _map_panels(fig, grid, distance, kinds, size, levels, col, blur_size)
    bar = fig.colorbar(image, ax=map_axes, shrink=0.6, location="bottom", aspect=40)
    bar.set_label("value / the panel's maximum", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    _merge_curves(fig.add_subplot(grid[:, -1]), table, kinds, blur_size)
    what = f"Two dots {distance} px apart under repeated 2x2 pooling"
    fig.suptitle(plots.title(what, context), fontsize=10)
    return fig


def learned_merge_table(
    predict_fn: Any,
    variables: Any,
    canvas: int,
    distances: Sequence[int],
    layers: Sequence[str],
    channels: int = 1,
) -> list[dict[str, Any]]:
    """The two-dots test through a trained network's own layers instead of raw-pixel pooling.

    Two white pixels `distance` apart on the middle row of a black `canvas` image go through
    the network (`predict_fn(variables, x_bhwc) -> (logits, intermediates)`, raw 0..255
    input); at each of `layers` (in depth order) the response map is the channel norm of
    f(dots) - f(blank). Rows as `merge_table`, with kind 'learned' and the level counted in
    `layers`: the first layer at which fewer than two peaks remain, over every phase of the
    pair relative to an 8-pixel grid (None in min/mean/max when no phase merged).
    """
    period, rows = 8, []
    for d in distances:
        cols = [canvas // 2 - d // 2 - period // 2 + p for p in range(period)]
        x = np.stack([two_dots_map(canvas, d, c) for c in cols]) * 255.0
        x_bhwc = np.repeat(x[..., None], channels, axis=-1).astype(np.float32)
        blank = np.zeros_like(x_bhwc[:1])
        _, inter = predict_fn(variables, jnp.asarray(np.concatenate([blank, x_bhwc])))
        maps = [  # layers the net lacks (fewer pooling stages) are skipped
            np.linalg.norm(np.asarray(inter[n][1:]) - np.asarray(inter[n][:1]), axis=-1)
            for n in layers
            if n in inter
        ]
        merged = [poolings_to_merge([m[p] for m in maps]) for p in range(period)]
        done = [m for m in merged if m is not None]
        stats = (min(done), float(np.mean(done)), max(done)) if done else (None,) * 3
        rows.append(
            {"kind": "learned", "distance": int(d), "min": stats[0], "mean": stats[1],
             "max": stats[2], "never": len(merged) - len(done)}
        )  # fmt: skip
    return rows
