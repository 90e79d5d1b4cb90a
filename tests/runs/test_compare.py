"""cnn-jax-compare: one row per run, only the differing settings, sort, filter, files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnn_jax.config import identity
from cnn_jax.outputs.writers import atomic_write_json
from cnn_jax.runs import compare
from experiments.configs import smoke
from tests.conftest import REPO


def _run(path: Path, *, lr: float, seed: int, accuracy: float, vmapped: bool = False) -> None:
    """A run dir as the trainer leaves it (config.json + results.json); vmapped: a unit dir
    with a summary results.json and a seed dir."""
    config = smoke.get_config()
    config.optim.learning_rate, config.seed = lr, seed
    if vmapped:  # seeds seed - 1 and seed as one program; this member is its second
        config.seed, config.train.num_seeds = seed - 1, 2
    config.train.log_every_steps = 7 if seed else 5  # logging: not a difference
    stored = dict(config.to_dict(), **{identity.KEY: identity.of(config)})
    path.mkdir(parents=True)
    atomic_write_json(path / "config.json", stored)
    entry = {"seed": seed, "test_accuracy": accuracy, "wall_time_sec": 12.5, "steps": 40}
    entry["final"] = {"validation": {"accuracy": accuracy - 0.01}, "test": {"loss": 0.3}}
    entry[identity.KEY] = stored[identity.KEY]
    if vmapped:
        atomic_write_json(path / "results.json", {"per_seed": [entry], "test_accuracy": accuracy})
        path = path / f"seed_{seed}"
        path.mkdir()
        entry["vmapped_parent"], entry["seed_index"] = "..", 1
    atomic_write_json(path / "results.json", entry)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    _run(tmp_path / "a" / "lr_small" / "seed_0", lr=1e-3, seed=0, accuracy=0.90)
    _run(tmp_path / "a" / "lr_big" / "seed_0", lr=1e-2, seed=0, accuracy=0.95)
    _run(tmp_path / "b" / "lr_big", lr=1e-2, seed=1, accuracy=0.93, vmapped=True)
    return tmp_path


def test_rows_show_only_differing_fields_and_metrics(runs: Path):
    columns, rows = compare.compare([str(runs / "a"), str(runs / "b")], sort="-test_accuracy")
    assert columns[:3] == ["run", "optim.learning_rate", "seed"]
    assert "train.log_every_steps" not in columns and "model.preset" not in columns
    assert {"test_accuracy", "val_accuracy", "test_loss", "wall_time_sec", "identity"} <= set(
        columns
    )
    assert [r["test_accuracy"] for r in rows] == [0.95, 0.93, 0.90]  # the unit summary skipped
    assert rows[1]["run"].endswith("b/lr_big/seed_1")
    assert rows[0]["val_accuracy"] == pytest.approx(0.94)
    assert len({r["identity"] for r in rows}) == 3  # the seed is part of the identity


def test_where_filters_on_config_fields_and_columns(runs: Path):
    _, rows = compare.compare([str(runs / "*")], where=["optim.learning_rate=0.01", "seed=0"])
    assert [r["test_accuracy"] for r in rows] == [0.95]
    _, rows = compare.compare([str(runs / "*")], where=["model.preset=lenet5"])
    assert len(rows) == 3  # a field equal in every run still filters


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sort": "nope"}, r"^--sort: no column 'nope'; allowed: run, "),
        ({"where": ["seed"]}, r"^--where: 'seed'; allowed: field=value$"),
        ({"where": ["nope=1"]}, r"^--where: no field 'nope'; allowed: "),
    ],
)
def test_bad_arguments_are_one_line(runs: Path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare.compare([str(runs)], **kwargs)


def test_command_prints_and_writes_markdown_and_csv(runs: Path, tmp_path: Path):
    md, table_csv = tmp_path / "t.md", tmp_path / "t.csv"
    cmd = [sys.executable, "-m", "cnn_jax.runs.compare", str(runs / "a"), "--sort=test_accuracy"]
    cmd.append("--width=0")  # one line per run, however wide
    done = subprocess.run(
        [*cmd, f"--markdown={md}", f"--csv={table_csv}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["run", "optim.learning_rate"] and len(lines) == 3
    assert md.read_text().startswith("| run | optim.learning_rate |")
    rows = list(csv.DictReader(table_csv.open()))
    assert [float(r["test_accuracy"]) for r in rows] == [0.90, 0.95]
    missing = subprocess.run(
        [sys.executable, "-m", "cnn_jax.runs.compare", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: runs: {str(tmp_path / 'none')!r} matches nothing; allowed: workdirs or globs"
    ]


def test_grid_members_show_their_own_values_and_identity(tmp_path: Path):
    config = smoke.get_config()
    config.grid = {"fields": ["optim.learning_rate"], "values": [[1e-3], [1e-2]],
                   "dirs": ["../lr_small", "../lr_big"]}  # fmt: skip
    stored = dict(config.to_dict(), **{identity.KEY: identity.of(config)})
    (tmp_path / "unit").mkdir()
    atomic_write_json(tmp_path / "unit" / "config.json", stored)
    for k, name in enumerate(("lr_small", "lr_big")):
        (tmp_path / name / "seed_0").mkdir(parents=True)
        entry = {"seed": 0, "test_accuracy": 0.9 + k / 100, identity.KEY: stored[identity.KEY]}
        entry.update(vmapped_parent="../../unit", seed_index=k)
        atomic_write_json(tmp_path / name / "seed_0" / "results.json", entry)
    runs = {Path(r["run"]).parent.name: r for r in map(compare.load_run, compare.find_runs(
        [str(tmp_path / "lr_*")]))}  # fmt: skip
    assert runs["lr_big"]["fields"]["optim.learning_rate"] == 1e-2
    assert runs["lr_small"]["fields"]["optim.learning_rate"] == 1e-3
    # A member's identity is that of a separate run of its setting, not the grid unit's.
    separate = smoke.get_config()
    separate.optim.learning_rate = 1e-2
    assert runs["lr_big"]["identity"] == identity.of(separate)
    _, rows = compare.compare([str(tmp_path / "lr_*")], where=["optim.learning_rate=0.01"])
    assert [Path(r["run"]).parent.name for r in rows] == ["lr_big"]


LENET_BLOCKS = [
    {"features": 6, "kernel_size": 5, "padding": 2, "pool": "avg", "activation": "tanh"},
    {"features": 16, "kernel_size": 5, "padding": "VALID", "pool": "avg", "activation": "tanh"},
]


def _study(root: Path) -> Path:
    """A study folder: two runs (activation unset: the preset's tanh; and relu) and the
    study's own results.json, a summary that is not a run."""
    for name, activation, accuracy in (("preset", None, 0.9), ("relu", "relu", 0.8)):
        _run(root / name / "seed_0", lr=1e-3, seed=0, accuracy=accuracy)
        path = root / name / "seed_0" / "config.json"
        stored = json.loads(path.read_text())
        stored["model"]["activation"] = activation  # smoke: lenet5, whose blocks use tanh
        stored["model"]["blocks"] = LENET_BLOCKS if name == "relu" else None  # a wide cell
        atomic_write_json(path, stored)
    atomic_write_json(root / "results.json", {"variants": ["preset", "relu"], "summary": {}})
    return root


def test_a_study_folder_compares_its_runs_not_its_summary(tmp_path: Path, capsys):
    columns, rows = compare.compare([str(_study(tmp_path / "study"))])
    assert sorted(r["test_accuracy"] for r in rows) == [0.8, 0.9]
    assert "note: skipped 1 study summary" in capsys.readouterr().err


def test_unset_fields_show_the_value_the_trainer_used(tmp_path: Path):
    columns, rows = compare.compare([str(_study(tmp_path / "study"))], sort="test_accuracy")
    assert [r["model.activation"] for r in rows] == ["relu", "tanh"]  # not blank
    _, kept = compare.compare([str(tmp_path / "study")], where=["model.activation=tanh"])
    assert [r["test_accuracy"] for r in kept] == [0.9]


def test_wide_rows_fit_the_width_and_files_keep_every_cell(tmp_path: Path):
    columns, rows = compare.compare([str(_study(tmp_path / "study"))])
    assert any(len(compare._cell(r.get("model.blocks"))) > 100 for r in rows)
    text = compare.format_text(columns, rows, 100)
    assert max(map(len, text.splitlines())) <= 100
    assert all(block.startswith("run") for block in text.split("\n\n"))
    assert set(columns) <= set(" ".join(text.split()).split())
    full = compare.format_csv(columns, rows)
    assert all(compare._cell(r["model.blocks"]) in full.replace('""', '"') for r in rows)


def _one_error_line(capsys, argv: list[str]) -> str:
    """The command's stderr, which must be one `error:` line with exit status 2."""
    with pytest.raises(SystemExit) as exited:
        compare.main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


@pytest.mark.parametrize(
    "text, says",
    [
        ('{"seed": 0, "test_acc', "not valid JSON (line 1)"),
        ("5", "holds a JSON int, not the trainer's JSON object"),
        ('["final"]', "holds a JSON list, not the trainer's JSON object"),
        ('{"final": {}, "seed": null}', "seed is None; expected an integer"),
        ('{"final": {}, "seed": "x"}', "seed is 'x'; expected an integer"),
        ('{"final": {}, "test_accuracy": [0.9]}', "test_accuracy is [0.9]; expected a number"),
        ('{"final": {"test": {"loss": "low"}}}', "final.test.loss is 'low'; expected a number"),
        ('{"final": {}, "run_identity": 7}', "run_identity is not a string"),
    ],
)
def test_a_malformed_results_json_is_one_line_naming_it(runs: Path, capsys, text, says):
    damaged = runs / "a" / "lr_small" / "seed_0" / "results.json"
    damaged.write_text(text)
    err = _one_error_line(capsys, [str(runs / "a"), "--sort=test_accuracy"])
    assert err.startswith(f"error: {damaged}: ") and says in err


@pytest.mark.parametrize("text", ["[1]", '"a string"'])
def test_a_malformed_config_json_is_one_line_naming_the_run(runs: Path, capsys, text):
    run = runs / "a" / "lr_small" / "seed_0"
    (run / "config.json").write_text(text)
    assert _one_error_line(capsys, [str(runs / "a")]).startswith(f"error: {run}")


def test_an_unwritable_output_is_one_line_naming_the_file(runs: Path, tmp_path: Path, capsys):
    missing_dir = tmp_path / "no" / "such" / "t.md"
    err = _one_error_line(capsys, [str(runs / "a"), f"--markdown={missing_dir}"])
    assert err.startswith(f"error: --markdown: cannot write {missing_dir} (")
    err = _one_error_line(capsys, [str(runs / "a"), f"--csv={tmp_path}"])  # a directory
    assert err.startswith(f"error: --csv: cannot write {tmp_path} (Is a directory)")


def test_a_diverged_member_shows_where_it_diverged_and_sorts_last(runs: Path):
    """A diverged member's record (no accuracy) reads 'diverged at step N', never a number,
    and sorts after every number whichever way."""
    path = runs / "a" / "lr_huge" / "seed_0"
    _run(path, lr=10.0, seed=0, accuracy=0.5)
    record = json.loads((path / "results.json").read_text())
    del record["final"]
    record.update(test_accuracy=None, diverged={"step": 7, "what": "loss"})
    atomic_write_json(path / "results.json", record)
    for order in ("test_accuracy", "-test_accuracy"):
        columns, rows = compare.compare([str(runs / "a")], sort=order)
        assert rows[-1]["run"].endswith("lr_huge/seed_0")
        assert rows[-1]["test_accuracy"] == "diverged at step 7"
        assert rows[-1]["val_accuracy"] is None
    assert "diverged at step 7" in compare.format_text(columns, rows, width=120)
    assert "| diverged at step 7 |" in compare.format_markdown(columns, rows)
    assert ",diverged at step 7," in compare.format_csv(columns, rows)
