"""The sweep engine: one layout in both modes, identity-checked cache hits, launchers, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnn_jax.config import identity
from cnn_jax.outputs import predictions
from cnn_jax.outputs.writers import atomic_write_json, read_json
from cnn_jax.runs.load import load_run
from cnn_jax.runs.sweep import cached_results, plan_grids, plan_variant, run_dir, run_sweep
from experiments.configs import smoke


def _finished_run(workdir: Path, variant: str, seed: int, config) -> None:
    """A run dir as the trainer leaves it: config.json and results.json."""
    config = config.copy_and_resolve_references()
    config.seed, config.train.quiet = seed, True
    path = run_dir(workdir, variant, seed)
    path.mkdir(parents=True)
    atomic_write_json(path / "config.json", config.to_dict())
    atomic_write_json(path / "results.json", {"seed": seed, "test_accuracy": 0.5})


def _tiny(data_dir: Path):
    config = smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    config.dataset.options = {"canvas_size": 16, "train_subset": 256}  # 4 steps per epoch
    config.train.num_epochs = 1
    config.train.eval_train_at_end = False
    return config


def test_same_settings_reuse_the_finished_run(tmp_path: Path):
    config = smoke.get_config()
    _finished_run(tmp_path, "base", 0, config)
    config.train.log_every_steps = 1  # logging does not change the result
    config.dataset.data_dir = "/elsewhere"  # nor does where the files live
    rows = run_sweep({"base": config}, tmp_path, [0], verbose=False)
    assert rows[0]["results"] == {"seed": 0, "test_accuracy": 0.5}
    assert rows[0]["status"] == "cached"


@pytest.mark.parametrize(
    ("field", "value"),
    [("optim.learning_rate", 0.1), ("train.num_epochs", 7), ("train.budget_factor", 3.0)],
)
def test_changed_settings_are_refused_naming_the_field(tmp_path: Path, field, value):
    config = smoke.get_config()
    _finished_run(tmp_path, "base", 0, config)
    section, key = field.split(".")
    config[section][key] = value
    with pytest.raises(ValueError, match=rf"^workdir: .* \({field}: .* -> {value!r}\);.*overwrite"):
        run_sweep({"base": config}, tmp_path, [0], verbose=False)


def test_identity_ignores_logging_and_names_what_changes():
    a, b = smoke.get_config(), smoke.get_config()
    b.train.log_every_steps, b.train.quiet, b.dataset.data_dir = 1, False, "/x"
    assert identity.of(a) == identity.of(b)
    b.model.activation, b.train.budget_factor = "tanh", 1  # 1 == 1.0: the same budget
    assert identity.differences(identity.fields(a), identity.fields(b)) == [
        "model.activation: 'relu' -> 'tanh'"
    ]


def test_plan_groups_consecutive_pending_seeds_and_runs_the_rest_alone(tmp_path: Path):
    config = smoke.get_config()
    units = plan_variant("v", config, tmp_path, [0, 1, 2, 5], vmap_seeds=True)
    assert [(u.seeds, u.workdir) for u in units] == [
        ((0, 1, 2), tmp_path / "v"),
        ((5,), tmp_path / "v" / "seed_5"),
    ]
    assert units[0].config.seed == 0 and units[0].config.train.num_seeds == 3
    sequential = plan_variant("v", config, tmp_path, [0, 1], vmap_seeds=False)
    assert [u.workdir for u in sequential] == [run_dir(tmp_path, "v", s) for s in (0, 1)]


class _RecordingLauncher:
    def __init__(self):
        self.names = []

    def run(self, jobs):
        self.names += [name for name, _, _ in jobs]
        return [fn(**kwargs) for _, fn, kwargs in jobs]


@pytest.mark.slow
def test_vmapped_and_sequential_sweeps_share_one_layout(tmp_path: Path, data_dir: Path):
    config = _tiny(data_dir)
    launcher = _RecordingLauncher()
    rows = run_sweep({"a": config}, tmp_path, [3, 4, 6], launcher=launcher, verbose=False)
    assert launcher.names == ["a/seed_3-4", "a/seed_6"]
    assert [r["run_dir"] for r in rows] == [str(run_dir(tmp_path, "a", s)) for s in (3, 4, 6)]
    for row in rows:
        assert row["status"] == "trained" and row["results"]["seed"] == row["seed"]
        correct = predictions.load(predictions.path_of(row["run_dir"], "test"))["correct"]
        assert correct.mean() == pytest.approx(row["results"]["final"]["test"]["accuracy"])
        assert load_run(row["run_dir"]).step == 4
    matrix = predictions.correct_matrix([r["run_dir"] for r in rows])
    assert matrix.shape[0] == 3 and matrix.dtype == np.uint8

    # Rerun, now sequential and with one more seed: old seeds are cache hits, nothing rewritten.
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    again = run_sweep({"a": config}, tmp_path, [3, 4, 5, 6], vmap_seeds=False, verbose=False)
    assert [r["status"] for r in again] == ["cached", "cached", "trained", "cached"]
    assert read_json(run_dir(tmp_path, "a", 5) / "results.json")["num_seeds"] == 1
    for path, mtime in before.items():
        assert path.stat().st_mtime_ns == mtime, path


def test_a_finished_grid_unit_whose_member_records_are_gone_is_one_line(tmp_path: Path):
    configs = {}
    for lr in (1e-3, 3e-3):
        configs[f"lr{lr}"] = smoke.get_config()
        configs[f"lr{lr}"].optim.learning_rate = lr
    units, _ = plan_grids(configs, tmp_path, {name: (0,) for name in configs})
    home = units[0].workdir  # the unit trained, then its members' records were deleted
    home.mkdir(parents=True)
    atomic_write_json(home / "results.json", {"per_seed": []})
    with pytest.raises(ValueError) as refused:
        run_sweep(configs, tmp_path, [0], vmap_grids=True, launcher=_NoLauncher(), verbose=False)
    assert str(refused.value) == (
        f"sweep: {run_dir(tmp_path, 'lr0.001', 0) / 'results.json'} and the other records of "
        f"grid unit lr0.001/seed_0 (+1 grid points) are missing, but the unit in {home} is "
        f"finished; allowed: restore them, or delete {home} and run the same command again "
        "to retrain it"
    )


class _NoLauncher:
    def run(self, jobs):
        pytest.fail(f"trained {[name for name, _, _ in jobs]}")


def test_a_cut_short_results_json_is_written_again_or_named(tmp_path: Path):
    config = smoke.get_config()
    _finished_run(tmp_path, "own", 0, config)  # a run of its own: the trainer rewrites it
    own = run_dir(tmp_path, "own", 0) / "results.json"
    own.write_text('{"seed": 0, "test_acc')
    assert cached_results(own.parent, config, 0) is None  # not cached: resumed and rewritten
    member = run_dir(tmp_path, "member", 0)  # a member's dir holds no config.json
    member.mkdir(parents=True)
    (member / "results.json").write_text('{"vmapped_parent": "../../_gr')
    with pytest.raises(ValueError) as refused:
        cached_results(member, config, 0)
    assert str(refused.value).startswith(
        f"{member / 'results.json'}: not valid JSON (line 1); it is a member's record, which "
        "only its finished unit wrote; allowed: restore it, or delete it and run the same "
        "command again"
    )
