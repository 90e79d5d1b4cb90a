"""End to end: the smoke config of the translation-invariance study, then a cached rerun;
the CIFAR-10 config on a tiny fake prepared TFDS copy."""

from __future__ import annotations

import io
import json

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from experiments.invariance import main as ti
from experiments.invariance.configs import cifar10, smoke

FIGURES = ("zhang_metrics.png", "azulay_metrics.png", "accuracy_vs_shift.png", "red_green.png")


@pytest.mark.slow  # the smoke config as CI runs it: 6 variants x 2 vmapped seeds
def test_smoke_study_end_to_end_then_cached(tmp_path, data_dir, capsys):
    config = smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    results = ti.run_experiment(config, tmp_path)
    for name in FIGURES + ("two_dots.png",):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name
    saved = json.loads((tmp_path / "results.json").read_text())
    s = saved["summary"]
    for v in ("max", "blur3", "max_noaug", "d0", "d2_max"):
        for m in ("accuracy_unshifted", "accuracy_shifted", "consistency", "p_top1_change"):
            iv = s[v][m]
            assert 0.0 <= iv["low"] <= iv["estimate"] <= iv["high"] <= 1.0, (v, m)
    assert {"similar", "dissimilar"} <= set(s["kv_same_zero"])
    claims = {(c["a"], c["b"], c["quantity"]): c for c in saved["claims"]}
    assert ("blur3", "max", "consistency") in claims
    assert ("kv_same_zero.similar", "kv_same_zero.dissimilar", "accuracy") in claims
    assert "comparisons" not in saved and "budget_verdicts" not in saved
    cells = [v for c in saved["claims"] for v in c["budgets"].values()]
    assert all(v["label"] in ("held", "contradicted", "equivalent", "inconclusive") for v in cells)
    assert all(0 <= v["p_holm"] <= 1 for v in cells)
    assert saved["depth"]["curves"]["d0"]["distances"] == list(config.experiment.distances)
    readme = (tmp_path / "readme.md").read_text()
    assert "Zhang 2019 protocol" in readme and "99.8 / 8.4" in readme  # Kayhan's S-zero row
    assert "| blur3 raises consistency over max (Zhang 2019) | superiority |" in readme

    # Rerun: every run cached, shifted predictions not recomputed, same numbers.
    shifted = sorted(tmp_path.glob("runs/*/seed_*/shifted/*.npz"))
    stamps = {p: p.stat().st_mtime_ns for p in shifted}
    assert len(shifted) >= 6 * 2 * 2
    capsys.readouterr()
    again = ti.run_experiment(config, tmp_path)
    out = capsys.readouterr().out
    assert "(trained," not in out and out.count("(cached,") == 12
    assert {p: p.stat().st_mtime_ns for p in shifted} == stamps
    assert again["summary"] == results["summary"]


class FakeCifar10(tfds.image_classification.Cifar10, skip_registration=True):
    """A tiny prepared stand-in for a user's `tfds build cifar10`: same name, version and
    features, 24 train and 8 test images."""

    name = "cifar10"

    def _split_generators(self, dl_manager):
        return {"train": self._fake(24, 0), "test": self._fake(8, 1)}

    def _fake(self, n, seed):
        rng = np.random.default_rng(seed)
        for i in range(n):
            png = io.BytesIO()  # PNG bytes from PIL: TFDS's own encoder needs TensorFlow
            PIL.Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(png, "PNG")
            yield i, {"id": f"{seed}_{i}", "image": png.getvalue(), "label": i % 10}


@pytest.mark.slow  # one tiny training on the fake CIFAR-10 copy
def test_cifar10_config_runs_on_a_fake_prepared_copy(tmp_path):
    root = tmp_path / "tfds"
    FakeCifar10(data_dir=str(root)).download_and_prepare(
        file_format="array_record",
        download_config=tfds.download.DownloadConfig(try_download_gcs=False),
    )
    config = cifar10.get_config()
    config.dataset.data_dir = str(root)
    config.dataset.options = {"validation_size": 4}
    config.train.num_epochs = 1
    config.train.batch_size = 8
    exp = config.experiment
    exp.protocols, exp.zhang_variants, exp.seeds = ("zhang",), ("max", "blur3"), (0,)
    exp.num_images = 8
    results = ti.run_experiment(config, tmp_path / "work")
    assert results["dataset"]["name"] == "cifar10"
    assert set(results["summary"]) == {"max", "blur3"}
    run = json.loads((tmp_path / "work/runs/max/seed_0/results.json").read_text())
    assert run["image_shape"] == [32, 32, 3]
