"""Shifts, invariance metrics against hand-computed values, and equivariance properties."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.measure import invariance as inv
from cnn_jax.nn.model_spec import BlockSpec, HeadSpec, ModelSpec
from cnn_jax.nn.models import CNN, init_variables
from cnn_jax.nn.pooling import binomial_filter

RNG = np.random.default_rng(0)


def _images(b=3, h=8, w=8, c=2):
    return RNG.normal(size=(b, h, w, c)).astype(np.float32)


# ----------------------------------------------------------------------------- shifts


def test_zero_shift_by_hand():
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    down_left = inv.shift_images(x, 1, -1, "zero")[0, :, :, 0]
    np.testing.assert_array_equal(down_left, [[0, 0, 0], [2, 3, 0], [5, 6, 0]])
    rolled = inv.shift_images(x, 1, 0, "circular")[0, :, :, 0]
    np.testing.assert_array_equal(rolled, [[7, 8, 9], [1, 2, 3], [4, 5, 6]])
    reflected = inv.shift_images(x, 0, 1, "reflect", max_shift=2)[0, :, :, 0]
    np.testing.assert_array_equal(reflected, [[2, 1, 2], [5, 4, 5], [8, 7, 8]])


@pytest.mark.parametrize("dy,dx", [(1, 0), (-2, 3), (3, -3), (0, 0)])
def test_shifts_invert_each_other(dy, dx):
    x = _images()
    back = inv.shift_images(inv.shift_images(x, dy, dx, "circular"), -dy, -dx, "circular")
    np.testing.assert_array_equal(back, x)
    # Content shifts lose what left the canvas: the round trip is x on the part that stayed.
    stayed = inv.shift_images(inv.shift_images(np.ones_like(x), dy, dx, "zero"), -dy, -dx, "zero")
    back = inv.shift_images(inv.shift_images(x, dy, dx, "zero"), -dy, -dx, "zero")
    np.testing.assert_array_equal(back, x * stayed)
    assert stayed.sum() == x.size // (8 * 8) * (8 - abs(dy)) * (8 - abs(dx))


def test_vmapped_shifts_equal_loop():
    x = _images()
    shifts = inv.shift_grid(2)
    assert shifts.shape == (25, 2) and (shifts[12] == 0).all()
    for mode in inv.SHIFT_MODES:
        batch = inv.shifted_copies(x, shifts, mode, max_shift=2)
        loop = np.stack([inv.shift_images(x, dy, dx, mode, 2) for dy, dx in shifts])
        np.testing.assert_array_equal(batch, loop)
    per_image = inv.shift_each(x, shifts[:3], "zero")
    for i in range(3):
        one = inv.shift_images(x[i : i + 1], *shifts[i], "zero")
        np.testing.assert_array_equal(per_image[i], one[0])


def test_fractional_shift_interpolates_and_masks():
    f = _images(b=2, h=6, w=6)
    whole, mask = inv.fractional_shift(f, 2.0, -1.0, "circular")
    np.testing.assert_allclose(whole, np.roll(f, (2, -1), axis=(1, 2)), atol=1e-6)
    assert mask.min() == 1.0
    half, _ = inv.fractional_shift(f, 0.5, 0.0, "circular")
    np.testing.assert_allclose(half, 0.5 * (f + np.roll(f, 1, axis=1)), atol=1e-6)
    _, mask = inv.fractional_shift(f, 1.5, 0.0, "zero")
    np.testing.assert_array_equal(mask[0, :, 0, 0], [0, 0, 1, 1, 1, 1])


def test_bad_mode_is_one_line_error():
    with pytest.raises(ValueError, match="mode: unknown value 'wrap'; allowed: circular"):
        inv.shift_images(_images(), 1, 1, "wrap")


@pytest.mark.parametrize("size", range(2, 8))
def test_blur_filter_normalised(size):
    kernel = binomial_filter(size)
    assert kernel.shape == (size, size)
    assert abs(kernel.sum() - 1.0) < 1e-6 and (kernel > 0).all()
    np.testing.assert_allclose(kernel, kernel.T)


# ----------------------------------------------------------------------------- metrics


def _logits_from_classes(classes_sn, num_classes=3, high=0.8):
    """Logits whose softmax puts `high` on the given class, the rest spread evenly."""
    low = (1.0 - high) / (num_classes - 1)
    probs = np.where(np.eye(num_classes)[classes_sn] > 0, high, low)
    return np.log(probs).astype(np.float32)


def test_consistency_by_hand():
    a = _logits_from_classes(np.array([0, 1, 2, 2]))
    b = _logits_from_classes(np.array([0, 2, 2, 1]))
    assert float(inv.consistency(a, b)) == pytest.approx(0.5)
    # Image 0 predicted [0, 0, 1, 1] over 4 shifts: 1/2; image 1 always class 2: 1.
    logits_snk = _logits_from_classes(np.array([[0, 2], [0, 2], [1, 2], [1, 2]]))
    assert float(inv.expected_consistency(logits_snk)) == pytest.approx(0.75)
    sampled = inv.sampled_consistency(logits_snk, jax.random.key(0), 20_000)
    assert float(sampled) == pytest.approx(0.75, abs=0.01)


def test_one_pixel_change_by_hand():
    # 3x3 grid, one image: class 1 (p=0.6) in the middle, class 0 (p=0.8) around it.
    classes = np.zeros((9, 1), int)
    logits = _logits_from_classes(classes, num_classes=2, high=0.8)
    logits[4, 0] = np.log([0.4, 0.6])
    out = inv.one_pixel_change(jnp.asarray(logits), 1)
    # 12 neighbour pairs, both directions: 24; the 8 touching the middle change class.
    assert float(out["p_top1_change"]) == pytest.approx(8 / 24)
    # Each of those changes the top-1 probability by 0.4 (0.8 -> 0.4, 0.6 -> 0.2).
    assert float(out["mean_abs_prob_change"]) == pytest.approx(8 * 0.4 / 24, abs=1e-6)


def test_accuracy_and_probability_maps_by_hand():
    classes = np.array([[0, 1]] * 9)
    classes[0] = [1, 1]  # shift (-1, -1): image 0 wrong
    logits = _logits_from_classes(classes, num_classes=2, high=0.9)
    labels = np.array([0, 1])
    acc = np.asarray(inv.accuracy_map(logits, labels, 1))
    assert acc.shape == (3, 3) and acc[0, 0] == 0.5 and acc[1, 1] == 1.0
    prob = np.asarray(inv.correct_prob_map(logits, labels, 1))
    assert prob[0, 0] == pytest.approx(0.5 * (0.1 + 0.9)) and prob[2, 2] == pytest.approx(0.9)
    np.testing.assert_allclose(inv.diagonal(acc), [0.5, 1.0, 1.0])


def test_equivariance_error_and_cosine_by_hand():
    f = np.zeros((1, 4, 4, 1), np.float32)
    f[0, 1, 1, 0] = 1.0
    moved = np.roll(f, 1, axis=2)
    assert float(inv.equivariance_error(f, moved, 0, 1)[0]) == pytest.approx(0.0)
    assert float(inv.equivariance_error(f, f, 0, 1)[0]) == pytest.approx(np.sqrt(2.0))
    assert float(inv.pooled_cosine(f, moved)[0]) == pytest.approx(1.0)
    g = np.concatenate([f, 0 * f], -1), np.concatenate([0 * f, f], -1)
    assert float(inv.pooled_cosine(*g)[0]) == pytest.approx(0.0)


def test_circular_conv_is_exactly_equivariant():
    x = _images(b=2, h=9, w=7, c=3)
    conv = nn.Conv(4, (3, 3), padding="CIRCULAR")
    params = conv.init(jax.random.key(0), x)
    y = conv.apply(params, x)
    for dy, dx in [(1, 0), (2, -3), (-4, 5)]:
        y_shifted = conv.apply(params, inv.shift_images(x, dy, dx, "circular"))
        err = inv.equivariance_error(y, y_shifted, dy, dx, "circular")
        assert float(err.max()) < 1e-5


# ----------------------------------------------------------------------------- models


def _model(pool: str, padding: str = "CIRCULAR", head: str = "global_avg"):
    blocks = (BlockSpec(6, 3, padding=padding, pool=pool), BlockSpec(6, 3, padding=padding))
    spec = ModelSpec(blocks, HeadSpec(kind=head), num_classes=4)
    model = CNN(spec)
    variables = init_variables(model, jax.random.key(1), (8, 8, 1))
    # mean 0, std 1: the network sees the images as given.
    return spec, inv.make_predict_fn(model, [0.0], [1.0]), variables


def test_circular_stride1_gap_network_is_exactly_invariant():
    spec, predict, variables = _model(pool="none")
    x = RNG.normal(size=(5, 8, 8, 1)).astype(np.float32)
    logits = inv.grid_logits(predict, variables, x, max_shift=3, mode="circular", batch_size=4)
    assert logits.shape == (49, 5, 4)
    assert float(inv.expected_consistency(logits)) == 1.0
    np.testing.assert_allclose(logits, np.broadcast_to(logits[24], logits.shape), atol=1e-5)
    strides = inv.cumulative_strides(spec)
    result = inv.layer_equivariance(predict, variables, x, strides, 2, "circular")
    assert result["layers"] == ["block0/conv", "block0/act", "block1/conv", "block1/act"]
    for name in result["layers"]:
        assert result["error"][name].max() < 1e-5
        assert result["cosine"][name].min() > 1 - 1e-5


def test_max_pool_network_is_equivariant_only_on_its_grid():
    spec, predict, variables = _model(pool="max")
    x = np.abs(RNG.normal(size=(4, 8, 8, 1))).astype(np.float32)
    strides = inv.cumulative_strides(spec)
    assert strides["block0/act"] == 1 and strides["block0/pool"] == 2 and strides["block1"] == 2
    result = inv.layer_equivariance(predict, variables, x, strides, 2, "circular")
    rows = inv.summarize_layers(result)
    by_name = {row["layer"]: row for row in rows}
    assert by_name["block0/conv"]["error_off_grid"] is None  # stride 1: every shift is aligned
    assert by_name["block0/conv"]["error_aligned"] < 1e-5
    for name in ("block0/pool", "block1/conv", "block1/act"):
        assert by_name[name]["error_aligned"] < 1e-5  # even shifts move the pooled grid exactly
        assert by_name[name]["error_off_grid"] > 0.05  # odd shifts do not: aliasing


def test_vmapped_grid_equals_per_shift_loop():
    _, predict, variables = _model(pool="max", padding="SAME", head="flatten")
    x = np.abs(RNG.normal(size=(3, 8, 8, 1))).astype(np.float32)
    logits = inv.grid_logits(predict, variables, x, max_shift=2, mode="zero", batch_size=2)
    shifted = [inv.shift_images(x, dy, dx, "zero", 2) for dy, dx in inv.shift_grid(2)]
    loop = [predict(variables, x_bhwc)[0] for x_bhwc in shifted]
    np.testing.assert_allclose(logits, np.stack(loop), atol=1e-5)
    assert float(inv.expected_consistency(logits)) < 1.0
