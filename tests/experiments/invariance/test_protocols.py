"""The invariance protocols' pieces: red-green data, variants, shift plans, metrics."""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from cnn_jax.datasets import redgreen
from cnn_jax.measure import two_dots
from cnn_jax.nn.model_spec import spec_from_config
from cnn_jax.nn.pooling import tile_pool
from cnn_jax.outputs import predictions
from experiments.invariance import analysis as ana
from experiments.invariance import evaluate as ev
from experiments.invariance.configs import digits, smoke
from experiments.invariance.variants import describe, geometry, training_budget, variant_config


def test_red_green_classes_heights_and_dissimilar_swap():
    similar = redgreen.make_splits(0, 4, 2, 50)["test"]
    dissimilar = redgreen.make_splits(0, 4, 2, 50, test_set="dissimilar")["test"]
    images, labels = similar
    np.testing.assert_array_equal(labels, np.arange(50) % 2)
    for img, dimg, label in zip(images, dissimilar[0], labels):
        ys_r, xs_r = np.nonzero(img[..., 0])
        ys_g, xs_g = np.nonzero(img[..., 1])
        assert len(xs_r) == len(xs_g) == 16 and not img[..., 2].any()
        assert (xs_r.max() < xs_g.min()) == (label == 0)  # class 0: red on the left
        assert abs(ys_r.mean() - (8.5 if label == 0 else 24.5)) <= 4  # near y = 7 or 23 (+1.5)
        shift = 16 if label == 0 else -16
        np.testing.assert_array_equal(np.roll(img, shift, axis=0), dimg)  # heights swapped
    np.testing.assert_array_equal(similar[1], dissimilar[1])
    with pytest.raises(ValueError, match="test_set"):
        redgreen.make_splits(0, 2, 2, 2, test_set="other")


@pytest.mark.parametrize(
    "name", ["max", "blur5", "gap", "strided_blur3_noaug", "max_3x", "d0", "d3_blur_aug",
             "d2_strided", "kv_valid", "kv_full_zero", "kv_same_circular"],
)  # fmt: skip
def test_every_variant_builds_a_valid_model(name):
    config = variant_config(digits.get_config(), name)
    classes = 2 if name.startswith("kv_") else 10
    spec = spec_from_config(config.model.to_dict(), classes)
    if name.startswith("kv_"):
        assert config.dataset.name == "red_green" and spec.head.kind == "global_max"
        assert [b.stride for b in spec.blocks] == [1, 2, 2, 2]
        assert not any(b.use_bias for b in spec.blocks)
    if name == "kv_full_zero":
        assert spec.blocks[0].padding == 2
    if name.startswith("d"):
        pooled = [b.pool != "none" or b.stride > 1 for b in spec.blocks]
        assert sum(pooled) == int(name[1]) and config.dataset.options.canvas_size == 32
    augmented = config.augment.crop_padding > 0
    assert augmented == (not name.endswith("_noaug") and not name.startswith(("kv", "d"))
                         or name.endswith("_aug"))  # fmt: skip
    assert config.train.get("budget_factor", 1.0) == (3.0 if name.endswith("_3x") else 1.0)
    assert describe(name)


def test_unknown_variant_is_one_clear_line():
    with pytest.raises(ValueError, match="variant: unknown 'maxx'"):
        variant_config(digits.get_config(), "maxx")


def test_shift_plan_is_fixed_by_the_config_and_in_range():
    exp = smoke.get_config().experiment
    a, b = ev.shift_plan(exp, 30, ev.SETS), ev.shift_plan(exp, 30, ev.SETS)
    for name in ev.SETS:
        np.testing.assert_array_equal(a[name], b[name])
    assert a["zhang"].shape == (2, 30, 2) and np.abs(a["zhang"]).max() <= exp.max_shift
    assert (a["azulay"][:, 0] == [[k, k] for k in range(-4, 5)]).all()
    assert sorted(set(np.abs(a["distance"][:, 0, 1]))) == list(exp.distances)


def test_mac_pairs_by_hand():
    probs = np.array([[[0.7, 0.3]], [[0.4, 0.6]], [[0.5, 0.5]]])  # 3 shifts, 1 image
    # top-1 at shift 0 is class 0: |0.4 - 0.7|; at shift 1 class 1: |0.5 - 0.6|
    np.testing.assert_allclose(ev._mac_pairs(probs)[:, 0], [0.3, 0.1])


