"""The regularizer study end to end on its smoke config: every phase runs, every promised file is
written, the test split enters only through the chosen settings, the claims are consistent
(Holm p >= raw p, labels from the engine's set, the tuning size's claims carry the three
budgets), and a rerun trains nothing."""

from __future__ import annotations

import json

import pytest

from cnn_jax.stats.claims import LABELS
from experiments.regularization import main as reg
from experiments.regularization.configs import smoke
from experiments.regularization.tuning import chosen_settings

FILES = ("results.json", "summary.md", "readme.md", "tuning.png", "gain_vs_size.png")


@pytest.fixture
def study(tmp_path_factory, data_dir):
    config = smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    workdir = tmp_path_factory.mktemp("regularization")
    return workdir, config, reg.run_experiment(config, workdir)


@pytest.mark.slow
def test_smoke_study_end_to_end(study, capsys):
    """One test so the smoke study is computed once per CI (xdist spread the three checks over
    both workers and each built it: 267 s + 260 s)."""
    _writes_every_file_and_tunes_on_validation(study)
    _statistics_are_consistent(study)
    _rerun_trains_nothing(study, capsys)


def _writes_every_file_and_tunes_on_validation(study):
    workdir, config, results = study
    for name in FILES:
        assert (workdir / name).stat().st_size > 0, name
    tuning = results["tuning"]
    chosen = chosen_settings(tuning)
    exp = config.experiment
    assert set(chosen) >= {"baseline", "dropout", "all", "momentum.baseline", "momentum.l2"}
    assert len(tuning["grids"]["dropout"]) == len(exp.grids.dropout) * len(exp.learning_rates.adamw)
    assert all("test_accuracy" not in g for grid in tuning["grids"].values() for g in grid)
    chosen_names = {s.name for s in chosen.values()}
    evaluated = {r["key"].split("/")[1] for r in results["runs"]}
    assert evaluated <= chosen_names  # no test number of a non-chosen setting is reported
    readme = (workdir / "readme.md").read_text()
    assert "Each regularizer helps" in readme and "Zhang" in readme
    assert "Stopping epochs of the converged runs" in readme
    converged = [r for r in results["runs"] if r["mode"] == "converged"]
    assert all(r["capped"] is (not r["stopped_early"]) for r in converged)
    # The record's train.num_epochs is the one its runs used: the 1x budget at the tuning size.
    saved = json.loads((workdir / "results.json").read_text())
    epochs = saved["config"]["train"]["num_epochs"]
    fixed = [r for r in saved["runs"] if r["mode"] == "1x" and r["n"] == str(exp.tune_size)]
    assert fixed and {r["epochs_max"] for r in fixed} == {epochs} == {config.train.num_epochs}
    assert "budget_epochs" not in saved["config"]["experiment"]


def _statistics_are_consistent(study):
    _, config, results = study
    claims = results["analysis"]["claims"]
    assert {c["role"] for c in claims} == {"helps", "early_stopping", "control", "pair"}
    for c in claims:
        for v in c["budgets"].values():
            assert v["label"] in LABELS
            assert all(t["p_holm"] >= t["p"] - 1e-12 for t in v["tests"])
            assert v["low"] <= v["estimate"]["delta"] <= v["high"]
    exp = config.experiment
    helps = [c for c in claims if c["role"] == "helps"]
    assert len(helps) == (len(exp.variants) - 1) * len(exp.sizes)
    tune = [c for c in helps if c["n"] == str(exp.tune_size)]
    assert all(list(c["budgets"]) == ["1x", "3x", "converged"] for c in tune)
    assert all(c["budget_label"] for c in tune)
    json.dumps(results)  # plain data only


def _rerun_trains_nothing(study, capsys):
    workdir, config, results = study
    again = reg.run_experiment(config, workdir)
    assert "(trained" not in capsys.readouterr().out
    assert again["analysis"]["claims"] == results["analysis"]["claims"]
