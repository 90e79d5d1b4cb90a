"""Hyperparameter grids as members of one run (`cnn_jax.config.grid`): each member trains as its own
run would, lands where that run would, and is an identity-checked cache hit afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from cnn_jax.config import identity
from cnn_jax.config.grid import GridSpec, member_config
from cnn_jax.config_validation import validate_config
from cnn_jax.outputs.writers import read_json, read_metrics
from cnn_jax.runs.load import load_run
from cnn_jax.runs.sweep import plan_grids, run_dir, run_sweep
from cnn_jax.train import train_and_evaluate
from experiments.configs import smoke

RATES = (3e-3, 1e-2)
DECAYS = (0.0, 0.5)


def _tiny(data_dir: Path):
    config = smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    config.dataset.options = {"canvas_size": 16, "train_subset": 256}  # 4 steps per epoch
    config.train.num_epochs = 2
    config.train.log_every_steps = 2
    config.train.eval_train_at_end = False
    config.train.quiet = True
    config.optim.name, config.optim.schedule = "adamw", "warmup_cosine"
    return config


def _variants(data_dir: Path) -> dict:
    out = {}
    for lr in RATES:
        for wd in DECAYS:
            config = _tiny(data_dir)
            config.optim.learning_rate, config.optim.weight_decay = lr, wd
            out[f"lr{lr}_wd{wd}"] = config
    return out


def test_grid_members_train_as_their_separate_runs(tmp_path: Path, data_dir: Path):
    variants = _variants(data_dir)
    separate = run_sweep(variants, tmp_path / "separate", [0, 1], verbose=False)
    grid_rows = run_sweep(variants, tmp_path / "grid", [0, 1], vmap_grids=True, verbose=False)
    homes = list((tmp_path / "grid" / "_grids").iterdir())
    assert len(homes) == 1  # 4 grid points x 2 seeds: one program
    assert read_json(homes[0] / "results.json")["num_seeds"] == 8
    for a, b in zip(separate, grid_rows):
        assert (a["variant"], a["seed"]) == (b["variant"], b["seed"])
        assert b["results"]["grid_point"]["optim.learning_rate"] in RATES
        accuracy = a["results"]["test_accuracy"]
        assert b["results"]["test_accuracy"] == pytest.approx(accuracy, abs=2e-3)
        np.testing.assert_allclose(_logged(b, "loss"), _logged(a, "loss"), rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(
            _logged(b, "learning_rate"), _logged(a, "learning_rate"), rtol=1e-6
        )


def _logged(row: dict, name: str) -> list[float]:
    return [r[name] for r in read_metrics(row["run_dir"]) if r["split"] == "train"]


def test_a_finished_grid_is_a_cache_hit_and_a_changed_one_is_refused(
    tmp_path: Path, data_dir: Path
):
    variants = _variants(data_dir)
    run_sweep(variants, tmp_path, [0], vmap_grids=True, verbose=False)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    stamps = [p.stat().st_mtime_ns for p in files]
    again = run_sweep(variants, tmp_path, [0], vmap_grids=True, verbose=False)
    assert {r["status"] for r in again} == {"cached"}
    assert [p.stat().st_mtime_ns for p in files] == stamps  # nothing rewritten
    plain = run_sweep(variants, tmp_path, [0], verbose=False)  # without grids: the same runs
    assert {r["status"] for r in plain} == {"cached"}
    variants["lr0.01_wd0.5"].train.num_epochs = 3
    with pytest.raises(ValueError, match=r"^workdir: .*train\.num_epochs: 2 -> 3"):
        run_sweep(variants, tmp_path, [0], vmap_grids=True, verbose=False)


def test_member_identity_is_its_separate_runs(data_dir: Path):
    variants = _variants(data_dir)
    units, planned = plan_grids(variants, Path("/w"), {v: (0, 1) for v in variants})
    (unit,) = units
    assert planned == set(variants)
    stored = unit.config.to_dict()
    for k, (name, seed) in enumerate((v, s) for v in unit.variants for s in (0, 1)):
        wanted = identity.seed_fields(variants[name], seed)
        assert identity.differences(identity.member_fields(stored, k), wanted) == []
    assert member_config(stored, 3)["seed"] == 1
    assert Path("/w/_grids/x", unit.config.grid.dirs[1]).resolve() == Path("/w", unit.variants[1])


def test_variants_that_differ_in_an_untraced_field_are_not_grouped(data_dir: Path):
    a, b = _tiny(data_dir), _tiny(data_dir)
    b.model.head_dropout = 0.5  # a compile-time constant: a separate program
    units, planned = plan_grids({"a": a, "b": b}, Path("/w"), {"a": (0,), "b": (0,)})
    assert units == [] and planned == set()


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"fields": ("model.head_dropout",), "values": ((0.1,), (0.2,)), "dirs": ("a", "b")},
         r"^grid\.fields: .*allowed: distinct fields among optim\.learning_rate"),
        ({"fields": ("optim.learning_rate",), "values": ((0.1,), (0.0,)), "dirs": ("a", "b")},
         r"^grid\.values: optim\.learning_rate = 0\.0; allowed: a finite number > 0"),
        ({"fields": ("optim.learning_rate",), "values": ((0.1,), (0.2,)), "dirs": ("a", "a")},
         r"^grid: 2 value rows and 2 dirs; allowed: .*one distinct dir per row"),
        ({"fields": ("optim.learning_rate",), "values": ((0.1, 2),), "dirs": ("a",)},
         r"^grid\.values: row \[0\.1, 2\] has 2 values; allowed: one per field"),
        ({"fields": ("optim.l1",), "values": ((0.1,), (0.2,)), "dirs": ("/abs", "b")},
         r"^grid\.dirs: '/abs'; allowed: a relative path"),
        ({"fields": ("optim.l2",), "values": ((0.1,), (0.2,)), "dirs": ("a", "b"), "x": 1},
         r"^grid: unknown key\(s\) \['x'\]"),
    ],
)  # fmt: skip
def test_a_bad_grid_is_one_line_naming_the_field(grid, message):
    with pytest.raises(ValueError, match=message):
        GridSpec.from_config(grid)


def test_each_grid_point_is_validated_as_an_optimizer(data_dir: Path):
    config = _tiny(data_dir)
    config.optim.l2, config.optim.weight_decay = 1e-3, 0.0
    config.grid = {"fields": ("optim.weight_decay",), "values": ((0.0,), (0.1,)),
                   "dirs": ("a", "b")}  # fmt: skip
    with pytest.raises(ValueError, match=r"^grid\.values \(row 1\): optim\.l2 and optim\.weight"):
        validate_config(config)


def test_a_grid_run_writes_each_member_where_its_dir_says(tmp_path: Path, data_dir: Path):
    config = _tiny(data_dir)
    config.train.num_epochs = 1
    config.grid = {"fields": ("optim.l1",), "values": ((0.0,), (1e-3,)), "dirs": ("../a", "../b")}
    train_and_evaluate(config, tmp_path / "unit")
    for name in ("a", "b"):
        member = read_json(tmp_path / name / "seed_0" / "results.json")
        assert member["vmapped_parent"] == "../../unit"
        assert member["grid_point"] == {"optim.l1": 0.0 if name == "a" else 1e-3}
    assert read_json(run_dir(tmp_path, "a", 0) / "results.json")["seed_index"] == 0
    loaded = load_run(tmp_path / "b" / "seed_0")  # the member, with its own settings
    assert loaded.config.optim.l1 == 1e-3 and "grid" not in loaded.config


@pytest.mark.parametrize(
    ("dirs", "message"),
    [
        (("../../out", "b"), r"^grid\.dirs: '\.\./\.\./out' resolves to .*/out, not inside "),
        (("a/../..", "b"), r"^grid\.dirs: 'a/\.\./\.\.' resolves to .*, not inside "),
        (("a/..", "b"), r"^grid\.dirs: 'a/\.\.' resolves to .*which holds the run's own workdir"),
        (("a", "./a"), r"^grid\.dirs: members' dirs .*/a/seed_0 and .*/a/seed_0 overlap"),
        (("a", "a/seed_0"), r"^grid\.dirs: members' dirs .*/a/seed_0 and .*/seed_0 overlap"),
        (("link", "b"), r"^grid\.dirs: 'link' resolves to .*/elsewhere, not inside "),
    ],
    ids=["up-and-out", "the-root", "the-workdir", "same-dir", "nested", "symlink-out"],
)
def test_grid_dirs_outside_the_runs_folder_or_overlapping_are_refused_before_training(
    tmp_path: Path, data_dir: Path, dirs, message
):
    root = tmp_path / "root"
    (root / "unit").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "unit" / "link").symlink_to(tmp_path / "elsewhere")
    config = _tiny(data_dir)
    config.grid = {"fields": ("optim.l1",), "values": ((0.0,), (1e-3,)), "dirs": dirs}
    with pytest.raises(ValueError, match=message) as refused:
        train_and_evaluate(config, root / "unit")
    assert "\n" not in str(refused.value)
    assert sorted(p.name for p in root.rglob("*")) == ["link", "unit"]  # nothing written


def test_a_sweeps_grid_unit_may_reach_its_variants_in_the_sweep_root(tmp_path: Path):
    from cnn_jax.config import grid

    spec = GridSpec.from_config({"fields": ("optim.l1",), "values": ((0.0,), (1e-3,)),
                                 "dirs": ("../../a", "../../b")})  # fmt: skip
    grid.check_member_dirs(tmp_path / grid.UNITS_FOLDER / "abc", spec, (0, 0))
    with pytest.raises(ValueError, match="not inside"):  # elsewhere, one level is all
        grid.check_member_dirs(tmp_path / "other" / "abc", spec, (0, 0))


def test_overwrite_deletes_nothing_a_stored_config_points_outside(tmp_path: Path, data_dir: Path):
    victim = tmp_path / "victim" / "seed_0"
    victim.mkdir(parents=True)
    (victim / "keep.txt").write_text("mine")
    stored = _tiny(data_dir)
    stored.grid = {"fields": ("optim.l1",), "values": ((0.0,), (1e-3,)),
                   "dirs": ("../../victim", "b")}  # fmt: skip
    workdir = tmp_path / "root" / "unit"
    workdir.mkdir(parents=True)
    (workdir / "config.json").write_text(json.dumps(stored.to_dict()))
    config = _tiny(data_dir)
    config.train.overwrite = True
    with pytest.raises(ValueError, match=r"^grid\.dirs: '\.\./\.\./victim' resolves to"):
        train_and_evaluate(config, workdir)
    assert (victim / "keep.txt").read_text() == "mine"


def _diverging(data_dir: Path, rates=(0.01, 1e30), dirs=("../ok", "../bad")):
    """A grid unit whose second member (learning rate 1e30) diverges within a few steps."""
    config = _tiny(data_dir)
    config.optim.update(name="sgd", schedule="constant", learning_rate=0.01)
    config.grid = {"fields": ("optim.learning_rate",), "values": tuple((r,) for r in rates),
                   "dirs": dirs}  # fmt: skip
    return config


def _member_records(member: Path) -> dict:
    """What a member's run left: results, metrics records, predictions (bytes per split)."""
    files = sorted((member / "predictions").glob("*.npz"))
    return {
        "results": read_json(member / "results.json"),
        "metrics": [
            {k: v for k, v in r.items() if k not in ("time", "images_per_sec")}
            for r in read_metrics(member)
        ],  # fmt: skip
        "predictions": {f.name: f.read_bytes() for f in files},
    }


