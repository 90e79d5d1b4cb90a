"""Translation invariance and equivariance: image shifts and the metrics of the literature.

Shifts act on raw images (before normalisation) so "empty canvas" stays zero. Every shift
helper takes traced (dy, dx), so a batch of shifts is one `jax.vmap`-ed call. Positive dy moves
content down, positive dx moves it right.

Metrics work on the logits of a whole shift grid, `logits_snk` [S shifts, N images, K
classes], with the shifts of `shift_grid(max_shift)`: every (dy, dx) in [-m, m]^2. Per-layer
equivariance compares a layer's map of a shifted image with the shifted map of the image,
using the model's own intermediates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.config.checks import check_choice
from cnn_jax.nn.model_spec import ModelSpec
from cnn_jax.nn.models import forward_order_key
from cnn_jax.steps import normalize

SHIFT_MODES = ("circular", "zero", "reflect")
# (variables, x_bhwc) -> (logits, intermediates)
PredictFn = Callable[[Any, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]

# ----------------------------------------------------------------------------- shifts


def _shift_axis(x: jax.Array, k: jax.Array, axis: int, mode: str, pad: int) -> jax.Array:
    """Integer shift by k along `axis`: roll, or a crop of the image padded by `pad`."""
    if mode == "circular":
        return jnp.roll(x, k, axis=axis)
    widths = [(0, 0)] * x.ndim
    widths[axis] = (pad, pad)
    padded = jnp.pad(x, widths, mode="constant" if mode == "zero" else "reflect")
    return jax.lax.dynamic_slice_in_dim(padded, pad - k, x.shape[axis], axis=axis)


def shift_images(
    x_bhwc: jax.Array, dy: Any, dx: Any, mode: str = "circular", max_shift: int | None = None
) -> jax.Array:
    """Shifts every image of a batch by integer (dy, dx); dy, dx may be traced.

    'circular' rolls (content leaving one side comes back on the other); 'zero' and
    'reflect' move the content over a canvas extended by zeros or by reflection (a crop of a
    padded image, as Zhang 2019 crops a larger image). |dy|, |dx| must be <= `max_shift`
    (default: the image size minus one), which sizes the padding.
    """
    check_choice("mode", mode, SHIFT_MODES)
    pad = max(x_bhwc.shape[1:3]) - 1 if max_shift is None else int(max_shift)
    dy, dx = jnp.asarray(dy, jnp.int32), jnp.asarray(dx, jnp.int32)
    return _shift_axis(_shift_axis(x_bhwc, dy, 1, mode, pad), dx, 2, mode, pad)


def shifted_copies(
    x_bhwc: jax.Array, shifts_s2: jax.Array, mode: str = "circular", max_shift: int | None = None
) -> jax.Array:
    """All shifts of a batch in one vmapped call: [S, 2] shifts -> [S, B, H, W, C]."""
    shift = lambda s: shift_images(x_bhwc, s[0], s[1], mode, max_shift)
    return jax.vmap(shift)(jnp.asarray(shifts_s2, jnp.int32))


def shift_each(
    x_bhwc: jax.Array, shifts_b2: jax.Array, mode: str = "circular", max_shift: int | None = None
) -> jax.Array:
    """A different shift per image: [B, 2] shifts -> [B, H, W, C]."""
    one = lambda x, s: shift_images(x[None], s[0], s[1], mode, max_shift)[0]
    return jax.vmap(one)(x_bhwc, jnp.asarray(shifts_b2, jnp.int32))


def shift_grid(max_shift: int) -> np.ndarray:
    """Every integer shift (dy, dx) in [-max_shift, max_shift]^2, dy-major: int32 [S, 2]."""
    if max_shift < 0:
        raise ValueError(f"max_shift: {max_shift} not allowed; allowed: integers >= 0")
    r = np.arange(-max_shift, max_shift + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    return np.stack([dy.ravel(), dx.ravel()], axis=1).astype(np.int32)


def fractional_shift(
    f_bhwc: jax.Array, sy: Any, sx: Any, mode: str = "circular"
) -> tuple[jax.Array, jax.Array]:
    """Shifts a feature map by real (sy, sx): linear interpolation between integer shifts.

    Returns (shifted map, mask [1, H, W, 1]): the mask is 1 where every value came from inside
    the map ('circular': everywhere), so comparisons can skip the filled-in border.
    """
    check_choice("mode", mode, SHIFT_MODES)
    pad = max(f_bhwc.shape[1:3])

    def along(x, s, axis, fill):
        s = jnp.asarray(s, jnp.float32)
        k = jnp.floor(s)
        w = s - k
        k = k.astype(jnp.int32)
        lo, hi = _shift_axis(x, k, axis, fill, pad), _shift_axis(x, k + 1, axis, fill, pad)
        return (1.0 - w) * lo + w * hi

    shifted = along(along(f_bhwc, sy, 1, mode), sx, 2, mode)
    ones = jnp.ones((1, *f_bhwc.shape[1:3], 1), f_bhwc.dtype)
    if mode == "circular":
        return shifted, ones
    inside = along(along(ones, sy, 1, "zero"), sx, 2, "zero")
    return shifted, (inside > 1.0 - 1e-4).astype(f_bhwc.dtype)


# ----------------------------------------------------------------------------- metrics


def consistency(logits_a: jax.Array, logits_b: jax.Array) -> jax.Array:
    """Fraction of pairs whose top-1 classes agree: mean 1[argmax a == argmax b].

    With a and b the logits of two random shifts of the same images this is Zhang 2019's
    consistency ("Making Convolutional Networks Shift-Invariant Again", ICML 2019, Sec. 4.1).
    """
    return jnp.mean(jnp.argmax(logits_a, -1) == jnp.argmax(logits_b, -1))


def expected_consistency(logits_snk: jax.Array) -> jax.Array:
    """Zhang 2019's consistency, exactly, for two independent uniform shifts from the grid.

    P(same top-1) for shifts s1, s2 ~ U(grid) is sum_c q_c^2 per image, where q_c is the
    fraction of grid shifts predicted as class c; averaged over images. No sampling noise.
    """
    q_nk = jnp.mean(jax.nn.one_hot(jnp.argmax(logits_snk, -1), logits_snk.shape[-1]), axis=0)
    return jnp.mean(jnp.sum(q_nk**2, axis=-1))


def sampled_consistency(logits_snk: jax.Array, rng: jax.Array, num_pairs: int) -> jax.Array:
    """Zhang 2019's consistency by Monte Carlo: `num_pairs` random shift pairs per image."""
    s, n = logits_snk.shape[:2]
    idx = jax.random.randint(rng, (2, num_pairs, n), 0, s)
    images = jnp.arange(n)[None, :]
    return consistency(logits_snk[idx[0], images], logits_snk[idx[1], images])


