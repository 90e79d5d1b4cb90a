"""Data augmentation on device: random rotation, scaling, flip, crop-with-padding, translation.

Every augmentation is one random affine map per example, so they compose into a single
bilinear resampling (`jax.scipy.ndimage.map_coordinates`, order 1) per image, vmapped over
the batch and run inside the jitted train step from the step's RNG: no Python loop over
examples, a fresh draw per example and per step, and K vmapped seeds get their own draws.

Output pixel q samples the input at  p = c + F R(-angle) (q - c - shift) / scale,  c the
image centre, F the optional horizontal mirror. So rotation and scaling are about the centre,
`crop_padding` = P is "pad by P, crop a random HxW window" (an integer shift in [-P, P] per
axis, pixel values exact), `translate` = T a continuous shift in [-T, T] pixels per axis.

Background: pixels that come from outside the image are filled with the per-image,
per-channel minimum of the (already normalised) input. For digits, MNIST and
Fashion-MNIST that is the normalised black pixel (every image has one), so shifted-in
borders look like the real background without the augmentation needing the dataset's
mean and std; for an image with no black pixel it is its darkest value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from cnn_jax.config.checks import check_keys, parse, plain_or_self

AugmentFn = Callable[[jax.Array, jax.Array], jax.Array]  # (rng, x_bhwc) -> x_bhwc


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
    """The `augment` section: every augmentation off by default (see cnn_jax/augment.py)."""

    rotation_degrees: float = 0.0
    scale_min: float = 1.0
    scale_max: float = 1.0
    flip: bool = False  # a mirrored digit is another symbol: off unless asked for
    crop_padding: int = 0
    translate: float = 0.0  # a continuous shift in pixels (an int is accepted too)

    @property
    def is_identity(self) -> bool:
        """True when every augmentation is off (the train step then skips augmenting)."""
        return self == AugmentSpec()

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | Any | None) -> AugmentSpec:
        """Validates the section (None: every augmentation off) and types it."""
        values = None if section is None else plain_or_self(section)
        return parse(cls, values, check_augment)


# The fields and their defaults (every augmentation off) are `AugmentSpec`'s, above.
_DEFAULTS: dict[str, Any] = dataclasses.asdict(AugmentSpec())
AUGMENT_KEYS = tuple(_DEFAULTS)


def default_augment_config() -> ml_collections.ConfigDict:
    """Every augmentation off (rotation 0, scale 1..1, no flip, no crop, no translation)."""
    return ml_collections.ConfigDict(dict(_DEFAULTS))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def validate_augment_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Returns the full config (defaults filled in); one-line ValueError for a bad field."""
    unknown = sorted(set(cfg) - set(AUGMENT_KEYS))
    if unknown:
        raise ValueError(f"augment: unknown key(s) {unknown}; allowed: {', '.join(AUGMENT_KEYS)}")
    out = dict(_DEFAULTS, **cfg)

    def bad(key: str, allowed: str) -> ValueError:
        return ValueError(f"augment.{key}: {out[key]!r} not allowed; allowed: {allowed}")

    rotation = out["rotation_degrees"]
    if not (_is_number(rotation) and 0 <= rotation <= 180):
        raise bad("rotation_degrees", "a number in [0, 180]")
    for key in ("scale_min", "scale_max"):
        if not (_is_number(out[key]) and out[key] > 0):
            raise bad(key, "a number > 0")
    if out["scale_min"] > out["scale_max"]:
        raise bad("scale_min", f"<= augment.scale_max ({out['scale_max']})")
    if not isinstance(out["flip"], bool):
        raise bad("flip", "True or False")
    padding = out["crop_padding"]
    if not (isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0):
        raise bad("crop_padding", "an integer >= 0")
    if not (_is_number(out["translate"]) and out["translate"] >= 0):
        raise bad("translate", "a number of pixels >= 0")
    return out