def test_a_diverging_grid_member_is_frozen_and_reported(tmp_path: Path, data_dir: Path, capsys):
    results = train_and_evaluate(_diverging(data_dir), tmp_path / "unit")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "diverged at step" in line]
    assert len(lines) == 1, err
    assert "member ../bad/seed_0 (optim.learning_rate=1e+30) diverged at step " in lines[0]
    bad = read_json(tmp_path / "bad" / "seed_0" / "results.json")
    step = bad["diverged"]["step"]
    assert lines[0].split("diverged at step ")[1].startswith(f"{step} ")
    assert 1 <= step <= results["steps"]
    assert bad["diverged"]["what"] in ("loss", "gradient", "parameters")
    assert bad["test_accuracy"] is None and "final" not in bad and "best_epoch" not in bad
    assert not (tmp_path / "bad" / "seed_0" / "predictions").exists()
    assert all(r["step"] < step for r in read_metrics(tmp_path / "bad" / "seed_0"))
    ok = read_json(tmp_path / "ok" / "seed_0" / "results.json")
    assert "diverged" not in ok and 0.0 <= ok["test_accuracy"] <= 1.0
    assert (tmp_path / "ok" / "seed_0" / "predictions" / "test.npz").is_file()
    assert results["diverged_members"] == 1 and results["test_accuracy"] == ok["test_accuracy"]
    with pytest.raises(ValueError, match=r"^run_dir: .*bad/seed_0 diverged at step \d+ \(non-f"):
        load_run(tmp_path / "bad" / "seed_0")
    state = load_run(tmp_path / "unit", seed_index=1).variables  # no NaN reached a checkpoint
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state))


