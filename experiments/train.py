r"""Trains one CNN from a config: the project's main job.

    python -m experiments.train --config=experiments/configs/digits.py --workdir=runs/digits \
        --config.train.num_epochs=3

Re-running with the same --workdir resumes from the latest checkpoint.
"""

from __future__ import annotations

from absl import app
from ml_collections import config_flags

from cnn_jax.train import train_and_evaluate
from experiments import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/configs/digits.py", "Training config (a Python file with get_config())."
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    cli.setup()
    workdir = cli.FLAGS.workdir or "runs/default"

    def run() -> None:
        results = train_and_evaluate(_CONFIG.value, workdir)
        print(
            f"Test accuracy: {results['test_accuracy']:.4f} "
            f"({results['steps']} steps, {results['wall_time_sec']:.1f} s, "
            f"{results['train_images_per_sec']:.0f} images/s)"
        )
        print(f"Results, metrics, checkpoints and TensorBoard logs: {workdir}/")

    cli.run_guarded(run)


if __name__ == "__main__":
    app.run(main)
