"""End to end: the translation-invariance experiment on a tiny config, then a resumed rerun."""

from __future__ import annotations

import csv
import json

import pytest

from experiments import translation_invariance as ti
from experiments.configs import invariance_smoke


def _tiny_config():
    config = invariance_smoke.get_config()
    config.train.num_epochs = 1
    exp = config.experiment
    exp.variants = ("max", "gap")
    exp.seeds = (0,)
    exp.max_shift = 1
    exp.num_images = 12
    exp.batch_size = 16
    exp.eq_max_shift = 1
    exp.eq_num_images = 4
    exp.two_dots_distances = (2,)
    exp.two_dots_levels = 2
    exp.two_dots_show = 2
    return config


@pytest.mark.slow  # two tiny trainings and their measurement: ~40 s on 2 idle cores
def test_tiny_experiment_writes_results_and_resumes(tmp_path, capsys):
    config = _tiny_config()
    results = ti.run_experiment(config, tmp_path)
    for name in ti.PLOTS:
        path = tmp_path / name
        assert path.exists() and path.read_bytes()[:4] == b"\x89PNG", name

    saved = json.loads((tmp_path / "results.json").read_text())
    assert [(r["variant"], r["seed"]) for r in saved["runs"]] == [("max", 0), ("gap", 0)]
    for run in saved["runs"]:
        m = run["metrics"]
        assert 0.0 <= m["consistency"] <= 1.0 and 0.0 <= m["p_top1_change_1px"] <= 1.0
        assert 0.0 <= m["test_accuracy"] <= 1.0
        assert len(run["accuracy_map"]) == 3 and len(run["accuracy_map"][0]) == 3
        # The unshifted image of the grid is the test set's own first images.
        assert m["accuracy_unshifted"] == pytest.approx(run["accuracy_map"][1][1])
        assert [row["layer"] for row in run["layers"]][:2] == ["block0/conv", "block0/act"]
    assert saved["summary"]["max"]["consistency"]["n"] == 1
    assert {row["kind"] for row in saved["two_dots"]} >= {"max", "avg", "blur"}

    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    per_run = sum(len(r["metrics"]) for r in saved["runs"])
    per_variant = sum(len(ms) for ms in saved["summary"].values())
    assert len(rows) == per_run + per_variant
    assert {r["seed"] for r in rows} == {"0", "mean"}

    # A rerun reads every trained run and measurement back instead of recomputing it.
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/seed_0/*.json")}
    assert len(stamps) == 6  # config.json, results.json and invariance.json of both runs
    capsys.readouterr()
    again = ti.run_experiment(config, tmp_path)
    out = capsys.readouterr().out
    assert out.count("(cached,") == 2 and "(trained," not in out
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again["summary"] == results["summary"]


def test_unknown_variant_is_one_line_error():
    config = _tiny_config()
    with pytest.raises(ValueError, match="experiment.variants: unknown value 'maxx'"):
        ti.variant_config(config, "maxx")