def affine_warp(
    x_hwc: jax.Array,
    angle_rad: jax.Array | float,
    scale: jax.Array | float,
    flip: jax.Array | bool,
    shift_yx: jax.Array,
) -> jax.Array:
    """One image rotated by `angle_rad` and scaled by `scale` about its centre, mirrored
    left-right if `flip`, then shifted by `shift_yx` pixels (bilinear; outside = image min).

    With angle 0, scale 1, no flip and an integer shift the output pixels are input pixels.
    """
    h, w = x_hwc.shape[0], x_hwc.shape[1]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rows, cols = jnp.meshgrid(
        jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij"
    )
    dy = (rows - cy - shift_yx[0]) / scale
    dx = (cols - cx - shift_yx[1]) / scale
    cos, sin = jnp.cos(angle_rad), jnp.sin(angle_rad)
    src_y = cy + cos * dy - sin * dx
    src_x = cx + jnp.where(flip, -1.0, 1.0) * (sin * dy + cos * dx)
    fill_c = jnp.min(x_hwc, axis=(0, 1))

    def warp(channel_hw: jax.Array) -> jax.Array:
        return jax.scipy.ndimage.map_coordinates(
            channel_hw, [src_y, src_x], order=1, mode="constant", cval=0.0
        )

    # Bilinear weights that fall outside the image go to the fill value: out = warp(x) with
    # zeros outside + (1 - inside weight) * fill. Exact (no rounding) at integer positions.
    inside_hw = warp(jnp.ones((h, w), x_hwc.dtype))
    warped_hwc = jnp.moveaxis(jax.vmap(warp)(jnp.moveaxis(x_hwc, -1, 0)), 0, -1)
    return warped_hwc + (1.0 - inside_hw)[..., None] * fill_c


def _sample_one(rng: jax.Array, spec: AugmentSpec) -> tuple[jax.Array, ...]:
    """(angle_rad, scale, flip, shift_yx) for one example."""
    k_rot, k_scale, k_flip, k_crop, k_shift = jax.random.split(rng, 5)
    max_angle = math.radians(spec.rotation_degrees)
    angle = jax.random.uniform(k_rot, (), minval=-max_angle, maxval=max_angle)
    scale = jax.random.uniform(k_scale, (), minval=spec.scale_min, maxval=spec.scale_max)
    flip = jax.random.bernoulli(k_flip) if spec.flip else jnp.asarray(False)
    p = spec.crop_padding
    shift_yx = jax.random.randint(k_crop, (2,), -p, p + 1).astype(jnp.float32)
    t = spec.translate
    shift_yx = shift_yx + jax.random.uniform(k_shift, (2,), minval=-t, maxval=t)
    return angle, scale, flip, shift_yx


def augment_spec(cfg: AugmentSpec | Mapping[str, Any] | None) -> AugmentSpec:
    """`cfg` itself when parsed already (as `run_setup.build` does); a raw section is checked
    here (`validate_augment_config`'s messages first) and parsed (`AugmentSpec.from_config`)."""
    if isinstance(cfg, AugmentSpec):
        return cfg
    values = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg or {})
    validate_augment_config(values)
    return AugmentSpec.from_config(values)


def make_augment_fn(cfg: AugmentSpec | Mapping[str, Any] | None) -> AugmentFn | None:
    """(rng, x_bhwc) -> x_bhwc applying `cfg`'s augmentations per example; None when all off.

    `cfg` is an `AugmentSpec` or a raw `augment` section (see `augment_spec`). `x_bhwc` is
    float32 and already normalised. Labels are untouched: every transform here keeps the
    class of a digit (flip excepted, which is why it is off by default).
    """
    spec = augment_spec(cfg)
    if spec.is_identity:
        return None

    def augment(rng: jax.Array, x_bhwc: jax.Array) -> jax.Array:
        keys = jax.random.split(rng, x_bhwc.shape[0])
        angle, scale, flip, shift_yx = jax.vmap(lambda k: _sample_one(k, spec))(keys)
        return jax.vmap(affine_warp)(x_bhwc, angle, scale, flip, shift_yx).astype(x_bhwc.dtype)

    return augment


def check_augment(cfg: Mapping[str, Any] | None) -> None:
    if cfg is None:
        return
    if not isinstance(cfg, Mapping):
        raise ValueError(f"augment: {cfg!r}; allowed: a config section")
    check_keys("augment", cfg, AUGMENT_KEYS)
    validate_augment_config(dict(cfg))
