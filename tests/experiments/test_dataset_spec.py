"""Experiments read their dataset section through `DatasetSpec` (validated, typed)."""

from __future__ import annotations

import types

import ml_collections
import numpy as np
import pytest

from cnn_jax import datasets
from experiments.anatomy import hyperparameters
from experiments.invariance import evaluate
from experiments.invariance import main as invariance_main
from experiments.regularization import main as regularization_main


def _config(name: str = "digits", data_dir: str | None = "/data", **options):
    config = ml_collections.ConfigDict()
    config.dataset = {"name": name, "data_dir": data_dir, "options": options}
    return config


@pytest.fixture
def loads(monkeypatch) -> list:
    """Records every datasets.load / datasets.check call instead of reading any data."""
    calls = []

    def fake(kind):
        def record(name, *, data_dir=None, **opts):
            calls.append((kind, name, data_dir, opts))
            return types.SimpleNamespace(name=name, num_classes=10, test=None)

        return record

    monkeypatch.setattr(datasets, "load", fake("load"))
    monkeypatch.setattr(datasets, "check", fake("check"))
    return calls


def test_hyperparameters_loads_each_distinct_validated_dataset_once(loads):
    configs = {
        "a": _config(canvas_size=16, position="center"),
        "b": _config(position="center", canvas_size=16),  # the same options, other order
        "c": _config(canvas_size=32),
    }
    assert len(hyperparameters.loaded_datasets(configs)) == 2
    assert loads == [
        ("load", "digits", "/data", {"canvas_size": 16, "position": "center"}),
        ("load", "digits", "/data", {"canvas_size": 32}),
    ]


def test_a_bad_dataset_section_is_refused_before_anything_is_loaded(loads):
    with pytest.raises(ValueError, match="canvas_size") as err:
        hyperparameters.loaded_datasets({"a": _config(canvas_size=4)})
    assert "\n" not in str(err.value) and loads == []
    with pytest.raises(ValueError, match=r"^dataset.options.position: 'anywhere'"):
        invariance_main._num_classes(_config(position="anywhere"))
    assert loads == []


def test_regularization_full_dataset_drops_the_subset_options(loads):
    config = _config(canvas_size=16, train_subset=100, subset_seed=2)
    regularization_main._full_dataset(config)
    assert loads == [("load", "digits", "/data", {"canvas_size": 16})]


def test_translation_invariance_counts_classes_from_the_spec(loads):
    assert invariance_main._num_classes(_config(data_dir=None, canvas_size=16)) == 10
    assert loads == [("check", "digits", None, {"canvas_size": 16})]


def test_dissimilar_set_keeps_the_run_options_and_data_dir(loads, monkeypatch, tmp_path):
    test = types.SimpleNamespace(images=np.zeros((2, 4, 4, 3), np.uint8), labels=np.zeros(2))
    loaded = types.SimpleNamespace(test=test)
    monkeypatch.setattr(datasets, "load", lambda *a, **k: loads.append((a, k)) or loaded)
    monkeypatch.setattr(evaluate, "_outputs", lambda *a: (np.zeros((1, 2, 2)),) * 2)
    monkeypatch.setattr(evaluate, "_save", lambda *a: None)
    run = types.SimpleNamespace(config=_config("red_green", num_train=10), variables=None)
    evaluate._evaluate_dissimilar(run, None, tmp_path, batch=2)
    expected = {"data_dir": "/data", "num_train": 10, "test_set": "dissimilar"}
    assert loads == [(("red_green",), expected)]
