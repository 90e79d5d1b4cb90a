"""Recorded commands read `python -m <module> <args>`, with no machine's paths in them."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path

import pytest

from cnn_jax.runs import command_line

CWD = "/srv/repo"


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("/srv/repo/.venv/bin/python -m experiments.train --workdir=runs/a",
         "python -m experiments.train --workdir=runs/a"),
        ("/srv/repo/experiments/anatomy/hyperparameters.py --workdir=/srv/repo/runs/h",
         "python -m experiments.anatomy.hyperparameters --workdir=runs/h"),
        ("/v/lib/python3.11/site-packages/cnn_jax/experiments/invariance/main.py --config=x",
         "python -m cnn_jax.experiments.invariance.main --config=x"),
        ("python /srv/repo/cnn_jax/stats/__main__.py --record",
         "python -m cnn_jax.stats --record"),
        ("/v/bin/cnn-jax-train --workdir=/tmp/elsewhere/run 'a b'",
         "cnn-jax-train --workdir=.../elsewhere/run 'a b'"),
    ],
)  # fmt: skip
def test_commands_are_portable(command: str, shown: str):
    assert command_line.portable_text(command, CWD) == shown


def test_a_path_under_home_is_written_from_home():
    home = Path.home() / "data" / "runs"
    assert command_line.portable_path(str(home), CWD) == "~/data/runs"


def test_this_process_is_the_module_it_runs(monkeypatch):
    main = types.ModuleType("__main__")
    main.__spec__ = importlib.machinery.ModuleSpec("cnn_jax.stats.__main__", None)
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", ["/srv/repo/cnn_jax/stats/__main__.py", "--record"])
    assert command_line.this_process() == ["python", "-m", "cnn_jax.stats", "--record"]


def test_interpreter_options_are_not_the_command(tmp_path):
    """An xdist worker runs `python -u -c CODE`: the options are skipped, `-c` is kept."""
    assert command_line.portable(["/usr/bin/python3", "-u", "-c", "pass"], tmp_path) == (
        "python -c pass"
    )
    argv = ["/usr/bin/python3", "-X", "dev", "-m", "experiments.train", "--workdir=runs/x"]
    assert command_line.portable(argv, tmp_path) == "python -m experiments.train --workdir=runs/x"
