"""One progress display per study: one count over every sweep, the unit's name, an ETA, on
stderr; per-run lines only when verbose."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from absl import flags

from cnn_jax.config import identity
from cnn_jax.runs import progress, sweep
from experiments import cli
from experiments.configs import smoke


def _fake_train(config: dict, workdir: str) -> dict:
    """A unit that 'trains' instantly: the files a finished one-seed run leaves."""
    path = Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    stored = dict(config, **{identity.KEY: identity.of(config)})
    (path / "config.json").write_text(json.dumps(stored))
    results = {"test_accuracy": 0.5, identity.KEY: stored[identity.KEY]}
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
