"""`validate_config`: every bad setting is one line naming the field, before anything compiles.

Table-driven: each case changes one field of the smoke config and names the field the
message must start with. A few cases go through `python -m experiments.train` to check the
exit status 2 and that no traceback is printed (unless --debug).
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import ml_collections
import pytest

from cnn_jax import datasets
from cnn_jax.config_validation import check_workdir, validate_config
from experiments.configs import smoke
from tests.conftest import REPO, child_pythonpath

NAN = float("nan")

# (case id, {dotted path: new value}, field the message starts with, optional fragment)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("kernel_size_zero", {"model.kernel_size": 0}, "model.blocks[0].kernel_size", ">= 1"),
    ("kernel_size_negative", {"model.kernel_size": -3}, "model.blocks[0].kernel_size", "-3"),
    ("stride_zero", {"model.stride": 0}, "model.blocks[0].stride", ">= 1"),
    (
        "pool_window_larger_than_map",
        {"model.preset": "mnist_cnn", "model.pool_window": 12},
        "model.blocks[1].pool_window",
        "3x3 feature map entering block1/pool",
    ),
    (
        "spatial_size_reaches_zero",
        {
            "model.preset": "tiny_vgg",
            "model.activation": None,
            "dataset.options": {"canvas_size": 8},
        },
        "model.blocks[2]",
        "spatial size reaches 0 at block2/conv",
    ),
    ("unknown_activation", {"model.activation": "relux"}, "model.activation", "'relux'"),
    ("unknown_pooling", {"model.pool": "maxx"}, "model.pool", "max, avg"),
    ("unknown_padding", {"model.padding": "SAMEE"}, "model.padding", "CIRCULAR"),
    ("unknown_dataset", {"dataset.name": "cifar11"}, "dataset.name", "digits"),
    ("unknown_optimizer", {"optim.name": "adamx"}, "optim.name", "sgd"),
    ("negative_dropout", {"model.conv_dropout": -0.1}, "model.blocks[0].dropout", "0 <= rate"),
    ("dropout_one", {"model.head_dropout": 1.0}, "model.head.dropout", "rate < 1"),
    ("negative_weight_decay", {"optim.weight_decay": -1e-4}, "optim.weight_decay", ">= 0"),
    ("num_epochs_zero", {"train.num_epochs": 0}, "train.num_epochs", ">= 1"),
    ("batch_size_zero", {"train.batch_size": 0}, "train.batch_size", ">= 1"),
    ("num_seeds_zero", {"train.num_seeds": 0}, "train.num_seeds", ">= 1"),
    ("log_every_zero", {"train.log_every_steps": 0}, "train.log_every_steps", ">= 1"),
    (
        "checkpoint_every_negative",
        {"train.checkpoint_every_steps": -1},
        "train.checkpoint_every_steps",
        ">= 0",
    ),
    ("quiet_not_bool", {"train.quiet": "yes"}, "train.quiet", "True, False"),
    ("learning_rate_nan", {"optim.learning_rate": NAN}, "optim.learning_rate", "finite"),
    (
        "learning_rate_overflows_float32",
        {"optim.learning_rate": 1e39},
        "optim.learning_rate",
        "float32",
    ),
    ("learning_rate_zero", {"optim.learning_rate": 0.0}, "optim.learning_rate", "> 0"),
    ("momentum_one", {"optim.name": "momentum", "optim.momentum": 1.0}, "optim.momentum", "< 1"),
    ("adam_b2_too_big", {"optim.b2": 1.5}, "optim.b2", "0 <= b2 < 1"),
    (
        "l2_with_decoupled_decay",
        {"optim.l2": 1e-4, "optim.weight_decay": 1e-4},
        "optim.l2 and optim.weight_decay",
        "allow_l2_with_weight_decay",
    ),
    (
        "image_shape_mismatch",
        {"dataset.image_shape": [28, 28, 1]},
        "dataset.image_shape",
        "[16, 16, 1]",
    ),
    (
        "canvas_too_small",
        {"dataset.options": {"canvas_size": 4}},
        "dataset.options.canvas_size",
        "",
    ),
    (
        "canvas_smaller_than_scaled_digit",
        {"dataset.options": {"canvas_size": 16, "digit_scale": 3}},
        "dataset.options",
        "canvas_size",
    ),
    ("dataset_option_typo", {"dataset.options": {"canvas": 16}}, "dataset.options.canvas", ""),
    ("top_level_typo", {"sed": 1}, "sed", "unknown key"),
    ("train_key_typo", {"train.batchsize": 32}, "train.batchsize", "batch_size"),
    ("model_key_typo", {"model.kernal_size": 3}, "model.kernal_size", "kernel_size"),
    ("optim_key_typo", {"optim.learning_rat": 0.1}, "optim.learning_rat", "learning_rate"),
    ("negative_seed", {"seed": -1}, "seed", ">= 0"),
    ("seed_past_32_bits", {"seed": 2**32}, "seed", "< 2**32"),
    ("last_seed_past_32_bits", {"seed": 2**32 - 2, "train.num_seeds": 3}, "seed", "< 2**32"),
    (
        "blur_size_too_big",
        {"model.preset": "mnist_cnn", "model.pool": "blur", "model.blur_size": 9},
        "model.blocks[0].blur_size",
        "1..7",
    ),
    ("one_class", {"model.num_classes": 1}, "model.num_classes", ">= 2"),
    ("compute_dtype", {"model.compute_dtype": "float16"}, "model.compute_dtype", "bfloat16"),
    ("early_stopping_metric", {"early_stopping.metric": "acc"}, "early_stopping.metric", "loss"),
    ("early_stopping_patience", {"early_stopping.patience": 0}, "early_stopping.patience", ">= 1"),
    ("early_stopping_typo", {"early_stopping.patiense": 3}, "early_stopping.patiense", ""),
    ("augment_rotation", {"augment.rotation_degrees": 270.0}, "augment.rotation_degrees", "180"),
    ("augment_typo", {"augment.flipp": True}, "augment.flipp", "flip"),
]


def smoke_dict() -> dict[str, Any]:
    return smoke.get_config().to_dict()


def with_changes(changes: dict[str, Any]) -> ml_collections.ConfigDict:
    """The smoke config with dotted paths set (as plain data: any type can be set)."""
    config = smoke_dict()
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = config
        for key in parents:
            node = node[key]
        node[leaf] = value
    return ml_collections.ConfigDict(config)


def test_there_are_at_least_twenty_cases():
    assert len(CASES) >= 20
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "changes, field, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_field_is_named_in_one_line(changes, field, fragment):
    with pytest.raises(ValueError) as info:
        validate_config(with_changes(changes))
    message = str(info.value)
    assert message.startswith(f"{field}:"), message
    assert fragment in message, message
    assert "allowed" in message and "\n" not in message, message


def test_the_smoke_config_is_valid(tmp_path: Path):
    validate_config(smoke.get_config(), tmp_path / "new" / "workdir")


def test_workdir_that_is_a_file_is_refused(tmp_path: Path):
    path = tmp_path / "a_file"
    path.write_text("not a directory")
    for workdir in (path, path / "below"):
        with pytest.raises(ValueError, match=r"^workdir: .*\(.*is a file\); allowed: a directory"):
            validate_config(smoke.get_config(), workdir)


def _unusable_workdirs(tmp_path: Path) -> list[tuple[Path, str]]:
    """Workdir paths no file can have, each with what its one line must say."""
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    long_name = "x" * 300
    return [
        (tmp_path / long_name / "run", r"File name too long; allowed: a shorter path"),
        (tmp_path / "/".join(["y" * 250] * 20), r"File name too long; allowed: a shorter path"),
        (tmp_path / "loop_a" / "run", r"Too many levels of symbolic links; allowed: a path "),
        (tmp_path / "loop_a", r"Too many levels of symbolic links; allowed: a path "),
        (tmp_path / "run_\udcff", r"is not UTF-8; allowed: a path of UTF-8 characters"),
    ]


def test_a_workdir_no_file_can_have_is_one_line(tmp_path: Path):
    for workdir, says in _unusable_workdirs(tmp_path):
        with pytest.raises(ValueError) as refused:
            check_workdir(workdir)
        message = str(refused.value)
        assert message.startswith("workdir: ") and re.search(says, message), message
        assert "\n" not in message and len(message) < 300, message


def test_every_command_refuses_such_a_workdir_before_it_runs(tmp_path: Path, capsys, monkeypatch):
    """`cli.main` checks the workdir before the experiment's own code (a study makes its
    workdir before any unit is validated), so nothing is created and no traceback shows."""
    from absl import flags

    from experiments import cli

    monkeypatch.setenv("CNN_JAX_FAST", "0")  # no re-exec with tcmalloc inside pytest
    monkeypatch.chdir(REPO)
    for workdir, says in _unusable_workdirs(tmp_path):
        flags.FLAGS.unparse_flags()
        with pytest.raises(SystemExit) as exited:
            cli.main(
                lambda config, wd: pytest.fail(f"ran with the workdir {wd!r}"),
                default_config="experiments/configs/smoke.py",
                default_workdir="unused",
                argv=["study", f"--workdir={workdir}"],
            )
        err = capsys.readouterr().err
        assert exited.value.code == 2 and len(err.splitlines()) == 1, err
        assert err.startswith("error: workdir: ") and re.search(says, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop_a", "loop_b"]


def test_missing_dataset_files_say_where_and_how_in_one_line(tmp_path: Path):
    config = with_changes({"dataset.name": "mnist", "dataset.options": {}})
    config.dataset.data_dir = str(tmp_path)
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        validate_config(config)
    message = str(info.value)
    assert message.startswith("dataset.name: MNIST not found") and "\n" not in message
    assert str(tmp_path / "downloads" / "manual" / "mnist") in message and "cnn-jax-data" in message


def test_every_shipped_config_is_valid_or_only_lacks_its_data():
    for path in sorted((REPO / "experiments" / "configs").glob("*.py")):
        if path.stem == "__init__":
            continue
        config = importlib.import_module(f"experiments.configs.{path.stem}").get_config()
        try:
            validate_config(config)
        except datasets.DatasetNotFoundError:
            assert config.dataset.name not in ("digits", "shapes"), path.name


def test_batch_size_must_divide_over_the_devices():
    from tests.conftest import run_python

    code = (
        "from cnn_jax.config_validation import validate_config\n"
        "from experiments.configs import smoke\n"
        "c = smoke.get_config(); c.train.batch_size = 60\n"
        "try:\n    validate_config(c)\nexcept ValueError as e:\n    print('ERROR', e)\n"
        "c.train.batch_size = 64\nvalidate_config(c)\nprint('OK')\n"
    )
    result = run_python(code, devices=8)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ERROR train.batch_size: 60 not divisible by the 8 devices" in result.stdout
    assert "allowed: multiples of 8" in result.stdout and "OK" in result.stdout


def run_cli(
    data_dir: Path, *args: str, devices: int = 1, config: str = "experiments/configs/smoke.py"
) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=child_pythonpath(), JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env.pop("CNN_JAX_DEBUG", None)
    cmd = [sys.executable, "-m", "experiments.train", f"--config={config}"]
    cmd.append(f"--config.dataset.data_dir={data_dir}")
    return subprocess.run(
        [*cmd, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, devices, field",
    [
        (["--config.model.kernel_size=0"], 1, "model.blocks[0].kernel_size"),
        (["--config.train.batch_size=62"], 4, "train.batch_size"),
        (["--config.dataset.name=cifar11"], 1, "dataset.name"),
    ],
)
def test_cli_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, data_dir: Path, args, devices, field
):
    result = run_cli(data_dir, f"--workdir={tmp_path / 'run'}", *args, devices=devices)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    error_lines = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert len(error_lines) == 1 and error_lines[0].startswith(f"error: {field}:"), result.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was created


@pytest.mark.slow
def test_cli_workdir_file_and_config_file_typo_then_debug_traceback(tmp_path: Path, data_dir: Path):
    workdir = tmp_path / "taken"
    workdir.write_text("")
    result = run_cli(data_dir, f"--workdir={workdir}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: workdir: " in result.stderr

    config_file = tmp_path / "typo.py"
    config_file.write_text(
        "from experiments.configs import smoke\n\n"
        "def get_config():\n"
        "    config = smoke.get_config()\n"
        "    config.train.batchsize = 32\n"
        "    return config\n"
    )
    typo = run_cli(data_dir, f"--workdir={tmp_path / 'run'}", config=str(config_file))
    assert typo.returncode == 2 and "Traceback" not in typo.stderr
    assert "error: train.batchsize: unknown key" in typo.stderr

    debug = run_cli(data_dir, f"--workdir={tmp_path / 'run'}", "--debug", config=str(config_file))
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert "train.batchsize: unknown key" in debug.stderr