def _neighbour_pairs(max_shift: int) -> np.ndarray:
    """Index pairs (i, j) of grid shifts one pixel apart (vertically or horizontally), both ways."""
    side = 2 * max_shift + 1
    index = np.arange(side * side).reshape(side, side)
    pairs = [
        (index[:-1, :], index[1:, :]),
        (index[:, :-1], index[:, 1:]),
    ]
    a = np.concatenate([p.ravel() for p, _ in pairs] + [q.ravel() for _, q in pairs])
    b = np.concatenate([q.ravel() for _, q in pairs] + [p.ravel() for p, _ in pairs])
    return np.stack([a, b]).astype(np.int32)


def one_pixel_change(logits_snk: jax.Array, max_shift: int) -> dict[str, jax.Array]:
    """Azulay & Weiss 2019 ("Why do deep convolutional networks generalize so poorly to small
    image transformations?", JMLR): over every pair of grid shifts one pixel apart,
    `p_top1_change` = P(top-1 class differs) and `mean_abs_prob_change` = mean |p(c|x_s) -
    p(c|x_s')| for c the top-1 class at s (MAC). Needs max_shift >= 1."""
    if max_shift < 1:
        raise ValueError(f"max_shift: {max_shift} not allowed; allowed: integers >= 1")
    a, b = _neighbour_pairs(max_shift)
    probs_snk = jax.nn.softmax(logits_snk, -1)
    top_pn = jnp.argmax(logits_snk[a], -1)
    p_a = jnp.take_along_axis(probs_snk[a], top_pn[..., None], -1)[..., 0]
    p_b = jnp.take_along_axis(probs_snk[b], top_pn[..., None], -1)[..., 0]
    return {
        "p_top1_change": jnp.mean(top_pn != jnp.argmax(logits_snk[b], -1)),
        "mean_abs_prob_change": jnp.mean(jnp.abs(p_a - p_b)),
    }


def accuracy_map(logits_snk: jax.Array, labels_n: jax.Array, max_shift: int) -> jax.Array:
    """Accuracy at each shift as a [2m+1, 2m+1] map indexed [dy + m, dx + m]."""
    side = 2 * max_shift + 1
    return jnp.mean(jnp.argmax(logits_snk, -1) == labels_n[None], axis=1).reshape(side, side)


