"""Defaults shared by every training config; other configs start from `get_config()`."""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from cnn_jax import augment
from cnn_jax.config import launcher


def get_config() -> ml_collections.ConfigDict:
    """The default run: the flax-MNIST-style CNN on the embedded digits dataset."""
    config = ml_collections.ConfigDict()
    config.seed = 0

    config.dataset = ml_collections.ConfigDict()
    config.dataset.name = "digits"
    config.dataset.data_dir = placeholder(
        str
    )  # default: $CNN_JAX_DATA_DIR or ~/tensorflow_datasets
    config.dataset.options = ml_collections.ConfigDict({"canvas_size": 16})

    config.model = ml_collections.ConfigDict()
    config.model.preset = "mnist_cnn"
    # "bfloat16": mixed precision for accelerators (parameters, loss and optimizer in float32).
    config.model.compute_dtype = "float32"
    # Each override below applies to every conv block of the preset when set.
    config.model.kernel_size = placeholder(int)
    config.model.stride = placeholder(int)
    config.model.padding = placeholder(str)
    config.model.activation = placeholder(str)
    config.model.pool = placeholder(str)
    config.model.batch_norm = placeholder(bool)
    config.model.head = placeholder(str)
    config.model.conv_dropout = placeholder(float)
    config.model.head_dropout = placeholder(float)
    config.model.hidden_noise_std = placeholder(float)
    config.model.input_noise_std = placeholder(float)

    config.optim = ml_collections.ConfigDict()
    config.optim.name = "adamw"
    config.optim.learning_rate = 3e-3
    config.optim.schedule = "warmup_cosine"
    config.optim.warmup_epochs = 1.0
    config.optim.end_lr_factor = 0.01
    config.optim.grad_clip_norm = 0.0
    config.optim.weight_decay = 1e-4
    config.optim.l1 = 0.0
    config.optim.l2 = 0.0

    config.early_stopping = ml_collections.ConfigDict()
    config.early_stopping.enabled = False
    config.early_stopping.metric = "accuracy"  # on the validation split; or "loss"
    config.early_stopping.patience = 5
    config.early_stopping.min_delta = 0.0

    config.augment = augment.default_augment_config()  # every augmentation off

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 64
    config.train.num_epochs = 15
    config.train.budget_factor = 1.0  # trains round(num_epochs x factor) epochs (1x, 3x budgets)
    config.train.num_seeds = 1  # K > 1: K seeds (seed, seed+1, ...) as one vmapped program
    config.train.eval_every_epochs = 1
    config.train.log_every_steps = 20
    config.train.checkpoint_every_steps = 500  # 0: at the end of every epoch
    config.train.keep_checkpoints = 3
    config.train.eval_train_at_end = True
    config.train.tensorboard = True
    config.train.quiet = False
    config.train.overwrite = False  # True: discard a run trained with other settings in --workdir

    config.launcher = launcher.default_config()  # where sweeps train: here, or on SLURM
    return config
