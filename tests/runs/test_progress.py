"""One progress display per study: one count over every sweep, the unit's name, an ETA, on
stderr; per-run lines only when verbose."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from absl import flags

from cnn_jax.config import identity
from cnn_jax.runs import progress, sweep
from cnn_jax.system.preemption import NonFiniteError
from experiments import cli
from experiments.anatomy import activations
from experiments.anatomy import report as anatomy_report
from experiments.anatomy.configs import activations_smoke
from experiments.configs import smoke
from experiments.regularization import main as regularization
from experiments.regularization.configs import smoke as regularization_smoke


def _fake_train(config: dict, workdir: str) -> dict:
    """A unit that 'trains' instantly: the files a finished one-seed run leaves."""
    path = Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    stored = dict(config, **{identity.KEY: identity.of(config)})
    (path / "config.json").write_text(json.dumps(stored))
    results = {"test_accuracy": 0.5, identity.KEY: stored[identity.KEY],
               "final": {"validation": {"accuracy": 0.5, "loss": 1.0}}}  # fmt: skip
    (path / "results.json").write_text(json.dumps(results))
    return results


def _configs(*names: str) -> dict:
    out = {}
    for i, name in enumerate(names):
        out[name] = smoke.get_config()
        out[name].optim.learning_rate = 1e-3 * (i + 1)
    return out


@pytest.fixture(autouse=True)
def instant_units(monkeypatch):
    monkeypatch.setattr(sweep, "train_unit", _fake_train)


def _two_phases(root: Path) -> None:
    sweep.run_sweep(_configs("a", "b"), root / "phase1", [0, 1], vmap_seeds=False)
    sweep.run_sweep(_configs("c"), root / "phase2", [0], vmap_seeds=False)


def test_one_count_across_every_phase_on_stderr(tmp_path: Path, capsys):
    err = io.StringIO()
    with progress.study("toy", file=err) as display:
        _two_phases(tmp_path)
        assert (display.done, display.total, display.cached) == (5, 5, 0)
    text = err.getvalue()
    assert "toy: 100%" in text and "5/5 runs" in text and "now c/seed_0" in text
    assert "3/3 runs" not in text and "1/1 runs" not in text  # no count restarts per phase
    assert "<" in text  # elapsed<remaining
    assert "test accuracy" not in capsys.readouterr().out  # per-run lines: only with --verbose


def test_cached_runs_count_as_done_but_not_toward_the_speed(tmp_path: Path):
    _two_phases(tmp_path)  # everything finished once
    sweep.run_sweep(_configs("d"), tmp_path / "phase3", [0], vmap_seeds=False)
    err = io.StringIO()
    with progress.study("toy", file=err) as display:
        _two_phases(tmp_path)
        sweep.run_sweep(_configs("e"), tmp_path / "phase3", [0], vmap_seeds=False)
        assert (display.done, display.cached) == (6, 5)
        assert display.bar.initial == 5 and display.bar.n == 6
    assert "6/6 runs" in err.getvalue()


def test_verbose_prints_one_line_per_run_on_stdout(tmp_path: Path, capsys):
    with progress.study("toy", verbose=True, file=io.StringIO()):
        _two_phases(tmp_path)
    out = capsys.readouterr().out
    assert out.count("test accuracy 0.5000 (trained") == 5


def test_a_study_command_shows_the_bar_and_takes_verbose(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("CNN_JAX_FAST", "0")  # no re-exec with tcmalloc inside pytest

    def study(config, workdir) -> None:
        _two_phases(Path(workdir))

    for extra, lines in (([], 0), (["--verbose"], 5)):
        flags.FLAGS.unparse_flags()
        argv = ["toy_study", "--config=smoke", f"--workdir={tmp_path / str(lines)}", *extra]
        with pytest.raises(SystemExit) as exit_info:
            cli.main(study, default_config="smoke", default_workdir="unused", argv=argv)
        assert not exit_info.value.code
        captured = capsys.readouterr()
        assert "5/5 runs" in captured.err
        assert captured.out.count("test accuracy") == lines
    assert "--verbose" in cli.help_text("toy_study", "smoke", "w")


# A study's whole total, known before its first unit ------------------------------------------


def _totals(text: str) -> set[int]:
    """Every total the bar showed ('n/total runs')."""
    return {int(t) for t in re.findall(r"\d+/(\d+) runs", text)}


class _Stop(Exception):
    """Ends a study after its training phases (the analysis needs real runs)."""


def _stop(*args, **kwargs):
    raise _Stop


def test_a_declared_total_holds_from_the_first_unit(tmp_path: Path):
    err = io.StringIO()
    with progress.study("toy", file=err) as display:
        progress.expect_rest(5)  # both phases, before the first
        _two_phases(tmp_path)
        assert (display.added, display.done) == (5, 5)
    assert _totals(err.getvalue()) == {5}  # never 4/4 after the first phase, or a growing 2 -> 5


def test_a_planning_pass_counts_the_runs_and_trains_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sweep, "train_unit", _stop)
    stand_in = {"test_accuracy": 0.0}
    with progress.planning(stand_in) as plan:
        rows = sweep.run_sweep(_configs("a", "b"), tmp_path / "p", [0, 1], vmap_seeds=False)
        progress.say("a per-run line")  # stand-in rows print nothing
    assert plan.runs == 4 and [r["status"] for r in rows] == ["planned"] * 4
    assert rows[0]["results"] == stand_in and not (tmp_path / "p").exists()
    assert progress.planning_now() is None


def test_a_diverged_variant_leaves_the_total(tmp_path: Path, monkeypatch):
    def diverging(config: dict, workdir: str) -> dict:
        if "/bad/" in workdir + "/":
            raise NonFiniteError("loss is nan")
        return _fake_train(config, workdir)

    monkeypatch.setattr(sweep, "train_unit", diverging)
    configs = _configs("good", "bad")
    err = io.StringIO()
    with progress.study("toy", file=err) as display:
        progress.expect_rest(anatomy_report.planned_runs(configs, tmp_path, [0, 1], ["1x"], True))
        anatomy_report.train_budgets(configs, tmp_path, [0, 1], {"1x": 1.0}, False, True)
        assert (display.total, display.dropped, display.shown_total()) == (4, 2, 2)
        assert display.bar.total == display.done == 2  # the bar ends at 100%, not at 2/4
    # A rerun skips the marked variant: it is not planned either.
    assert anatomy_report.planned_runs(configs, tmp_path, [0, 1], ["1x"], True) == 2


def test_the_anatomy_budgets_are_counted_before_the_first_trains(tmp_path: Path):
    configs = _configs("a", "b")
    configs["a_again"] = configs["a"].copy_and_resolve_references()  # trains once, as `a`
    budgets, only = {"1x": 1.0, "3x": 3.0}, {"3x": ["b"]}
    planned = anatomy_report.planned_runs(configs, tmp_path, [0, 1], list(budgets), False, only)
    err = io.StringIO()
    with progress.study("toy", file=err) as display:
        progress.expect_rest(planned)
        anatomy_report.train_budgets(configs, tmp_path, [0, 1], budgets, False, False, only)
        assert planned == display.added == display.done == 6  # 1x: a, b; 3x: b; 2 seeds each
    assert _totals(err.getvalue()) == {6}


def test_the_activation_study_declares_both_budgets_up_front(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(activations, "seed_speed", _stop)  # after training: needs real curves
    config = activations_smoke.get_config()
    exp = config.experiment
    exp.budgets, exp.tune_budget, exp.learning_rates = {"1x": 1.0, "3x": 3.0}, "1x", (0.1, 0.05)
    exp.vmap_seeds = False
    err = io.StringIO()
    with progress.study("toy", file=err) as display, pytest.raises(_Stop):
        activations.run_experiment(config, tmp_path)
    # 1x: 2 activations x 2 rates + 3 collapse nets; 3x: 2 chosen + 3 collapse; x 2 seeds
    assert display.added == display.done == 2 * (4 + 3 + 2 + 3)
    assert _totals(err.getvalue()) == {display.added}


def test_the_regularizer_study_declares_every_phase_up_front(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(regularization, "_train_size_all", lambda config: 1000)
    monkeypatch.setattr(regularization.regularization_analysis, "analyse", _stop)
    config = regularization_smoke.get_config()
    config.experiment.vmap_seeds = False
    config.experiment.vmap_grids = False
    err = io.StringIO()
    with progress.study("toy", file=err) as display, pytest.raises(_Stop):
        regularization.run_experiment(config, tmp_path)
    assert display.added == display.done > 0  # tuning, sizes, budgets, controls
    assert _totals(err.getvalue()) == {display.added}  # one total from the first unit on
