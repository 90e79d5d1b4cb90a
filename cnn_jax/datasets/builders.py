"""TFDS builders (no TensorFlow needed) that store this project's datasets as array_record.

Each builder writes fixed-shape uint8 images (raw bytes) and class labels, in the order
the source gives them (shuffling disabled), so "the last 5,000 MNIST training images" means
what it says. A builder config's name encodes every option that changes the content (e.g.
'canvas16_scale1_center'), so two settings never share a prepared directory:
`<data_dir>/cnn_jax_digits/canvas16_scale1_center/1.0.0/`. Bump VERSION when a generator's
output changes. `for_kind` makes each built-in dataset's builder from its `DatasetKind`.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from cnn_jax.datasets.kind import Arrays, DatasetKind

RAW_CONFIG = "idx"  # the one variant of a dataset read from raw files


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


class _DrawnBuilder(ArrayBuilder, skip_registration=True):
    """A dataset drawn by code: the config's options are the generator's arguments."""

    KIND: DatasetKind

    def _make_arrays(self, dl_manager: tfds.download.DownloadManager) -> Arrays:
        return self.KIND.make_splits(**self.builder_config.options)


class _RawFilesBuilder(ArrayBuilder, skip_registration=True):
    """A dataset read from the raw files in the manual dir that `storage.prepare` points it to."""

    KIND: DatasetKind

    def _make_arrays(self, dl_manager: tfds.download.DownloadManager) -> Arrays:
        return self.KIND.make_splits(dl_manager.manual_dir)


def for_kind(kind: DatasetKind) -> type[ArrayBuilder]:
    """The TFDS builder class of a built-in dataset: 'cnn_jax_<name>', version 1.0.0.

    Make it once per kind: TFDS keeps every builder class it sees.
    """
    attrs: dict[str, Any] = {
        "__module__": __name__,  # TFDS records it in dataset_info.json
        "name": f"cnn_jax_{kind.name}",
        "KIND": kind,
        "CLASS_NAMES": kind.class_names,
        "DESCRIPTION": kind.description,
    }
    base: type[ArrayBuilder] = _DrawnBuilder
    if not kind.drawn:
        base = _RawFilesBuilder
        attrs["MANUAL_DOWNLOAD_INSTRUCTIONS"] = kind.manual_download
        attrs["BUILDER_CONFIGS"] = [ArrayConfig(name=RAW_CONFIG, image_shape=kind.image_shape({}))]
    class_name = "".join(part.title() for part in kind.name.split("_")) + "Builder"
    return types.new_class(
        class_name, (base,), {"skip_registration": True}, lambda ns: ns.update(attrs)
    )