def test_the_other_member_trains_as_it_would_without_the_diverging_one(
    tmp_path: Path, data_dir: Path
):
    train_and_evaluate(_diverging(data_dir), tmp_path / "with_bad" / "unit")
    train_and_evaluate(_diverging(data_dir, (0.01, 0.02)), tmp_path / "healthy" / "unit")
    alone = _tiny(data_dir)
    alone.optim.update(name="sgd", schedule="constant", learning_rate=0.01)
    train_and_evaluate(alone, tmp_path / "alone")
    member = _member_records(tmp_path / "with_bad" / "ok" / "seed_0")
    healthy = _member_records(tmp_path / "healthy" / "ok" / "seed_0")
    assert member["metrics"] == healthy["metrics"]  # bit for bit: every logged value
    assert member["predictions"] == healthy["predictions"]
    assert member["results"]["final"] == healthy["results"]["final"]
    single = _member_records(tmp_path / "alone")
    assert member["results"]["final"] == single["results"]["final"]
    assert member["predictions"] == single["predictions"]


def test_every_member_diverging_still_raises_naming_them(tmp_path: Path, data_dir: Path):
    from cnn_jax.system.preemption import NonFiniteError

    config = _diverging(data_dir, (1e30, 3e30), ("../a", "../b"))
    with pytest.raises(NonFiniteError) as stopped:
        train_and_evaluate(config, tmp_path / "unit")
    message = str(stopped.value)
    assert "(members: ../a/seed_0 (optim.learning_rate=1e+30) at step " in message
    assert "; ../b/seed_0 (optim.learning_rate=3e+30) at step " in message
    assert "\n" not in message
    assert not (tmp_path / "a" / "seed_0" / "results.json").exists()