def _fake_run(tmp_path, name, top1_zhang, top1_azulay, labels):
    folder = tmp_path / name / ev.DIRNAME
    n = len(labels)
    for set_name, top1 in (("zhang", top1_zhang), ("azulay", top1_azulay)):
        predictions.save(folder / f"{set_name}.npz", labels_n=labels, top1_n=top1,
                         p_correct_n=np.zeros_like(top1, float))  # fmt: skip
    np.savez(folder / "azulay_mac.npz", mac_pn=np.full((8, n), 0.25, np.float16))
    return {"run_dir": str(tmp_path / name)}


def test_shift_scores_from_saved_predictions(tmp_path):
    labels = np.array([0, 1, 2, 3])
    zhang = np.array([[0, 1, 2, 0], [0, 2, 2, 3]])  # consistent on images 0 and 2
    azulay = np.tile(labels, (9, 1))
    azulay[5, 1] = 9  # image 1 changes class at two of the 8 diagonal steps (4->5, 5->6)
    row = _fake_run(tmp_path, "r0", zhang, azulay, labels)
    s = ana.shift_scores([row])
    np.testing.assert_array_equal(s["consistency"][0], [1, 0, 1, 0])
    np.testing.assert_array_equal(s["accuracy_shifted"][0], [1, 0.5, 1, 0.5])
    np.testing.assert_array_equal(s["accuracy_unshifted"][0], [1, 1, 1, 1])
    np.testing.assert_array_equal(s["drop"][0], [0, 0.5, 0, 0.5])  # per image, paired
    np.testing.assert_allclose(s["p_top1_change"][0], [0, 2 / 8, 0, 0])
    np.testing.assert_allclose(s["mac"][0], 0.25)


def test_halving_distance_interpolates_and_reports_never():
    d = np.array([0, 2, 4, 8])
    curve = np.array([[0.9, 0.7, 0.3, 0.1]])  # above chance 0.1: 0.8 -> 0.4 between d=2 and 4
    assert ana.halving_distance(curve, d, chance=0.1) == pytest.approx(2 + 2 * 0.2 / 0.4)
    assert ana.halving_distance(np.array([[0.9, 0.9, 0.8, 0.8]]), d, 0.1) == float("inf")
    assert ana.halving_distance(np.array([[0.1, 0.1, 0.1, 0.1]]), d, 0.1) == 0.0
    acc = np.stack([np.tile(curve[0][:, None], (1, 5)) + 0.01 * k for k in range(3)])
    iv = ana.halving_interval(acc, d, 0.1)
    assert iv.low <= iv.estimate <= iv.high and 2 < iv.estimate < 4


def test_learned_two_dots_with_pooling_layers_equals_raw_pooling():
    """A 'network' whose layers are raw max pooling gives the raw-pixel answer: a distance-1
    pair is one peak at once, a distance-24 pair survives 3 poolings at every phase."""

    def predict(_, x_bhwc):
        x = x_bhwc[..., :1] / 255.0
        inter = {"block0/act": x}
        for i in range(3):
            x = inter[f"block{i}/pool"] = tile_pool(x, 2, "max")
        return jnp.zeros((len(x_bhwc), 2)), inter

    layers = ("block0/act", "block0/pool", "block1/pool", "block2/pool")
    rows = two_dots.learned_merge_table(predict, None, 64, (1, 24), layers)
    assert rows[0]["min"] == rows[0]["max"] == 0 and rows[0]["never"] == 0
    assert rows[1]["never"] == 8 and rows[1]["mean"] is None


def test_study_variants_cover_the_protocols():
    from experiments.invariance.main import study_variants

    exp = smoke.get_config().experiment
    sets = study_variants(exp)
    assert sets["d0"] == ("zhang", "azulay", "distance")
    assert sets["kv_same_zero"] == ("zhang", "azulay", "dissimilar")
    assert set(sets) == set(exp.zhang_variants + exp.azulay_variants + exp.depth_variants
                            + exp.kayhan_variants)  # fmt: skip
    bad = ml_collections.ConfigDict({"protocols": ("zang",)})
    with pytest.raises(ValueError, match="experiment.protocols: unknown value 'zang'"):
        study_variants(bad)


