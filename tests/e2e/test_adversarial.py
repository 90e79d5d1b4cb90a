"""The adversarial table: bad inputs and faults through the command line of the trainer.

Each case asserts exit status 2, exactly one line on stderr (naming the field or file, with
a fix), and that nothing in the case's directory was written or changed. Most cases run
in-process through `cli.main` with stderr captured (fast); a few run as real subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from absl import flags

from experiments import cli
from experiments import train as train_main
from experiments.configs import smoke
from tests.conftest import REPO, child_pythonpath

SMOKE = "experiments/configs/smoke.py"
HOLD = "import sys, time\nfrom cnn_jax.system.workdir_lock import WorkdirLock\n" + (
    "with WorkdirLock(sys.argv[1]):\n    print('HELD', flush=True)\n    time.sleep(120)\n"
)


def _config_file(body: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path, data_dir: Path) -> list[str]:
        (tmp / "bad_config.py").write_text(body)
        return [f"--config={tmp / 'bad_config.py'}"]

    return make


def _stored_run(finished: bool, **changes) -> Callable[[Path], list[str]]:
    """A workdir holding a run of the smoke config with `changes` (section.key=value)."""

    def make(tmp: Path, data_dir: Path) -> list[str]:
        config = smoke.get_config()
        for field, value in changes.items():
            section, key = field.split("__")
            config[section][key] = value
        (tmp / "run").mkdir()
        (tmp / "run" / "config.json").write_text(json.dumps(config.to_dict()))
        if finished:
            (tmp / "run" / "results.json").write_text('{"test_accuracy": 0.5}')
        return []

    return make


def _damaged_checkpoints(tmp: Path, data_dir: Path) -> list[str]:
    config = smoke.get_config()
    (tmp / "run" / "checkpoints" / "4").mkdir(parents=True)
    (tmp / "run" / "checkpoints" / "4" / "garbage").write_text("not a checkpoint")
    (tmp / "run" / "config.json").write_text(json.dumps(config.to_dict()))
    return []


def _file_at(relative: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path, data_dir: Path) -> list[str]:
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp / relative).write_text("a file")
        return []

    return make


def _args(*args: str) -> Callable[[Path], list[str]]:
    return lambda tmp, data_dir: list(args)


def _damaged_dataset(tmp: Path, data_dir: Path) -> list[str]:
    """A copy of the prepared digits with one array_record file truncated."""
    from cnn_jax import datasets

    datasets.load("digits", data_dir=data_dir, canvas_size=16)
    shutil.copytree(data_dir, tmp / "tfds", ignore=shutil.ignore_patterns(".locks"))
    train_file = next((tmp / "tfds").glob("cnn_jax_digits/canvas16_*/*/*-train.array_record*"))
    with open(train_file, "r+b") as f:
        f.truncate(1000)
    return [f"--config.dataset.data_dir={tmp / 'tfds'}"]


# (case id, setup(tmp) -> extra args, overrides, expected start of the error line)
CASES = [
    ("missing_config", _args("--config=nope/missing.py"), [], r"--config: .*nope/missing.py"),
    ("config_syntax", _config_file("def get_config(:\n"), [], r"--config: .*:1: syntax error"),
    (
        "config_raises",
        _config_file("def get_config():\n    return 1 / 0\n"),
        [],
        r"--config: .*bad_config.py:2 failed to load \(ZeroDivisionError",
    ),
    ("config_no_get_config", _config_file("x = 1\n"), [], r"--config: .* defines no get_config"),
    (
        "config_returns_dict",
        _config_file("def get_config():\n    return {}\n"),
        [],
        r"--config: get_config\(\) of .* returned dict",
    ),
    ("unknown_train_field", None, ["train.bogus=1"], r"--config.train.bogus: no such config field"),
    ("unknown_section", None, ["nosuch.x=1"], r"--config.nosuch.x: no such config field"),
    (
        "unknown_option",
        None,
        ["dataset.options.bogus=3"],
        r"--config.dataset.options.bogus: no such config field; allowed: canvas_size",
    ),
    ("epochs_not_int", None, ["train.num_epochs=abc"], r"train.num_epochs: 'abc' .*an integer"),
    ("epochs_fraction", None, ["train.num_epochs=1.5"], r"train.num_epochs: '1.5'"),
    ("bool_garbage", None, ["train.quiet=maybe"], r"train.quiet: 'maybe' .*True, False"),
    ("lr_word", None, ["optim.learning_rate=fast"], r"optim.learning_rate: 'fast' .*a number"),
    ("no_value", _args("--config.train.batch_size"), [], r"--config.train.batch_size: no value"),
    ("unknown_flag", _args("--bogus"), [], r"Unknown command line flag 'bogus'"),
    ("positional_arg", _args("extra"), [], r"unexpected arguments \['extra'\]"),
    ("epochs_zero", None, ["train.num_epochs=0"], r"train.num_epochs: 0"),
    ("batch_zero", None, ["train.batch_size=0"], r"train.batch_size: 0"),
    ("seeds_zero", None, ["train.num_seeds=0"], r"train.num_seeds: 0"),
    ("budget_zero", None, ["train.budget_factor=0"], r"train.budget_factor: 0"),
    ("budget_negative", None, ["train.budget_factor=-1"], r"train.budget_factor: -1"),
    ("budget_huge", None, ["train.budget_factor=1e9"], r"train.budget_factor: 1000000000"),
    ("eval_every_zero", None, ["train.eval_every_epochs=0"], r"train.eval_every_epochs: 0"),
    ("seed_negative", None, ["seed=-1"], r"seed: -1"),
    ("lr_negative", None, ["optim.learning_rate=-1"], r"optim.learning_rate: -1"),
    ("b1_too_big", None, ["optim.b1=1.5"], r"optim.b1: 1.5"),
    ("optimizer_name", None, ["optim.name=sgdx"], r"optim.name: .*sgdx"),
    ("activation_name", None, ["model.activation=relu6x"], r"model.activation: .*relu6x"),
    ("pool_kind", None, ["model.pool=median"], r"model.pool: .*median"),
    ("padding_negative", None, ["model.padding=-1"], r"model.blocks\[0\].padding: -1"),
    ("padding_word", None, ["model.padding=BOGUS"], r"model.padding: .*BOGUS"),
    ("kernel_too_big", None, ["model.kernel_size=100"], r"model.blocks\[0\]"),
    ("preset_name", None, ["model.preset=nope"], r"model.preset: .*nope"),
    ("dataset_name", None, ["dataset.name=nope"], r"dataset.name: unknown value 'nope'"),
    ("canvas_too_small", None, ["dataset.options.canvas_size=2"], r"dataset.options.canvas_size"),
    ("early_metric", None, ["early_stopping.metric=f1"], r"early_stopping.metric: .*f1"),
    ("early_patience", None, ["early_stopping.patience=0"], r"early_stopping.patience: 0"),
    ("rotation_range", None, ["augment.rotation_degrees=500"], r"augment.rotation_degrees: 500"),
    ("seeds_memory", None, ["train.num_seeds=1000000"], r"train.num_seeds: 1000000 needs about"),
    ("canvas_memory", None, ["dataset.options.canvas_size=8192"], r"train.batch_size: 64 needs"),
    ("batch_over_train_set", None, ["train.batch_size=4096"], r"train.batch_size: 4096 exceeds"),
    ("workdir_is_file", _file_at("run"), [], r"workdir: .* cannot be a directory"),
    ("workdir_parent_file", _file_at("run"), [], r"workdir: .* cannot be a directory"),
    (
        "finished_other_lr",
        _stored_run(True, optim__learning_rate=0.1),
        [],
        r"workdir: .* holds a finished run with other settings \(optim.learning_rate: 0.1 -> 0.003",
    ),
    (
        "partial_other_batch",
        _stored_run(False, train__batch_size=32),
        [],
        r"workdir: .* holds a partial run .*train.batch_size: 32 -> 64",
    ),
    (
        "finished_other_budget",
        _stored_run(True, train__budget_factor=3.0),
        [],
        r"workdir: .* \(train.budget_factor: 3.0 -> 1.0\)",
    ),
    (
        "damaged_config_json",
        _file_at("run/config.json"),
        [],
        r"workdir: .*config.json is unreadable",
    ),
    (
        "checkpoints_unreadable",
        _damaged_checkpoints,
        [],
        r"no readable checkpoint in .*steps \[4\]",
    ),
    (
        "damaged_prepared_dataset",
        _damaged_dataset,
        [],
        r"dataset.name: the prepared files of 'digits' in .*tfds/cnn_jax_digits/.* are damaged "
        r"\(RuntimeError: .*\); delete that folder",
    ),
]
WORKDIR_SUFFIX = {"workdir_parent_file": "run/sub"}


def _snapshot(root: Path) -> dict[str, tuple[bool, bytes]]:
    return {
        str(p.relative_to(root)): (p.is_dir(), b"" if p.is_dir() else p.read_bytes())
        for p in root.rglob("*")
    }


def _run_cli(args: list[str], capsys) -> tuple[int, str]:
    flags.FLAGS.unparse_flags()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(train_main.train, default_config=SMOKE, default_workdir="unused", argv=args)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "setup", "overrides", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    name, setup, overrides, expected, tmp_path: Path, data_dir: Path, capsys, monkeypatch
):
    monkeypatch.setenv("CNN_JAX_FAST", "0")  # no re-exec with tcmalloc inside pytest
    monkeypatch.chdir(REPO)
    extra = setup(tmp_path, data_dir) if setup else []
    workdir = tmp_path / WORKDIR_SUFFIX.get(name, "run")
    args = ["train", f"--config={SMOKE}", f"--workdir={workdir}"]
    args += [f"--config.dataset.data_dir={data_dir}", *(f"--config.{o}" for o in overrides)]
    args += extra  # after the defaults: a case's own data dir wins
    before = _snapshot(tmp_path)
    code, err = _run_cli(args, capsys)
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and re.match(expected, err[7:]), err
    assert _snapshot(tmp_path) == before


def test_help_shows_the_flags_and_main_config_fields(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(train_main.train, default_config=SMOKE, default_workdir="w", argv=["t", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for shown in (
        "--config=FILE",
        "--workdir=DIR",
        "--debug",
        "--overwrite",
        "train.num_epochs = 2",
        "train.budget_factor = 1.0",
        "optim.learning_rate",
        "optim.b1",
        "model.pool_window",
        "dataset.options.train_subset",
    ):
        assert shown in out, shown


def _subprocess(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=child_pythonpath(), CNN_JAX_FAST="0", JAX_PLATFORMS="cpu")
    env.pop("CNN_JAX_DEBUG", None)
    cmd = [sys.executable, "-m", "experiments.train", f"--config={SMOKE}", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, **kw)


def test_missing_config_file_in_a_real_process(tmp_path: Path):
    result = _subprocess([f"--workdir={tmp_path / 'w'}", "--config=missing.py"])
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: --config: ") and "missing.py" in result.stderr
    assert not list(tmp_path.iterdir())


def test_a_busy_workdir_names_its_holder(tmp_path: Path, data_dir: Path):
    env = dict(os.environ, PYTHONPATH=child_pythonpath())
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "HELD"
        before = _snapshot(tmp_path)
        result = _subprocess([f"--workdir={tmp_path}", f"--config.dataset.data_dir={data_dir}"])
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"is in use by pid {holder.pid} on host" in result.stderr
    assert _snapshot(tmp_path) == before


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["full_disk", "read_only_data_dir"])
def test_disk_faults_are_one_line(tmp_path: Path, data_dir: Path, fault):
    mount = tmp_path / "mnt"
    options = "size=300k" if fault == "full_disk" else "ro,size=64k"
    if not _mount_tmpfs(mount, options):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        if fault == "full_disk":
            args = [
                f"--workdir={mount / 'run'}",
                f"--config.dataset.data_dir={data_dir}",
                "--config.train.checkpoint_every_steps=4",
            ]
            expected = f"error: {mount / 'run'}"
        else:
            args = [f"--workdir={tmp_path / 'run'}", f"--config.dataset.data_dir={mount}"]
            expected = f"error: {mount}"
        result = _subprocess(args)
    finally:
        subprocess.run(["umount", str(mount)], check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1, result.stderr[-4000:]
    assert result.stderr.startswith(expected), result.stderr
    assert ("No space left" if fault == "full_disk" else "Read-only") in result.stderr