def correct_prob_map(logits_snk: jax.Array, labels_n: jax.Array, max_shift: int) -> jax.Array:
    """Mean softmax probability of the correct class at each shift, [2m+1, 2m+1]."""
    side = 2 * max_shift + 1
    probs_snk = jax.nn.softmax(logits_snk, -1)
    labels = jnp.broadcast_to(labels_n[None, :, None], (*probs_snk.shape[:2], 1))
    p_sn = jnp.take_along_axis(probs_snk, labels, -1)[..., 0]
    return jnp.mean(p_sn, axis=1).reshape(side, side)


def diagonal(map_2d: Any) -> np.ndarray:
    """Values along the shift diagonal dy = dx, from (-m, -m) to (m, m)."""
    return np.diagonal(np.asarray(map_2d)).copy()


def equivariance_error(
    f_bhwc: jax.Array, f_shifted_bhwc: jax.Array, sy: Any, sx: Any, mode: str = "circular"
) -> jax.Array:
    """Per-image ||f(shift(x)) - shift'(f(x))|| / ||shift'(f(x))|| over the valid region, [B].

    shift' moves the layer's map by (sy, sx) = (dy, dx) / cumulative stride; off-grid
    (fractional) shifts interpolate linearly. For non-circular modes the border that shift'
    fills in is left out of both norms. 0 means exactly equivariant.
    """
    expected, mask = fractional_shift(f_bhwc, sy, sx, mode)
    num = jnp.sqrt(jnp.sum(((f_shifted_bhwc - expected) * mask) ** 2, axis=(1, 2, 3)))
    den = jnp.sqrt(jnp.sum((expected * mask) ** 2, axis=(1, 2, 3)))
    return num / jnp.maximum(den, 1e-12)


def pooled_cosine(f_bhwc: jax.Array, g_bhwc: jax.Array) -> jax.Array:
    """Cosine similarity of the globally average-pooled features of two maps, per image [B].

    1 means the pooled representation did not change (invariance of GAP features)."""
    a, b = jnp.mean(f_bhwc, axis=(1, 2)), jnp.mean(g_bhwc, axis=(1, 2))
    dot = jnp.sum(a * b, -1)
    return dot / jnp.maximum(jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1), 1e-12)


# ----------------------------------------------------------------------------- models


@functools.lru_cache(maxsize=64)
def _predict_fn(model: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> PredictFn:
    def predict(variables, x_bhwc):
        return model.apply(variables, normalize(x_bhwc, mean, std), train=False)

    return predict


def make_predict_fn(model: Any, mean: Sequence[float], std: Sequence[float]) -> PredictFn:
    """(variables, raw images [B, H, W, C] in 0..255) -> (logits, intermediates), eval mode.

    The same model and statistics give the same function object, so the jitted evaluations
    below compile once and are reused for every seed of a variant.
    """
    as_tuple = lambda v: tuple(float(a) for a in np.ravel(v))
    return _predict_fn(model, as_tuple(mean), as_tuple(std))


def _chunks(x: np.ndarray, size: int):
    """Fixed-size chunks (the last one padded by repeating image 0) and their true lengths."""
    for start in range(0, len(x), size):
        part = x[start : start + size]
        n = len(part)
        if n < size:
            part = np.concatenate([part, np.repeat(x[:1], size - n, axis=0)])
        yield part, n


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _grid_chunk(predict_fn, variables, x_bhwc, max_shift, mode):
    def at(s):
        return predict_fn(variables, shift_images(x_bhwc, s[0], s[1], mode, max_shift))[0]

    return jax.vmap(at)(jnp.asarray(shift_grid(max_shift)))


def grid_logits(
    predict_fn: PredictFn,
    variables: Any,
    images_bhwc: np.ndarray,
    max_shift: int,
    mode: str = "zero",
    batch_size: int = 128,
) -> np.ndarray:
    """Logits of every image at every grid shift, [S, N, K]: one vmapped call per image chunk.

    `predict_fn(variables, x_bhwc) -> (logits, intermediates)`; shifts from `shift_grid`.
    """
    check_choice("mode", mode, SHIFT_MODES)
    images = np.asarray(images_bhwc, np.float32)
    outs = [
        np.asarray(_grid_chunk(predict_fn, variables, part, int(max_shift), mode))[:, :n]
        for part, n in _chunks(images, batch_size)
    ]
    return np.concatenate(outs, axis=1)


def cumulative_strides(spec: ModelSpec) -> dict[str, int]:
    """Cumulative stride (input pixels per map pixel) of each intermediate of `CNN(spec)`.

    Taken from the spec, not from shapes, so VALID padding (which trims maps) is right too.
    """
    strides, cum = {"input": 1}, 1
    for i, b in enumerate(spec.blocks):
        cum *= b.stride
        for name in ("conv", "bn", "act", "act1"):
            strides[f"block{i}/{name}"] = cum
        if b.pool != "none":
            cum *= b.pool_stride
            strides[f"block{i}/pool"] = cum
        strides[f"block{i}"] = cum
    return strides


def spatial_layers(intermediates: Mapping[str, Any]) -> list[str]:
    """Names of the distinct 4-D block maps in depth order (block outputs and bn left out,
    as they repeat the pool or act map and the conv map up to a per-channel affine)."""
    names = [
        name
        for name, value in intermediates.items()
        if np.ndim(value) == 4 and name.startswith("block") and "/" in name
    ]
    return sorted((n for n in names if not n.endswith("/bn")), key=forward_order_key)


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5, 6))
def _equivariance_chunk(predict_fn, variables, x_bhwc, shifts, layer_strides, max_shift, mode):
    _, base = predict_fn(variables, x_bhwc)

    def at(s):
        _, inter = predict_fn(variables, shift_images(x_bhwc, s[0], s[1], mode, max_shift))
        err, cos = {}, {}
        for name, stride in layer_strides:
            sy, sx = s[0] / stride, s[1] / stride
            err[name] = equivariance_error(base[name], inter[name], sy, sx, mode)
            cos[name] = pooled_cosine(base[name], inter[name])
        return err, cos

    return jax.vmap(at)(jnp.asarray(shifts, jnp.float32))


