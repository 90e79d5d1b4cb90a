"""Command-line config overrides: declared and documented-optional fields, types, budget."""

from __future__ import annotations

import ml_collections
import pytest

from cnn_jax.config_validation import validate_config
from cnn_jax.run_setup import budget_epochs
from experiments import config_cli

SMOKE = "experiments/configs/smoke.py"


@pytest.fixture
def config(monkeypatch):
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    return config_cli.load_file(SMOKE)


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [
        ("dataset.options.train_subset", "100", 100),  # optional, not declared by the file
        ("optim.b1", "0.8", 0.8),
        ("model.pool_window", "3", 3),
        ("model.padding", "1", 1),  # documented: a mode name or an int
        ("model.padding", "VALID", "VALID"),
        ("train.quiet", "false", False),
        ("train.num_epochs", "7", 7),
        ("train.budget_factor", "3", 3.0),
        ("model.kernel_size", "5", 5),  # a placeholder(int) field
    ],
)
def test_override_sets_the_typed_value(config, field, text, value):
    config_cli.apply_override(config, field, text)
    key = field.split(".")[-1]
    got = config
    for part in field.split(".")[:-1]:
        got = got[part]
    assert got[key] == value and type(got[key]) is type(value)


def test_overridden_optional_fields_pass_validation(config, data_dir):
    config.dataset.data_dir = str(data_dir)
    for field, text in [
        ("dataset.options.train_subset", "100"),
        ("optim.b1", "0.8"),
        ("model.padding", "1"),
        ("model.pool_window", "2"),
    ]:
        config_cli.apply_override(config, field, text)
    validate_config(config)


def test_split_argv_separates_config_overrides_and_flags():
    argv = [
        "prog",
        "--config",
        "a.py",
        "--config.train.num_epochs=3",
        "--workdir=w",
        "--config.optim.b1",
        "0.9",
        "--debug",
    ]
    assert config_cli.split_argv(argv) == (
        "a.py",
        [("train.num_epochs", "3"), ("optim.b1", "0.9")],
        ["prog", "--workdir=w", "--debug"],
    )


def test_budget_factor_multiplies_epochs_rounding_half_up():
    train = ml_collections.ConfigDict({"num_epochs": 15, "budget_factor": 3.0})
    assert budget_epochs(train) == 45
    train.num_epochs, train.budget_factor = 5, 0.5
    assert budget_epochs(train) == 3  # 2.5 rounds up
    assert budget_epochs(ml_collections.ConfigDict({"num_epochs": 4})) == 4  # default 1x


@pytest.mark.parametrize(
    ("text", "value"),
    [("zhang", ("zhang",)), ("zhang,", ("zhang",)), ("max,gap", ("max", "gap")),
     ("('max', 'gap')", ("max", "gap")), ("0,", (0,))],
)  # fmt: skip
def test_bare_words_for_a_sequence_field_are_a_tuple_of_words(text, value):
    config = ml_collections.ConfigDict({"experiment": {"protocols": ("zhang", "azulay")}})
    config_cli.apply_override(config, "experiment.protocols", text)
    assert config.experiment.protocols == value
