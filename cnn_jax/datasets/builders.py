"""TFDS builders (no TensorFlow needed) that store this project's datasets as array_record.

Each builder writes fixed-shape uint8 images (raw bytes) and class labels, in the order
the source gives them (shuffling disabled), so "the last 5,000 MNIST training images" means
what it says. A builder config's name encodes every option that changes the content (e.g.
'canvas16_scale1_center'), so two settings never share a prepared directory:
`<data_dir>/cnn_jax_digits/canvas16_scale1_center/1.0.0/`. Bump VERSION when a generator's
output changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from cnn_jax.datasets import digits, mnist, redgreen, shapes

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(eq=False)
class ArrayConfig(tfds.core.BuilderConfig):
    """One variant of a dataset: `options` are the generator's arguments, all in `name`."""

    image_shape: tuple[int, int, int] = (0, 0, 0)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


class ArrayBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base: subclasses give `name`, CLASS_NAMES, DESCRIPTION and `_make_arrays`."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First version."}
    CLASS_NAMES: tuple[str, ...] = ()
    DESCRIPTION = ""

    def _info(self) -> tfds.core.DatasetInfo:
        image = tfds.features.Tensor(
            shape=self.builder_config.image_shape,
            dtype=np.uint8,
            encoding=tfds.features.Encoding.BYTES,  # not one int64 per pixel
        )
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {"image": image, "label": tfds.features.ClassLabel(names=self.CLASS_NAMES)}
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
        )

    def _make_arrays(self, dl_manager: tfds.download.DownloadManager) -> Arrays:
        raise NotImplementedError

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        return {
            split: self._generate_examples(images, labels)
            for split, (images, labels) in self._make_arrays(dl_manager).items()
        }

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray) -> Iterator:
        for i in range(len(labels)):
            yield i, {"image": images[i], "label": int(labels[i])}


class DigitsBuilder(ArrayBuilder, skip_registration=True):
    name = "cnn_jax_digits"
    CLASS_NAMES = digits.CLASS_NAMES
    DESCRIPTION = "scikit-learn's 8x8 digits (UCI optdigits) placed on a canvas."

    def _make_arrays(self, dl_manager: tfds.download.DownloadManager) -> Arrays:
        return digits.make_splits(**self.builder_config.options)


class ShapesBuilder(ArrayBuilder, skip_registration=True):
    name = "cnn_jax_shapes"
    CLASS_NAMES = shapes.CLASS_NAMES
    DESCRIPTION = "Synthetic shapes at random positions and sizes."

    def _make_arrays(self, dl_manager: tfds.download.DownloadManager) -> Arrays:
        return shapes.make_splits(**self.builder_config.options)


class RedGreenBuilder(ArrayBuilder, skip_registration=True):
    name = "cnn_jax_red_green"
    CLASS_NAMES = redgreen.CLASS_NAMES
    DESCRIPTION = "Kayhan & van Gemert 2020's red-green boxes (class = which colour is left)."

    def _make_arrays(self, dl_manager: tfds.download.DownloadManager) -> Arrays:
        return redgreen.make_splits(**self.builder_config.options)


class _IdxBuilder(ArrayBuilder, skip_registration=True):
    """MNIST-format data read from the manual dir that `storage.prepare` points it to."""

    SOURCE = ""

    def _make_arrays(self, dl_manager: tfds.download.DownloadManager) -> Arrays:
        files = mnist.files_in(Path(dl_manager.manual_dir))
        if files is None:
            raise FileNotFoundError(f"the IDX files vanished from {dl_manager.manual_dir}")
        return mnist.read_splits(self.SOURCE, files)


class MnistBuilder(_IdxBuilder, skip_registration=True):
    name = "cnn_jax_mnist"
    SOURCE = "mnist"
    CLASS_NAMES = mnist.SOURCES["mnist"].class_names
    DESCRIPTION = "MNIST from the four official IDX files (60k train, 10k test)."
    MANUAL_DOWNLOAD_INSTRUCTIONS = mnist.SOURCES["mnist"].how_to_get
    BUILDER_CONFIGS = [ArrayConfig(name="idx", image_shape=mnist.IMAGE_SHAPE)]


class FashionMnistBuilder(_IdxBuilder, skip_registration=True):
    name = "cnn_jax_fashion_mnist"
    SOURCE = "fashion_mnist"
    CLASS_NAMES = mnist.SOURCES["fashion_mnist"].class_names
    DESCRIPTION = "Fashion-MNIST from the four IDX files (60k train, 10k test)."
    MANUAL_DOWNLOAD_INSTRUCTIONS = mnist.SOURCES["fashion_mnist"].how_to_get
    BUILDER_CONFIGS = [ArrayConfig(name="idx", image_shape=mnist.IMAGE_SHAPE)]
