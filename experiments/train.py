r"""Trains one CNN from a config: the project's main job.

    python -m experiments.train --config=experiments/configs/digits.py --workdir=runs/digits \
        --config.train.num_epochs=3

Re-running with the same --workdir resumes from the latest checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import ml_collections

from cnn_jax.train import train_and_evaluate

from . import cli


def train(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Trains, then prints the final test accuracy and where the results went."""
    results = train_and_evaluate(config, workdir)
    print(
        f"Test accuracy: {results['test_accuracy']:.4f} "
        f"({results['steps']} steps, {results['wall_time_sec']:.1f} s, "
        f"{results['train_images_per_sec']:.0f} images/s)"
    )
    print(f"{written(workdir)}: {workdir}/")
    return results


OUTPUTS = (  # (what, file pattern in the run dir or its seed dirs)
    ("results", "results.json"),
    ("metrics", "metrics.jsonl"),
    ("per-image predictions", "predictions"),
    ("checkpoints", "checkpoints"),
    ("TensorBoard logs", "events.out.tfevents.*"),
)


def written(workdir: str | Path) -> str:
    """The outputs the run left in `workdir`, by name (TensorBoard only if it wrote events)."""
    root = Path(workdir)
    names = [
        what
        for what, pattern in OUTPUTS
        if any(root.glob(pattern)) or any(root.glob(f"seed_*/{pattern}"))
    ]
    text = ", ".join(names[:-1]) + (f" and {names[-1]}" if len(names) > 1 else "".join(names))
    return text[:1].upper() + text[1:]


if __name__ == "__main__":
    cli.main(train, default_config="experiments/configs/digits.py", default_workdir="runs/default")
