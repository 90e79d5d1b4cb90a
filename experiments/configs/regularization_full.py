r"""Regularizer study, the measurement: 1,000 Fashion-MNIST training images, 3 seeds.

    python -m experiments.regularization --config=experiments/configs/regularization_full.py \
        --workdir=runs/regularization_full [--vmap_seeds] [--strength_sweeps]

Small-data regime: the first 1,000 training images (`train_subset`), 1,000 held-out
validation images (for early stopping and curves) and the full 10,000-image test set. The
baseline is the MNIST CNN with every regularizer off and stride-2 convs in place of pooling
(same output shapes and parameter count as the pooled `pooling` variant). Fashion-MNIST comes
with Debian's `dataset-fashion-mnist` or `make data`; without it the study falls back to the
embedded digits and says so. `--config.dataset.name=mnist` runs it on MNIST.
Flip stays off: the fallback digits must not be mirrored.

Measured wall time: 33.6 min for 11 variants x 3 seeds, sequential seeds (14.3 min CPU time),
on the 2-core machine shared with 4 other jobs (load average 9-12); `all` and `pooling`
(stride-1 convs) cost 2-3x a baseline run. `--vmap_seeds` was ~2x faster than sequential
seeds for the baseline in one `--speed_test` measurement.
"""

import ml_collections

from cnn_jax.augment import default_augment_config
from experiments.configs import base

VARIANTS = (
    "baseline",
    "batch_norm",
    "dropout",
    "l1",
    "l2",
    "weight_decay",
    "early_stopping",
    "augment",
    "noise",
    "pooling",
    "all",
)


def experiment_config() -> ml_collections.ConfigDict:
    """Which variants and seeds, each regularizer's strength, the optional strength sweeps."""
    exp = ml_collections.ConfigDict()
    exp.variants = VARIANTS
    exp.seeds = (0, 1, 2)
    exp.vmap_seeds = False  # --vmap_seeds: each variant's seeds as one vmapped program
    exp.strength_sweeps = False  # --strength_sweeps: also every strength in `sweeps`
    exp.strength = ml_collections.ConfigDict(
        {
            "conv_dropout": 0.25,
            "head_dropout": 0.5,
            "l1": 2e-5,
            "l2": 2e-4,
            "weight_decay": 0.5,  # decoupled: each step shrinks kernels by lr * 0.5
            "input_noise_std": 0.3,  # in units of the normalised input (std 1)
            "hidden_noise_std": 0.2,
        }
    )
    augment = default_augment_config()
    augment.rotation_degrees = 10.0
    augment.scale_min, augment.scale_max = 0.9, 1.1
    augment.crop_padding = 2
    exp.augment = augment
    exp.sweeps = ml_collections.ConfigDict(
        {
            "dropout": (0.1, 0.3, 0.5, 0.7),  # head rate; conv rate is half of it
            "weight_decay": (0.05, 0.2, 0.5, 1.0),
            "l1": (5e-6, 2e-5, 1e-4),
            "l2": (5e-5, 2e-4, 1e-3),
            "noise": (0.1, 0.3, 0.6),  # input and hidden std
        }
    )
    exp.fallback_dataset = ml_collections.ConfigDict(
        {"name": "digits", "options": {"canvas_size": 16}}
    )
    return exp


def get_config() -> ml_collections.ConfigDict:
    config = base.get_config()
    config.dataset.name = "fashion_mnist"
    config.dataset.options = ml_collections.ConfigDict(
        {"train_subset": 1000, "validation_size": 1000}
    )
    model = config.model
    model.preset = "mnist_cnn"
    model.pool, model.stride = "none", 2  # no pooling in the baseline: strided convs
    model.batch_norm = False
    model.conv_dropout = model.head_dropout = 0.0
    model.input_noise_std = model.hidden_noise_std = 0.0
    config.optim.weight_decay = 0.0
    config.optim.l1 = config.optim.l2 = 0.0
    train = config.train
    train.batch_size = 50  # 20 steps per epoch on 1,000 images
    train.num_epochs = 15
    train.log_every_steps = 20  # one training-curve point per epoch
    train.checkpoint_every_steps = 100  # every 5 epochs and at the end: resumable
    train.keep_checkpoints = 1
    train.tensorboard = False
    train.quiet = True
    config.early_stopping = ml_collections.ConfigDict(
        {"enabled": False, "metric": "accuracy", "patience": 4, "min_delta": 0.0}
    )
    config.augment = default_augment_config()
    config.experiment = experiment_config()
    return config
