"""Entry points of the installed console scripts (`[project.scripts]` in pyproject.toml).

Each runs an experiment module exactly as `python -m experiments.<module>` does (a study's is
`experiments.<study>.<stage>`) (its
`if __name__ == "__main__":` block, through `runpy`), so `cnn-jax-train --config=digits`
works from any directory once the package is installed.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

COMMANDS = {
    "cnn-jax-train": "train",
    "cnn-jax-invariance": "invariance.main",
    "cnn-jax-regularization": "regularization.main",
    "cnn-jax-activations": "anatomy.activations",
    "cnn-jax-hyperparameters": "anatomy.hyperparameters",
    "cnn-jax-feature-maps": "anatomy.feature_maps",
}


def _run(module: str) -> None:
    from . import cli

    cli.installed_command = Path(sys.argv[0]).name  # `--help` names this command
    runpy.run_module(f"{__package__}.{module}", run_name="__main__", alter_sys=True)


def train() -> None:
    """cnn-jax-train: one training run (experiments/train.py)."""
    _run(COMMANDS["cnn-jax-train"])


def invariance() -> None:
    """cnn-jax-invariance: the translation-invariance study."""
    _run(COMMANDS["cnn-jax-invariance"])


def regularization() -> None:
    """cnn-jax-regularization: the regularizer study."""
    _run(COMMANDS["cnn-jax-regularization"])


def activations() -> None:
    """cnn-jax-activations: the activation-function study."""
    _run(COMMANDS["cnn-jax-activations"])


def hyperparameters() -> None:
    """cnn-jax-hyperparameters: the depth/kernel hyperparameter study."""
    _run(COMMANDS["cnn-jax-hyperparameters"])


def feature_maps() -> None:
    """cnn-jax-feature-maps: feature-map figures of a trained run."""
    _run(COMMANDS["cnn-jax-feature-maps"])