def test_red_green_through_the_dataset_api(data_dir):
    from cnn_jax import datasets

    opts = {"num_train": 6, "num_validation": 2, "num_test": 4}
    ds = datasets.load("red_green", data_dir=data_dir, **opts)
    swapped = datasets.load("red_green", data_dir=data_dir, test_set="dissimilar", **opts)
    assert ds.image_shape == (32, 32, 3) and ds.num_classes == 2
    assert datasets.check("red_green").image_shape == (32, 32, 3)
    np.testing.assert_array_equal(ds.train.images, swapped.train.images)
    assert not np.array_equal(ds.test.images, swapped.test.images)
    with pytest.raises(ValueError, match="test_set"):
        datasets.load("red_green", data_dir=data_dir, test_set="mixed")


def test_canvas_embedding_centres_on_black():
    from cnn_jax.datasets.api import _on_canvas
    from cnn_jax.datasets.core import Split

    images = np.full((2, 28, 28, 1), 7, np.uint8)
    out = _on_canvas(Split(images, np.array([0, 1], np.int32)), 40)
    assert out.images.shape == (2, 40, 40, 1)
    assert (out.images[:, 6:34, 6:34] == 7).all() and out.images.sum() == images.sum()
    assert _on_canvas(Split(images, np.array([0, 1], np.int32)), None).images is images


def test_literature_variants_pad_as_their_reference_code():
    """PyTorch's padding=1 (SYMMETRIC) where a stride-2 conv would pad differently under XLA's
    SAME (antialiased-cnns' strided conv3x3, Kayhan's S-conv); each variant names its geometry."""
    base = digits.get_config()
    strided = spec_from_config(variant_config(base, "strided_3x").model.to_dict(), 10)
    assert {(b.stride, b.padding) for b in strided.blocks} == {(2, "SYMMETRIC")}
    kv = spec_from_config(variant_config(base, "kv_same_zero").model.to_dict(), 2)
    assert {b.padding for b in kv.blocks} == {"SYMMETRIC"}
    blurred = spec_from_config(variant_config(base, "strided_blur3").model.to_dict(), 10)
    assert {(b.stride, b.pool, b.pool_padding) for b in blurred.blocks} == {(1, "blur", "SAME")}
    assert "SYMMETRIC" in geometry("strided") and "antialiased-cnns" in geometry("blur5_3x")
    assert "'sconv'" in geometry("kv_same_zero") and "XLA SAME" in geometry("d2_strided")


def test_gap_epochs_set_the_gap_variants_budget_only():
    base = digits.get_config()
    assert variant_config(base, "gap").train.num_epochs == base.train.num_epochs
    base.experiment.gap_epochs = 7
    assert training_budget(variant_config(base, "gap")) == "7 epochs"
    assert training_budget(variant_config(base, "gap_3x")) == "7 epochs x 3"
    assert variant_config(base, "max").train.num_epochs == base.train.num_epochs


def test_num_images_defaults_to_the_whole_test_split():
    exp = digits.experiment_config()
    assert ev.scored_images(exp, 10000) == 10000
    exp.num_images = 500
    assert ev.scored_images(exp, 10000) == 500 and ev.scored_images(exp, 300) == 300
    exp.num_images = 1
    with pytest.raises(ValueError, match=r"^experiment.num_images: 1; allowed"):
        ev.scored_images(exp, 10000)


def test_learned_variants_train_the_zhang_nets_with_their_own_shift_range():
    base = digits.get_config()
    for name, shift in (("gap_shift0", 0), ("strided_shift6", 6)):
        config = variant_config(base, name)
        assert config.augment.crop_padding == shift if config.get("augment") else shift == 0
    assert variant_config(base, "strided_shift6").model.padding == "SYMMETRIC"
    assert variant_config(base, "gap_shift2").model.head == "global_avg"
    assert describe("max_shift3") == "max pooling, trained with random shifts up to 3 px"
    assert geometry("blur3_shift1") == geometry("blur3")
    sets = study_variants_of(("learned",), base)
    assert sets["max_shift6"] == ("zhang", "azulay", "learned")
    plan = ev.shift_plan(dict(base.experiment), 3, ("learned",))["learned"]
    assert sorted({int(x) for x in plan[:, 0, 1]}) == list(range(-12, 13))


def study_variants_of(protocols, config):
    from experiments.invariance.main import study_variants

    exp = config.experiment
    exp.protocols = protocols
    return study_variants(exp)
