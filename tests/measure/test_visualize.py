"""Visualisation functions return arrays of the expected shapes and write valid PNGs."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from cnn_jax.measure import visualize
from cnn_jax.nn.model_spec import BlockSpec, ModelSpec, mnist_cnn
from cnn_jax.nn.models import CNN
from tests.nn.test_receptive_field import random_variables

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path, rendered):
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == rendered.shape[:2] and rendered.shape[2] == 4
    assert rendered.dtype == np.uint8 and rendered.min() < rendered.max()  # not blank


def test_filter_grid_layout_and_scale():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(5, 5, 3, 10))
    kernel[..., 3] = 0.0
    grid = visualize.filter_grid(kernel)
    assert grid.shape == (3 * 6 - 1, 4 * 6 - 1, 3)  # 10 filters -> 4 columns, 3 rows
    assert grid.min() >= 0.0 and grid.max() <= 1.0
    np.testing.assert_allclose(grid[0:5, 18:23], 0.5)  # filter 3 is all zero: grey
    np.testing.assert_allclose(grid[5, :], 1.0)  # white gap row
    assert visualize.filter_grid(rng.normal(size=(3, 3, 1, 4))).shape == (7, 7, 3)


def test_save_filter_grid_writes_png(tmp_path):
    kernel = np.random.default_rng(1).normal(size=(3, 3, 1, 8))
    grid, rendered = visualize.save_filter_grid(kernel, tmp_path / "filters.png")
    assert grid.shape == (11, 11, 3)  # 8 filters of 3x3 -> 3 x 3 tiles
    _assert_png(tmp_path / "filters.png", rendered)


def test_feature_maps_every_layer_and_panel(tmp_path):
    model = CNN(mnist_cnn())
    variables = random_variables(model, (16, 16, 1))
    x_bhwc = np.random.default_rng(2).normal(size=(2, 16, 16, 1)).astype(np.float32)
    maps = visualize.feature_maps(model, variables, x_bhwc)
    assert list(maps) == [
        "input",
        "block0/conv",
        "block0/act",
        "block0/pool",
        "block1/conv",
        "block1/act",
        "block1/pool",
    ]
    assert maps["block0/conv"].shape == (2, 16, 16, 32)
    assert maps["block1/pool"].shape == (2, 4, 4, 64)
    rendered = visualize.plot_feature_maps(
        maps, index=1, path=tmp_path / "maps.png", max_channels=4, notes={"block0/conv": "RF 3"}
    )
    _assert_png(tmp_path / "maps.png", rendered)


def test_top_activating_finds_the_brightest_images():
    """A 1x1 conv with weight 1 and identity activation scores each image by its max pixel."""
    spec = ModelSpec((BlockSpec(1, 1, activation="identity"),), num_classes=2)
    model = CNN(spec)
    variables = random_variables(model, (6, 6, 1))
    variables["params"]["block0"]["conv"]["kernel"] = np.ones((1, 1, 1, 1), np.float32)
    variables["params"]["block0"]["conv"]["bias"] = np.zeros((1,), np.float32)
    peaks = np.array([10, 250, 40, 200, 90, 30], np.uint8)
    images = np.zeros((6, 6, 6, 1), np.uint8)
    for i, v in enumerate(peaks):
        images[i, i % 6, (2 * i) % 6, 0] = v
    scores = visualize.channel_scores(
        model, variables, images, [0.0], [1.0], "block0/act", 0, batch_size=4
    )
    np.testing.assert_allclose(scores, peaks / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(visualize.top_activating(scores, k=3), [1, 3, 4])
    with pytest.raises(ValueError, match="channel"):
        visualize.channel_scores(model, variables, images, [0.0], [1.0], "block0/act", 5)
    with pytest.raises(ValueError, match="layer"):
        visualize.channel_scores(model, variables, images, [0.0], [1.0], "block9/act", 0)


def test_plot_images_writes_png(tmp_path):
    images = np.random.default_rng(3).integers(0, 255, size=(5, 8, 8, 1), dtype=np.uint8)
    rendered = visualize.plot_images(images, tmp_path / "top.png", titles=list("abcde"))
    _assert_png(tmp_path / "top.png", rendered)
    with pytest.raises(ValueError, match="images"):
        visualize.plot_images(np.zeros((2, 8, 8)), None)
