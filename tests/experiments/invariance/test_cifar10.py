"""The CIFAR-10 path end to end without the real data: a CIFAR-shaped (32x32x3, 10 classes)
TFDS data dir prepared from generated images, then the study's cifar10 config at smoke size
(configs/cifar10_smoke.py) on it, as a user with `tfds build cifar10` runs it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from experiments.invariance import main as ti
from experiments.invariance.configs import cifar10, cifar10_smoke


class FakeCifar10(tfds.image_classification.Cifar10, skip_registration=True):
    """A tiny prepared stand-in for a user's `tfds build cifar10`: same name, version and
    features (PNG-encoded 32x32x3 images, 10 labels), `n_train` train and `n_test` test images."""

    name = "cifar10"
    n_train, n_test = 24, 8

    def _split_generators(self, dl_manager):
        return {"train": self._fake(self.n_train, 0), "test": self._fake(self.n_test, 1)}

    def _fake(self, n, seed):
        rng = np.random.default_rng(seed)
        for i in range(n):
            png = io.BytesIO()  # PNG bytes from PIL: TFDS's own encoder needs TensorFlow
            PIL.Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(png, "PNG")
            yield i, {"id": f"{seed}_{i}", "image": png.getvalue(), "label": i % 10}


def prepare_fake_cifar10(root: Path) -> Path:
    """Writes <root>/cifar10/3.0.2/ (array_record) as `tfds build cifar10` would; no download."""
    FakeCifar10(data_dir=str(root)).download_and_prepare(
        file_format="array_record",
        download_config=tfds.download.DownloadConfig(try_download_gcs=False),
    )
    return root


@pytest.mark.slow  # ~70 s on the shared 2-core machine: two compiles of the 32x32x3 net
def test_cifar10_smoke_config_runs_end_to_end_on_a_fake_prepared_copy(tmp_path):
    config = cifar10_smoke.get_config()
    config.dataset.data_dir = str(prepare_fake_cifar10(tmp_path / "tfds"))
    results = ti.run_experiment(config, tmp_path / "work")
    assert results["dataset"]["name"] == "cifar10" and results["num_images"] == 8
    assert set(results["summary"]) == {"max", "blur3"}
    run = json.loads((tmp_path / "work/runs/max/seed_0/results.json").read_text())
    assert run["image_shape"] == [32, 32, 3]
    quantities = {c["quantity"] for c in results["claims"]}
    assert {"drop", "consistency", "p_top1_change"} <= quantities
    readme = (tmp_path / "work/readme.md").read_text()
    assert "Translation invariance on **cifar10** (dataset options: " in readme
    assert "train_subset=16" in readme and "**Claims**" in readme
    full = cifar10.get_config().experiment  # the study itself: every test image, 3 protocols
    assert full.get("num_images") is None and set(full.protocols) == {"zhang", "azulay", "budget"}
