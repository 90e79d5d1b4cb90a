"""Dataset records: the names, options, builders and `load` all follow `registry.KINDS`."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import tensorflow_datasets as tfds

from cnn_jax import datasets
from cnn_jax.datasets import api, builders, mnist, options, registry
from cnn_jax.datasets.kind import DatasetKind, int_at_least
from tests.conftest import run_python


def _stripes(width: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    labels = np.arange(6, dtype=np.int32) % 2
    images = np.zeros((6, 8, 8, 1), np.uint8)
    images[labels == 1, :, :width] = 255
    return {split: (images, labels) for split in ("train", "validation", "test")}


STRIPES = DatasetKind(
    name="stripes",
    description="A stripe on the left, or none.",
    class_names=("blank", "stripe"),
    options={"width": int_at_least(1, 2)},
    make_splits=_stripes,
    side=8,
    variant_name=lambda width: f"width{width}",
)


def test_names_options_and_builders_follow_the_records():
    assert datasets.NAMES == api.NAMES == tuple(kind.name for kind in registry.KINDS)
    assert set(options.OPTIONS) == {*datasets.NAMES, options.GENERIC}
    for kind in registry.KINDS:
        assert registry.BY_NAME[kind.name] is kind
        assert options.OPTIONS[kind.name] == {**kind.options, **options.COMMON}
        builder = api.BUILDERS[kind.name]
        assert builder.name == f"cnn_jax_{kind.name}" and builder.KIND is kind
        assert kind.class_names == builder.CLASS_NAMES
        assert kind.description == builder.DESCRIPTION


def test_a_builder_made_from_a_record_keeps_the_prepared_layout():
    drawn = builders.for_kind(STRIPES)
    assert drawn.__name__ == "StripesBuilder" and drawn.__module__ == "cnn_jax.datasets.builders"
    assert drawn.name == "cnn_jax_stripes" and str(drawn.VERSION) == "1.0.0"
    assert drawn.BUILDER_CONFIGS == [] and drawn.MANUAL_DOWNLOAD_INSTRUCTIONS is None
    assert "cnn_jax_stripes" not in tfds.core.registered._DATASET_REGISTRY  # not registered
    raw = api.BUILDERS["fashion_mnist"]
    assert raw.__name__ == "FashionMnistBuilder"
    assert [c.name for c in raw.BUILDER_CONFIGS] == [builders.RAW_CONFIG]
    assert raw.BUILDER_CONFIGS[0].image_shape == mnist.IMAGE_SHAPE
    assert mnist.SOURCES["fashion_mnist"].how_to_get == raw.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_a_new_drawn_dataset_is_one_record_and_one_registry_line(tmp_path):
    """A fresh interpreter adds one record to the registry: load, check and the option
    errors know it, with no other table touched."""
    code = textwrap.dedent(
        f"""
        import importlib, json
        from cnn_jax.datasets import api, options, registry
        from tests.datasets.test_kinds import STRIPES

        registry.KINDS = (*registry.KINDS, STRIPES)
        registry.BY_NAME[STRIPES.name] = STRIPES
        importlib.reload(options)
        importlib.reload(api)
        ds = api.load("stripes", data_dir={str(tmp_path)!r}, width=3)
        spec = api.check("stripes", data_dir={str(tmp_path)!r})
        try:
            api.check("stripes", data_dir={str(tmp_path)!r}, height=1)
        except ValueError as e:
            error = str(e)
        print(json.dumps({{
            "names": api.NAMES, "shape": ds.image_shape, "classes": ds.class_names,
            "stripe": int(ds.train.images[1, 0, :, 0].sum()), "spec": spec.image_shape,
            "error": error,
        }}))
        """
    )
    result = run_python(code, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout.splitlines()[-1])
    assert got["names"][-1] == "stripes" and got["shape"] == got["spec"] == [8, 8, 1]
    assert got["classes"] == ["blank", "stripe"] and got["stripe"] == 3 * 255
    assert got["error"] == (
        "unknown option 'height' for dataset 'stripes'; allowed: width, train_subset, "
        "subset_seed, corrupt, corrupt_seed"
    )
    assert (tmp_path / "cnn_jax_stripes" / "width3" / "1.0.0" / "dataset_info.json").is_file()
