"""The regularizer study's configs of record and their design logic, without training: the
epoch count a record stores is the one its runs use, the converged cap, 4 x 4 draws x seeds,
grids that contain the old records' choices inside them, re-tuning at the largest n, and the
Srivastava et al. 2014 Table 9 rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.regularization import analysis, claims, report, runs, stopping, tuning
from experiments.regularization.configs import fashion_mnist, mnist, smoke
from experiments.regularization.variants import Setting

REPO = Path(__file__).resolve().parents[3]
RECORDS = ("regularization_mnist", "regularization_fashion_mnist")
CONFIGS = {"fashion_mnist": fashion_mnist, "mnist": mnist}
KW = {"strengths": {}, "train_size_all": 55000}


def _record(name: str) -> dict:
    path = REPO / "results" / name / "results.json"
    if not path.exists():
        pytest.skip(f"{path} not in this checkout")
    return json.loads(path.read_text())


def test_the_recorded_num_epochs_is_the_one_the_runs_use():
    """train.num_epochs is the 1x budget at the tuning size (it was recorded and ignored: the
    study read experiment.budget_epochs); other sizes and budgets scale it."""
    config = fashion_mnist.get_config()
    s = Setting("baseline", None, 3e-3)
    one = runs.cell_config(config, s, n=1000, draw=0, mode="1x", **KW)
    assert one.train.num_epochs == config.train.num_epochs == 10
    config.train.num_epochs = 7
    assert runs.cell_config(config, s, n=1000, draw=0, mode="1x", **KW).train.num_epochs == 7
    three = runs.cell_config(config, s, n=1000, draw=0, mode="3x", **KW)
    assert (three.train.num_epochs, three.train.budget_factor) == (7, 3.0)
    assert runs.epochs_at(config, 4000, 55000) == 3  # ceil(7 / 4), at least min_epochs


def test_an_epoch_field_the_study_would_not_read_is_refused_before_training(tmp_path):
    from experiments.regularization import main as reg

    config = smoke.get_config()
    config.experiment.budget_epochs = 10
    with pytest.raises(ValueError, match=r"^experiment.budget_epochs: 10 is no longer read; "
                                         r"allowed: set train.num_epochs"):  # fmt: skip
        reg.run_experiment(config, tmp_path / "w")
    assert not (tmp_path / "w" / "runs").exists()  # nothing trained
    config = smoke.get_config()
    config.experiment.converged_epochs = 0
    with pytest.raises(ValueError, match="experiment.converged_epochs: 0"):
        runs.check_epochs(config)


def test_the_converged_cap_rises_to_converged_epochs_at_every_size():
    config = fashion_mnist.get_config()
    s = Setting("baseline", None, 3e-3)
    caps = {}
    for n in (1000, 4000, 16000):
        c = runs.cell_config(config, s, n=n, draw=0, mode="converged", **KW)
        caps[n] = round(c.train.num_epochs * c.train.budget_factor)
    assert caps == {1000: 30, 4000: 30, 16000: 30}  # was 30, 9, 9
    # At the tuning size the cap is still 3x the budget: "early stopping helps" keeps comparing
    # against the same maximum trained without stopping.
    conv = runs.cell_config(config, s, n=1000, draw=0, mode="converged", **KW)
    assert (conv.train.num_epochs, conv.train.budget_factor) == (10, 3.0)
    config.experiment.converged_epochs = None
    c = runs.cell_config(config, s, n=16000, draw=0, mode="converged", **KW)
    assert (c.train.num_epochs, c.train.budget_factor) == (3, 3.0)


@pytest.mark.parametrize("record", RECORDS)
def test_the_cap_is_one_under_which_the_records_runs_stopped(record):
    """The configs' cap (30 epochs) is the one under which >= 95% of the records' converged runs
    at n = 1,000 stopped early; the 9-epoch cap of larger n stopped almost none."""
    levels = _record(record)["analysis"]["levels"]
    flags = {30: [], 9: []}
    for lv in levels:
        s = lv.get("stopping")
        if lv["mode"] == stopping.CONVERGED and s and s["cap"] in flags:
            flags[s["cap"]] += s["capped_runs"]
    stopped_30 = 1 - sum(flags[30]) / len(flags[30])
    stopped_9 = 1 - sum(flags[9]) / len(flags[9])
    assert stopped_30 >= 0.95 and stopped_9 < 0.2
    for module in CONFIGS.values():
        assert module.get_config().experiment.converged_epochs >= 30


@pytest.mark.parametrize("name", list(CONFIGS))
def test_configs_of_record_have_4x4_rows_2_tuning_seeds_and_the_full_validation_split(name):
    config = CONFIGS[name].get_config()
    exp = config.experiment
    assert len(exp.draws) >= 4 and len(exp.seeds) >= 4 and len(exp.budget_draws) >= 4
    assert len(exp.tune_seeds) >= 2
    assert config.dataset.options.validation_size == 5000  # the datasets' default split
    assert exp.retune_size == max(exp.sizes)
    assert "all" not in exp.sizes  # one draw only: no 4 x 4 there
    runs.check_epochs(config)
    if name == "mnist":
        lit = exp.literature
        assert lit.mode == "converged" and len(lit.seeds) >= 4


@pytest.mark.parametrize("record, name", [(r, r.removeprefix("regularization_")) for r in RECORDS])
def test_every_choice_the_records_made_lies_inside_the_new_grids(record, name):
    """The records flagged 6 / 7 of 13 choices at a grid edge; the widened grids contain each of
    them strictly inside, so the rerun can choose on either side."""
    exp = CONFIGS[name].get_config().experiment
    lr_tuned = {"baseline", "momentum.baseline", "all", *exp.tune}
    for key, ch in _record(record)["tuning"]["chosen"].items():
        if ch["strength"] is not None:
            grid = tuning.strengths_for(exp, ch["optimizer"], ch["regularizer"])
            assert min(grid) < ch["strength"] < max(grid), (key, ch["strength"], grid)
        if ch.get("factor") is not None:
            assert min(exp.all_factors) < ch["factor"] < max(exp.all_factors), key
        if key in lr_tuned:
            lrs = exp.learning_rates[ch["optimizer"]]
            assert min(lrs) < ch["learning_rate"] < max(lrs), (key, ch["learning_rate"])


def _tune_record(exp):
    def fake(settings, strengths):
        return {s.name: {"validation_accuracy": 0.5, "validation_loss": 1.0} for s in settings}

    return tuning.tune_all(exp, fake)


def test_retuning_tries_each_choice_and_its_neighbours_at_the_largest_n():
    exp = fashion_mnist.get_config().experiment
    exp.controls, exp.control_pairs = (), ()
    record = _tune_record(exp)  # ties: the first grid point wins everywhere
    record["chosen"]["dropout"] = Setting("dropout", 0.5, 1e-3).as_dict()
    grids = tuning.retune_grids(exp, record)
    assert [s.strength for s in grids["dropout"]] == [0.25, 0.5, 0.7]
    assert {s.learning_rate for s in grids["dropout"]} == {1e-3}
    assert [s.learning_rate for s in grids["baseline"]] == [3e-4, 1e-3]  # an edge: one side

    def larger_n(settings, strengths):  # at n = 16,000 weaker dropout wins on validation
        def acc(s):
            return 0.9 - s.strength / 10 if s.regularizer == "dropout" else 0.5

        return {s.name: {"validation_accuracy": acc(s), "validation_loss": 1.0} for s in settings}

    again = tuning.retune(exp, record, larger_n)
    assert again["chosen"]["dropout"]["strength"] == 0.25 and not again["same"]["dropout"]
    assert again["same"]["baseline"]
    assert again["all_strengths"]["dropout"] == 0.25  # `all` combines the re-tuned strengths
    record["retuned"] = again
    here, strengths = tuning.chosen_at(record, "16000")
    assert here["dropout"].strength == 0.25 and strengths["dropout"] == 0.25
    assert tuning.chosen_at(record, "4000")[0]["dropout"].strength == 0.5
    # The claims at n = 16,000 compare the re-tuned settings.
    chosen = {k: s.name for k, s in tuning.chosen_settings(record).items()}
    declared = claims.declare(exp, chosen, analysis.retuned_names(record))
    by_text = {d.claim.text: d.claim for d in declared}
    assert by_text["dropout helps at n=16000"].a == "dropout_s0.25_lr0.001"
    assert "re-tuned" in by_text["dropout helps at n=16000"].what
    assert by_text["dropout helps at n=4000"].a == "dropout_s0.5_lr0.001"
    table = report.retune_table({"tuning": record, "config": {"experiment": exp.to_dict()}})
    assert "| dropout | dropout | dropout_s0.5 | dropout_s0.25 |" in table and "| no |" in table


def test_the_size_curve_trains_the_retuned_settings_at_the_retuning_size(monkeypatch, tmp_path):
    from experiments.regularization import main as reg

    config = fashion_mnist.get_config()
    exp = config.experiment
    exp.variants, exp.controls, exp.literature.variants = ("baseline", "dropout"), (), ()
    record = {"chosen": {"baseline": Setting("baseline", None, 3e-3).as_dict(),
                         "dropout": Setting("dropout", 0.5, 1e-3).as_dict()},
              "retuned": {"n": 16000, "chosen": {
                  "dropout": Setting("dropout", 0.25, 1e-3).as_dict()}}}  # fmt: skip
    calls = []
    monkeypatch.setattr(reg, "train_cells", lambda *a, **kw: calls.append((a, kw)) or [])
    reg.evaluation_phase(config, tmp_path, record, size_all=55000)
    trained = {kw["n"]: [s.name for s in a[2]] for a, kw in calls if kw["mode"] == "converged"}
    assert trained[4000] == ["baseline_lr0.003", "dropout_s0.5_lr0.001"]
    assert trained[16000] == ["baseline_lr0.003", "dropout_s0.25_lr0.001"]


def _level(setting: str, accuracy: float, rows: int = 4) -> dict:
    interval = {"estimate": accuracy, "low": accuracy - 0.002, "high": accuracy + 0.002}
    return {"setting": setting, "n": "all", "mode": "converged", "rows": rows,
            "test_accuracy": interval}  # fmt: skip


def test_srivastava_table_9_is_shown_whole_beside_our_runs():
    """Every row of Table 9 with the paper's error, ours where we ran the same regularizer
    (error = 1 - accuracy, interval flipped), '(not run)' where we did not."""
    config = mnist.get_config().to_dict()
    results = {
        "config": config,
        "analysis": {"levels": [
            _level("momentum.l2_s0.0005_lr0.03", 0.985),
            _level("momentum.dropout_max_norm_s0.5_lr0.03", 0.99),
            _level("baseline_lr0.003", 0.97),  # not a literature run: not in the table
        ]},
    }  # fmt: skip
    lines = report.literature_text(results)
    text = "\n".join(lines)
    assert "Srivastava et al. 2014 (JMLR 15:1929-1958), Table 9" in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(report.SRIVASTAVA_TABLE9)  # the header and all six rows
    l2 = "| L2 | 1.62 | momentum.l2_s0.0005 (n=all) | L2 penalty, strength 0.0005, SGD momentum |"
    assert l2 + " 1.50 [1.30, 1.70] | converged, 4 |" in text
    both = "| Dropout + max-norm | 1.05 | momentum.dropout_max_norm_s0.5 (n=all) |"
    assert both + " dropout + max-norm, strength 0.5, SGD momentum | 1.00" in text
    assert "| L2 + KL-sparsity | 1.55 | - (not run) | - | - | - |" in text
    assert "| Max-norm | 1.35 | - (not run) |" in text  # configured, but no level yet
    assert "baseline_lr0.003" not in text and "| baseline" not in text
    assert "early stopping on validation (cap >= 30 epochs)" in text
    assert "4 seed(s)" in text


def test_a_record_without_literature_runs_shows_no_table():
    results = {"config": smoke.get_config().to_dict(), "analysis": {"levels": []}}
    assert report.literature_text(results) == []


def test_the_stopped_share_says_whether_the_cap_was_high_enough():
    levels = [{"stopping": {"capped_runs": [False] * 19 + [True]}}, {"stopping": None}]
    assert report.stopped_share(levels) == (
        "Early stopping ended 19 of 20 converged runs (95%; the epoch cap is high enough at "
        ">= 95%)."
    )
    assert report.stopped_share([]) == ""
