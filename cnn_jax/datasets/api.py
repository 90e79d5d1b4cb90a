"""`load(name, data_dir=..., **options)`: one call from a dataset name to in-memory splits.

Every dataset goes through TFDS (without TensorFlow): prepared once into `data_dir` as
array_record, then read by random access. The built-in names (`KINDS`, from
`registry`) are prepared by this package's builders, one per dataset record; any other
name must be a TFDS dataset already prepared (in array_record format) in `data_dir`, such
as 'cifar10'. Validation hold-outs and `train_subset` are applied at load time, so they
never need another prepared copy; so are Zhang et al. 2017's corruptions (`corrupt`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from cnn_jax.datasets import builders, corrupt, mnist, options, registry, storage
from cnn_jax.datasets.core import (
    Dataset,
    DatasetNotFoundError,
    DatasetSpec,
    Split,
    channel_stats,
    resolve_data_dir,
)
from cnn_jax.datasets.kind import DatasetKind

KINDS = registry.KINDS  # the built-in datasets, one record each
NAMES = tuple(kind.name for kind in KINDS)
BUILDERS = {kind.name: builders.for_kind(kind) for kind in KINDS}  # TFDS builder per name
_SPLITS = ("train", "validation", "test")
_GENERIC_VALIDATION_FRACTION = 0.1


def available() -> tuple[str, ...]:
    """The datasets this package can prepare itself (any other name: a prepared TFDS dataset)."""
    return NAMES


def load(name: str, *, data_dir: str | os.PathLike | None = None, **opts: Any) -> Dataset:
    """Loads dataset `name` into memory, preparing it in `data_dir` first if needed.

    `data_dir` defaults to $CNN_JAX_DATA_DIR, else ~/tensorflow_datasets. Options per
    dataset are listed in `options.OPTIONS`; unknown ones raise ValueError. Raises
    DatasetNotFoundError when the raw files or prepared data are missing, and
    DatasetIntegrityError when a raw file is damaged.
    """
    parsed = options.parse(name, opts)
    root = resolve_data_dir(data_dir)
    kind = registry.BY_NAME.get(name)
    if kind is None:
        builder = _open_tfds(name, root)
        splits = _read_generic(builder, name, parsed)
    elif kind.drawn:
        builder = _prepare_drawn(kind, parsed, root)
        splits = {s: storage.read_own_split(builder, s) for s in _SPLITS}
    else:
        builder = _prepare_raw(kind, parsed, root)
        splits = _read_raw(builder, name, parsed)
    label = builder.info.features[parsed.get("label_key", "label")]
    splits["train"] = _subset(splits["train"], parsed["train_subset"], name, parsed["subset_seed"])
    splits = corrupt.apply(splits, parsed["corrupt"], parsed["corrupt_seed"], label.num_classes)
    train = splits["train"]
    mean, std = channel_stats(train.images)
    return Dataset(
        name=name,
        train=train,
        validation=splits["validation"],
        test=splits["test"],
        num_classes=label.num_classes,
        image_shape=tuple(int(d) for d in train.images.shape[1:]),
        mean=mean,
        std=std,
        class_names=tuple(label.names),
    )


def check(name: str, *, data_dir: str | os.PathLike | None = None, **opts: Any) -> DatasetSpec:
    """Checks name, options and that the data can be had, without preparing or loading it.

    Returns the image shape and classes, which is what a model needs to be traced.
    """
    parsed = options.parse(name, opts)
    root = resolve_data_dir(data_dir)
    kind = registry.BY_NAME.get(name)
    if kind is not None:
        shape = kind.image_shape(parsed) if kind.drawn else _raw_shape(kind, parsed, root)
        return DatasetSpec(name, shape, len(kind.class_names), kind.class_names)
    builder = _open_tfds(name, root)
    features = builder.info.features
    shape = tuple(features[parsed["image_key"]].shape)
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3 or None in shape:
        raise ValueError(f"dataset {name!r}: images of shape {list(shape)}; allowed: fixed H, W, C")
    label = features[parsed["label_key"]]
    return DatasetSpec(name, shape, label.num_classes, tuple(label.names))


def _raw_shape(kind: DatasetKind, parsed: dict[str, Any], root: Path) -> tuple[int, int, int]:
    """The image shape of a raw-file dataset, once its prepared copy or raw files are found."""
    with storage.quiet_tfds():
        builder = BUILDERS[kind.name](config=builders.RAW_CONFIG, data_dir=str(root))
        prepared = builder.is_prepared()
    if not prepared:
        mnist.find_files(kind.name, root, parsed["raw_dir"])
    shape = kind.image_shape(parsed)
    if parsed["canvas_size"] is not None:
        shape = (parsed["canvas_size"], parsed["canvas_size"], shape[2])
    return shape


def _prepare_drawn(kind: DatasetKind, parsed: dict[str, Any], root: Path) -> builders.ArrayBuilder:
    """The prepared variant of a drawn dataset: its options name the variant."""
    args = {k: parsed[k] for k in kind.options}
    config = builders.ArrayConfig(
        name=kind.variant_name(**args),
        image_shape=kind.image_shape(args),
        options=args,
    )
    return storage.prepare(BUILDERS[kind.name], config, root)


def _prepare_raw(kind: DatasetKind, parsed: dict[str, Any], root: Path) -> builders.ArrayBuilder:
    def manual_dir() -> Path:
        return mnist.find_files(kind.name, root, parsed["raw_dir"])["train_images"].parent

    return storage.prepare(BUILDERS[kind.name], builders.RAW_CONFIG, root, manual_dir=manual_dir)


def _read_raw(
    builder: builders.ArrayBuilder, name: str, parsed: dict[str, Any]
) -> dict[str, Split]:
    """Train (less the validation hold-out), validation and test, each on its canvas."""
    train = storage.read_own_split(builder, "train")
    splits = _hold_out(train, parsed["validation_size"], name)
    splits["test"] = storage.read_own_split(builder, "test")
    return {k: _on_canvas(v, parsed["canvas_size"]) for k, v in splits.items()}


def _hold_out(train: Split, size: int, name: str) -> dict[str, Split]:
    """The last `size` training images become the validation split (a fixed choice)."""
    if size >= len(train):
        raise ValueError(
            f"dataset option 'validation_size': {size} for {name!r}; allowed: fewer than "
            f"the {len(train)} training images"
        )
    cut = len(train) - size
    return {
        "train": Split(train.images[:cut], train.labels[:cut]),
        "validation": Split(train.images[cut:], train.labels[cut:]),
    }


def _subset(train: Split, n: int | None, name: str, seed: int | None = None) -> Split:
    """The first n training images, or (subset_seed set) n drawn without replacement."""
    if n is None:
        return train
    if n > len(train):
        raise ValueError(
            f"dataset option 'train_subset': {n} for {name!r}; allowed: at most the "
            f"{len(train)} training images"
        )
    if seed is None:
        return Split(train.images[:n], train.labels[:n])
    index = np.sort(np.random.default_rng(seed).permutation(len(train))[:n])
    return Split(train.images[index], train.labels[index])


def _on_canvas(split: Split, size: int | None) -> Split:
    """Each image centred on a `size` x `size` black canvas (None: unchanged); a load-time
    view, like train_subset, so no second prepared copy. Zero is the background of MNIST and
    Fashion-MNIST, so this is the 'black canvas' embedding of Azulay & Weiss 2019."""
    h, w = split.images.shape[1:3]
    if size is None or size == h == w:
        return split
    top, left = (size - h) // 2, (size - w) // 2
    pads = ((0, 0), (top, size - h - top), (left, size - w - left), (0, 0))
    return Split(np.pad(split.images, pads), split.labels)


def _open_tfds(name: str, root: Path) -> tfds.core.DatasetBuilder:
    """The builder of a TFDS dataset prepared in array_record format in `root`."""
    how = (
        "Prepare it once where the internet (and TensorFlow) is available, e.g. `tfds build "
        f"{name} --file_format=array_record --data_dir=DIR`, and copy DIR's contents to {root}; "
        f"or use one of the built-in datasets: {', '.join(NAMES)}."
    )
    with storage.quiet_tfds():
        try:
            builder = tfds.builder(name, data_dir=str(root))
        except tfds.core.registered.DatasetNotFoundError as err:
            raise DatasetNotFoundError(f"TFDS dataset {name!r} not found in {root}. {how}") from err
        prepared = builder.is_prepared()
    if not prepared:
        raise DatasetNotFoundError(f"TFDS dataset {name!r} is not prepared in {root}. {how}")
    if builder.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
        raise DatasetNotFoundError(
            f"TFDS dataset {name!r} in {root} is stored as {builder.info.file_format}, but "
            f"random access needs array_record. {how}"
        )
    return builder


def _read_generic(
    builder: tfds.core.DatasetBuilder, name: str, parsed: dict[str, Any]
) -> dict[str, Split]:
    available_splits = set(builder.info.splits)
    missing = {"train", "test"} - available_splits
    if missing:
        raise ValueError(
            f"dataset {name!r} has splits {sorted(available_splits)}; "
            "allowed: datasets with 'train' and 'test' splits"
        )
    keys = {"image_key": parsed["image_key"], "label_key": parsed["label_key"]}
    train = storage.read_split(builder, "train", **keys)
    test = storage.read_split(builder, "test", **keys)
    size = parsed["validation_size"]
    if size is None and "validation" in available_splits:
        return {
            "train": train,
            "validation": storage.read_split(builder, "validation", **keys),
            "test": test,
        }
    if size is None:
        size = max(1, round(len(train) * _GENERIC_VALIDATION_FRACTION))
    return {**_hold_out(train, size, name), "test": test}
