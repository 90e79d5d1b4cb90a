"""The regularizer study end to end on its smoke config: every phase runs, every promised file is
written, the test split enters only through the chosen settings, the statistics are consistent
(Holm p >= raw p, verdicts from the allowed set, a budget row per variant), and a rerun trains
nothing."""

from __future__ import annotations

import json

import pytest

from cnn_jax.stats import VERDICTS
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
    assert "Gain over the tuned baseline" in readme and "Zhang" in readme


def _statistics_are_consistent(study):
    _, config, results = study
    comparisons = results["analysis"]["comparisons"]
    kinds = {c["kind"] for c in comparisons}
    assert kinds == {"size", "budget", "early_stopping", "control", "pair"}
    for c in comparisons:
        assert c["verdict"] in VERDICTS
        assert c["comparison"]["p_adjusted"] >= c["comparison"]["p_value"] - 1e-12
        assert c["comparison"]["low"] <= c["comparison"]["delta"] <= c["comparison"]["high"]
    sizes = [c for c in comparisons if c["kind"] == "size"]
    assert len(sizes) == (len(config.experiment.variants) - 1) * len(config.experiment.sizes)
    assert all(len(c["rows"]) == 2 for c in sizes)  # 2 draws x 1 seed, matched
    for row in results["analysis"]["budgets"].values():
        assert set(row) == {"1x", "3x", "converged", "overall"}
    json.dumps(results)  # plain data only


def _rerun_trains_nothing(study, capsys):
    workdir, config, results = study
    again = reg.run_experiment(config, workdir)
    assert "(trained" not in capsys.readouterr().out
    assert again["analysis"]["comparisons"] == results["analysis"]["comparisons"]