def test_a_single_run_that_diverges_still_raises(tmp_path: Path, data_dir: Path):
    from cnn_jax.system.preemption import NonFiniteError

    config = _tiny(data_dir)
    config.optim.update(name="sgd", schedule="constant", learning_rate=1e30)
    with pytest.raises(NonFiniteError, match=r"^non-finite loss, gradient or parameters at step "):
        train_and_evaluate(config, tmp_path / "run")
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_sweep_keeps_a_diverged_member_final_and_shows_it(tmp_path: Path, data_dir: Path, capsys):
    from cnn_jax.runs import compare
    from cnn_jax.runs.sweep import without_diverged

    variants = {}
    for name, lr in (("ok", 0.01), ("bad", 1e30)):
        variants[name] = _tiny(data_dir)
        variants[name].optim.update(name="sgd", schedule="constant", learning_rate=lr)
    rows = run_sweep(variants, tmp_path, [0], vmap_grids=True)
    step = rows[1]["results"]["diverged"]["step"]
    assert f"bad seed 0: diverged at step {step} (trained" in capsys.readouterr().out
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    stamps = [p.stat().st_mtime_ns for p in files]
    again = run_sweep(variants, tmp_path, [0], vmap_grids=True)
    assert [r["status"] for r in again] == ["cached", "cached"]  # not retrained
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert f"bad seed 0: diverged at step {step} (cached" in capsys.readouterr().out
    assert [r["variant"] for r in without_diverged(again)] == ["ok"]
    assert f"note: 1 of 2 runs diverged and are left out of the analysis: bad seed 0 (diverged "\
        f"at step {step})" in capsys.readouterr().err  # fmt: skip
    columns, table = compare.compare([str(tmp_path)], sort="-test_accuracy")
    assert [r["test_accuracy"] for r in table][1] == f"diverged at step {step}"
    assert isinstance(table[0]["test_accuracy"], float)
    assert f"diverged at step {step}" in compare.format_text(columns, table)


@pytest.mark.slow
def test_grid_units_sharing_a_member_dir_never_write_over_each_other(
    tmp_path: Path, data_dir: Path
):
    from cnn_jax.system.workdir_lock import WorkdirLock

    def unit(name: str, dirs: tuple[str, str], rates: tuple[float, float]):
        config = _tiny(data_dir)
        config.train.num_epochs = 1
        config.grid = {"fields": ("optim.learning_rate",), "values": tuple((r,) for r in rates),
                       "dirs": dirs}  # fmt: skip
        return config, tmp_path / name

    first = unit("first", ("../a", "../shared"), RATES)
    second = unit("second", ("../shared", "../b"), (RATES[0] / 2, RATES[1]))
    (tmp_path / "shared" / "seed_0").mkdir(parents=True)
    live = WorkdirLock(tmp_path / "shared" / "seed_0")  # as the first unit holds it, training
    with live, pytest.raises(ValueError, match=r"shared/seed_0 is in use by pid"):
        train_and_evaluate(*second)
    train_and_evaluate(*first)
    records = read_json(tmp_path / "shared" / "seed_0" / "results.json")
    with pytest.raises(ValueError, match=r"^grid\.dirs: .*shared/seed_0 holds the results of the"):
        train_and_evaluate(*second)
    assert read_json(tmp_path / "shared" / "seed_0" / "results.json") == records
    assert not (tmp_path / "b").exists() and not (tmp_path / "second" / "config.json").exists()
