"""Pictures of what a CNN computes: filter grids, feature maps per layer, top images.

Every function returns the numbers it draws (numpy arrays) and, given a path, writes a PNG
with matplotlib's Agg canvas (no display, no pyplot global state). The feature-map panel
is the CNN Explainer view: one row per layer, one column per channel, input on top.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cnn_jax.nn.models import forward_order_key
from cnn_jax.steps import normalize


def _render(fig: Figure, path: str | Path | None) -> np.ndarray:
    """Draws the figure, writes it as PNG if asked, returns RGBA uint8 [H, W, 4]."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    return np.asarray(canvas.buffer_rgba()).copy()


def filter_grid(kernel_hwio: np.ndarray, ncols: int | None = None, gap: int = 1) -> np.ndarray:
    """First-layer filters as one RGB image [rows*(kh+gap)-gap, cols*(kw+gap)-gap, 3] in [0, 1].

    Each filter is scaled by its own max |weight| so 0.5 (grey) is a zero weight; 3 input
    channels show as colour, 1 as grey, any other count as the mean over input channels.
    Gaps are white.
    """
    kernel = np.asarray(kernel_hwio, np.float64)
    if kernel.ndim != 4:
        raise ValueError(f"kernel_hwio: shape {kernel.shape}; allowed: 4-D [kh, kw, C_in, C_out]")
    kh, kw, c_in, c_out = kernel.shape
    if c_in != 3:
        kernel = np.repeat(kernel.mean(axis=2, keepdims=True), 3, axis=2)
    ncols = ncols or math.ceil(math.sqrt(c_out))
    nrows = math.ceil(c_out / ncols)
    grid = np.ones((nrows * (kh + gap) - gap, ncols * (kw + gap) - gap, 3))
    for o in range(c_out):
        f = kernel[..., o]
        f = 0.5 + 0.5 * f / max(np.abs(f).max(), 1e-12)
        r, c = divmod(o, ncols)
        grid[r * (kh + gap) : r * (kh + gap) + kh, c * (kw + gap) : c * (kw + gap) + kw] = f
    return grid


def filter_grid_figure(kernel_hwio: np.ndarray, title: str = "first-layer filters") -> Figure:
    """The figure of `filter_grid` (each filter on its own scale, so no shared colour bar)."""
    grid = filter_grid(kernel_hwio)
    fig = Figure(figsize=(4, 4 * grid.shape[0] / grid.shape[1] + 0.5), dpi=100,
                 layout="constrained")  # fmt: skip
    ax = fig.add_subplot()
    ax.imshow(grid, interpolation="nearest")
    ax.set_title(f"{title} ({kernel_hwio.shape[0]}x{kernel_hwio.shape[1]}, grey = 0)", fontsize=9)
    ax.axis("off")
    return fig


def save_filter_grid(
    kernel_hwio: np.ndarray, path: str | Path | None = None, title: str = "first-layer filters"
) -> tuple[np.ndarray, np.ndarray]:
    """Draws `filter_grid`; returns (grid [.., .., 3], rendered RGBA)."""
    return filter_grid(kernel_hwio), _render(filter_grid_figure(kernel_hwio, title), path)


def feature_maps(model: nn.Module, variables: Mapping, x_bhwc: jax.Array) -> dict[str, np.ndarray]:
    """Every spatial intermediate [B, H, W, C] in forward order ('input', 'block0/conv', ...).

    The per-block aggregate key 'block{i}' (a copy of the block's last layer) is left out.
    """
    _, inter = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, jnp.asarray(x_bhwc))
    names = [n for n, v in inter.items() if v.ndim == 4 and (n == "input" or "/" in n)]
    return {name: np.asarray(inter[name]) for name in sorted(names, key=forward_order_key)}


def _row_scale(x_hwc: np.ndarray) -> tuple[str, float, float]:
    """(colormap, vmin, vmax) shared by a layer's channels: symmetric around 0 if signed."""
    lo, hi = float(x_hwc.min()), float(x_hwc.max())
    if lo < 0 < hi:
        bound = max(-lo, hi)
        return "RdBu_r", -bound, bound
    return "viridis", lo, hi


