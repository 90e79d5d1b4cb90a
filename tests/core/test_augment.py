"""On-device augmentation: shapes kept, a fresh draw per example and per step, exact
geometry (rotation, flip, crop shift, scaling, background fill), identity at zero strength."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax import augment, steps
from cnn_jax.augment import affine_warp, default_augment_config, make_augment_fn
from cnn_jax.nn import model_spec as ms
from cnn_jax.nn.models import CNN
from cnn_jax.optim import make_optimizer


def _images(batch: int = 16, size: int = 12, channels: int = 1, seed: int = 0) -> jax.Array:
    """Normalised-looking images: a background of -0.5 (the 'black' pixel) and random strokes."""
    rng = np.random.default_rng(seed)
    x = np.full((batch, size, size, channels), -0.5, np.float32)
    inner = slice(size // 4, size - size // 4)
    x[:, inner, inner, :] = rng.uniform(0.0, 2.0, x[:, inner, inner, :].shape)
    return jnp.asarray(x)


def _cfg(**overrides):
    cfg = default_augment_config()
    cfg.update(overrides)
    return cfg


def test_default_config_is_all_off_and_gives_none():
    cfg = default_augment_config()
    assert set(cfg.keys()) == set(augment.AUGMENT_KEYS)
    assert make_augment_fn(cfg) is None
    assert make_augment_fn({}) is None
    assert cfg.flip is False


def test_zero_strength_warp_is_the_identity_bitwise():
    x_hwc = _images(1, 9, 3)[0]
    out = affine_warp(x_hwc, 0.0, 1.0, False, jnp.zeros(2))
    np.testing.assert_array_equal(out, x_hwc)


@pytest.mark.parametrize(
    "overrides",
    [
        {"rotation_degrees": 20.0},
        {"scale_min": 0.8, "scale_max": 1.2},
        {"flip": True},
        {"crop_padding": 2},
        {"translate": 1.5},
        {"rotation_degrees": 10.0, "scale_min": 0.9, "crop_padding": 1, "translate": 1.0},
    ],
)
def test_keeps_shape_and_dtype_and_differs_per_example_and_per_step(overrides):
    fn = jax.jit(make_augment_fn(_cfg(**overrides)))
    same_bhwc = jnp.repeat(_images(1, 12, 2), 32, axis=0)  # one image, 32 times
    out = fn(jax.random.key(0), same_bhwc)
    assert out.shape == same_bhwc.shape and out.dtype == jnp.float32
    distinct = {np.asarray(o).tobytes() for o in out}
    assert len(distinct) > 1  # different draws per example
    # the train step passes fold_in(rng, step): another step gives other draws
    later = fn(jax.random.fold_in(jax.random.key(0), 1), same_bhwc)
    assert not np.array_equal(out, later)
    np.testing.assert_array_equal(out, fn(jax.random.key(0), same_bhwc))  # deterministic


def test_rotation_by_90_degrees_matches_rot90():
    x_hwc = _images(1, 8, 2, seed=3)[0]
    out = affine_warp(x_hwc, math.pi / 2, 1.0, False, jnp.zeros(2))
    np.testing.assert_allclose(out, np.rot90(np.asarray(x_hwc), k=-1, axes=(0, 1)), atol=1e-5)


def test_flip_gives_the_image_or_its_mirror():
    x_bhwc = _images(64, 10)
    out = np.asarray(jax.jit(make_augment_fn(_cfg(flip=True)))(jax.random.key(1), x_bhwc))
    x = np.asarray(x_bhwc)
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored)
    assert 10 < mirrored.sum() < 54  # about half are mirrored


def _shifted(x_hwc: np.ndarray, dy: int, dx: int, fill: np.ndarray) -> np.ndarray:
    h, w, _ = x_hwc.shape
    padded = np.pad(x_hwc, ((h, h), (w, w), (0, 0)), constant_values=0.0)
    padded[:h], padded[-h:], padded[:, :w], padded[:, -w:] = fill, fill, fill, fill
    return padded[h - dy : 2 * h - dy, w - dx : 2 * w - dx]


def test_crop_with_padding_is_an_integer_shift_filled_with_the_background():
    p = 3
    x_bhwc = _images(24, 10, 2, seed=5)
    out = np.asarray(jax.jit(make_augment_fn(_cfg(crop_padding=p)))(jax.random.key(2), x_bhwc))
    shifts = set()
    for x_hwc, o_hwc in zip(np.asarray(x_bhwc), out):
        fill = x_hwc.min(axis=(0, 1))
        matches = [
            (dy, dx)
            for dy in range(-p, p + 1)
            for dx in range(-p, p + 1)
            if np.array_equal(o_hwc, _shifted(x_hwc, dy, dx, fill))
        ]
        assert matches, "output is not an integer shift within the padding"
        shifts.add(matches[0])
    assert len(shifts) > 5


def test_translation_fills_uncovered_pixels_with_the_image_minimum():
    x_hwc = _images(1, 10, 1)[0]
    out = np.asarray(affine_warp(x_hwc, 0.0, 1.0, False, jnp.array([0.0, 4.5])))
    np.testing.assert_allclose(out[:, :4, 0], -0.5)  # four columns shifted in from the left
    np.testing.assert_allclose(
        out[:, 5:, 0],
        np.asarray(x_hwc)[:, :5, 0] * 0.5 + np.asarray(x_hwc)[:, 1:6, 0] * 0.5,
        rtol=1e-6,
    )  # a half-pixel shift averages neighbours (bilinear)


def test_scaling_about_the_centre_changes_the_area_by_scale_squared():
    x_hw1 = np.zeros((41, 41, 1), np.float32)
    x_hw1[10:31, 10:31] = 1.0  # a 21x21 square centred on pixel 20
    bigger = np.asarray(affine_warp(jnp.asarray(x_hw1), 0.0, 2.0, False, jnp.zeros(2)))
    smaller = np.asarray(affine_warp(jnp.asarray(x_hw1), 0.0, 0.5, False, jnp.zeros(2)))
    assert bigger.sum() / x_hw1.sum() == pytest.approx(4.0, rel=0.1)
    assert smaller.sum() / x_hw1.sum() == pytest.approx(0.25, rel=0.15)
    for img in (bigger, smaller):  # still centred
        ys, xs = np.nonzero(img[..., 0] > 0.5)
        assert ys.mean() == pytest.approx(20.0, abs=0.5) and xs.mean() == pytest.approx(20, abs=0.5)


@pytest.mark.slow
def test_works_inside_a_vmapped_train_step_over_seeds():
    model = CNN(ms.spec_from_config({"blocks": [{"features": 4, "pool": "max"}]}, 10))
    tx, _ = make_optimizer({"name": "sgd", "learning_rate": 0.1}, 10, 1)
    fn = make_augment_fn(_cfg(rotation_degrees=15.0, crop_padding=2))
    train_step = steps.make_train_step(model, tx, mean=(0.5,), std=(0.25,), augment_fn=fn)
    states = jax.jit(jax.vmap(lambda k: steps.create_train_state(model, tx, k, (12, 12, 1))))(
        jax.random.split(jax.random.key(0), 2)
    )
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.integers(0, 256, (2, 8, 12, 12, 1), dtype=np.uint8),
        "label": rng.integers(0, 10, (2, 8)).astype(np.int32),
    }
    new_states, metrics = jax.jit(jax.vmap(train_step))(states, batch)
    assert new_states.step.shape == (2,) and metrics["count"].shape == (2,)
    assert np.all(np.isfinite(np.asarray(metrics["loss_sum"])))


@pytest.mark.parametrize(
    "cfg,match",
    [
        ({"rotation_degrees": -5}, r"augment.rotation_degrees: -5 not allowed; allowed: "),
        ({"rotation_degrees": 270.0}, r"augment.rotation_degrees: 270.0 not allowed"),
        ({"scale_min": 0.0}, r"augment.scale_min: 0.0 not allowed; allowed: a number > 0"),
        ({"scale_min": 1.2, "scale_max": 1.1}, r"augment.scale_min: 1.2 not allowed; allowed: <="),
        ({"flip": 1}, r"augment.flip: 1 not allowed; allowed: True or False"),
        ({"crop_padding": 1.5}, r"augment.crop_padding: 1.5 not allowed; allowed: an integer"),
        ({"translate": -1}, r"augment.translate: -1 not allowed"),
        ({"rotate": 10}, r"augment: unknown key\(s\) \['rotate'\]; allowed: rotation_degrees"),
    ],
)
def test_bad_augment_config_is_one_clear_line(cfg, match):
    with pytest.raises(ValueError, match=match) as info:
        make_augment_fn(cfg)
    assert "\n" not in str(info.value)