def layer_equivariance(
    predict_fn: PredictFn,
    variables: Any,
    images_bhwc: np.ndarray,
    strides: Mapping[str, int],
    max_shift: int,
    mode: str = "circular",
    batch_size: int = 16,
) -> dict[str, Any]:
    """Per-layer equivariance error and pooled-feature cosine for every nonzero grid shift.

    Returns {'shifts': [S, 2], 'layers': names, 'error': {name: [S]}, 'cosine': {name: [S]},
    'stride': {name: int}}, each value averaged over the images.
    """
    check_choice("mode", mode, SHIFT_MODES)
    grid = shift_grid(max_shift)
    shifts = grid[np.any(grid != 0, axis=1)]
    images = np.asarray(images_bhwc, np.float32)
    probe_x = jax.ShapeDtypeStruct(images[:1].shape, jnp.float32)
    _, probe = jax.eval_shape(predict_fn, variables, probe_x)
    layers = [name for name in spatial_layers(probe) if name in strides]
    layer_strides = tuple((name, int(strides[name])) for name in layers)
    static = (tuple(map(tuple, shifts.tolist())), layer_strides, int(max_shift), mode)
    sums = {"error": {n: 0.0 for n in layers}, "cosine": {n: 0.0 for n in layers}}
    for part, n in _chunks(images, batch_size):
        err, cos = jax.device_get(_equivariance_chunk(predict_fn, variables, part, *static))
        for name in layers:
            sums["error"][name] = sums["error"][name] + err[name][:, :n].sum(1)
            sums["cosine"][name] = sums["cosine"][name] + cos[name][:, :n].sum(1)
    total = len(images)
    return {
        "shifts": shifts,
        "layers": layers,
        "stride": {n: int(strides[n]) for n in layers},
        "error": {n: np.asarray(v) / total for n, v in sums["error"].items()},
        "cosine": {n: np.asarray(v) / total for n, v in sums["cosine"].items()},
    }


def summarize_layers(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per layer: mean error over integer-aligned shifts (multiples of the stride) and over
    off-grid ones (None when a layer has none), and the mean pooled cosine over all shifts."""
    shifts = np.asarray(result["shifts"])
    rows = []
    for depth, name in enumerate(result["layers"]):
        stride = result["stride"][name]
        aligned = np.all(shifts % stride == 0, axis=1)
        err = np.asarray(result["error"][name])
        rows.append(
            {
                "layer": name,
                "depth": depth,
                "stride": stride,
                "error_aligned": float(err[aligned].mean()) if aligned.any() else None,
                "error_off_grid": float(err[~aligned].mean()) if (~aligned).any() else None,
                "pooled_cosine": float(np.mean(result["cosine"][name])),
            }
        )
    return rows