def _feature_row(fig: Figure, axes, name: str, x_hwc: np.ndarray, first: bool) -> None:
    """One layer's channels on one shared scale with its colour bar; unused panels removed."""
    channels = x_hwc.shape[-1]
    if name == "input" and channels == 3:
        lo, hi = float(x_hwc.min()), float(x_hwc.max())
        axes[0].imshow((x_hwc - lo) / max(hi - lo, 1e-12), interpolation="nearest")
        shown = 1
    else:
        cmap, vmin, vmax = _row_scale(x_hwc)
        shown = min(channels, len(axes))
        for c in range(shown):
            im = axes[c].imshow(x_hwc[..., c], cmap=cmap, vmin=vmin, vmax=vmax,
                                interpolation="nearest")  # fmt: skip
            if first or c == 0:
                axes[c].set_title(f"ch {c}", fontsize=7)
        bar = fig.colorbar(im, ax=list(axes), shrink=0.9, aspect=12, pad=0.01)
        bar.ax.tick_params(labelsize=6)
        bar.set_label("value", fontsize=6)
    for ax in axes[:shown]:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[shown:]:
        fig.delaxes(ax)


def feature_maps_figure(
    maps: Mapping[str, np.ndarray],
    index: int = 0,
    max_channels: int = 8,
    notes: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Figure:
    """The CNN Explainer view of one input: row per layer, first `max_channels` channels.

    Each row shares one colour scale, shown by the row's colour bar (symmetric around 0 when
    the layer has negative values), so channels of a layer are comparable. `notes` adds text
    per layer (e.g. the receptive field).
    """
    names = list(maps)
    if not names:
        raise ValueError("maps: empty; allowed: a dict of [B, H, W, C] arrays")
    ncols = min(max_channels, max(m.shape[-1] for m in maps.values()))
    fig = Figure(figsize=(1.3 * ncols + 2.4, 1.45 * len(names) + 0.5), dpi=90,
                 layout="constrained")  # fmt: skip
    axes = fig.subplots(len(names), ncols, squeeze=False)
    for r, name in enumerate(names):
        x_hwc = np.asarray(maps[name][index], np.float64)
        label = f"{name}\n{x_hwc.shape[0]}x{x_hwc.shape[1]}x{x_hwc.shape[-1]}"
        if notes and name in notes:
            label += f"\n{notes[name]}"
        axes[r, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
        _feature_row(fig, axes[r], name, x_hwc, r == 0)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_feature_maps(
    maps: Mapping[str, np.ndarray],
    index: int = 0,
    path: str | Path | None = None,
    max_channels: int = 8,
    notes: Mapping[str, str] | None = None,
    title: str | None = None,
) -> np.ndarray:
    """Draws `feature_maps_figure`; returns the rendered RGBA image."""
    return _render(feature_maps_figure(maps, index, max_channels, notes, title), path)


def channel_scores(
    model: nn.Module,
    variables: Mapping,
    images_uint8: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    layer: str,
    channel: int,
    batch_size: int = 256,
) -> np.ndarray:
    """How strongly each image drives one channel: the spatial max of its activation [N]."""

    @jax.jit
    def score(batch_uint8):
        _, inter = model.apply(variables, normalize(batch_uint8, mean, std), train=False)
        values = inter[layer][..., channel]
        return values.reshape(values.shape[0], -1).max(axis=1)

    _, inter = jax.eval_shape(
        lambda x: model.apply(variables, x, train=False),
        jax.ShapeDtypeStruct((1, *images_uint8.shape[1:]), jnp.float32),
    )
    if layer not in inter:
        raise ValueError(f"layer: {layer!r} unknown; allowed: {sorted(inter)}")
    if not 0 <= channel < inter[layer].shape[-1]:
        raise ValueError(f"channel: {channel}; allowed: 0..{inter[layer].shape[-1] - 1}")
    out = [
        np.asarray(score(jnp.asarray(images_uint8[i : i + batch_size])))
        for i in range(0, len(images_uint8), batch_size)
    ]
    return np.concatenate(out)


def top_activating(scores: np.ndarray, k: int = 9) -> np.ndarray:
    """Indices of the k highest scores, highest first (ties: lower index first)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    return order[:k]


def images_figure(
    images: np.ndarray,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    title: str | None = None,
) -> Figure:
    """A grid of images [N, H, W, C] (C = 1 grey or 3 RGB), as square as it goes, each under
    its own title and the figure's title above them all (no empty panels)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images: shape {images.shape}; allowed: [N, H, W, 1 or 3]")
    n = len(images)
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    lines = 0 if not title else title.count("\n") + 1
    fig = Figure(figsize=(max(1.3 * ncols, 3.2), 1.45 * nrows + 0.2 * lines + 0.1), dpi=90,
                 layout="constrained")  # fmt: skip
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            fig.delaxes(ax)
            continue
        ax.axis("off")
        img = images[i]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    return fig


def plot_images(
    images: np.ndarray,
    path: str | Path | None = None,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    title: str | None = None,
) -> np.ndarray:
    """Draws `images_figure`; returns the rendered RGBA."""
    return _render(images_figure(images, titles, ncols, title), path)
