"""Shared settings of the regularizer study; the dataset configs start from here.

The baseline is the MNIST CNN with every regularizer off and stride-2 convs in place of pooling
(same output shapes and parameter count as the `pooling` variant), trained with AdamW on a
warmup-cosine schedule. Validation: 1,000 images held out of the training split, fixed across
subset draws (it is the tuning split); test: the full 10,000-image test split.
"""

import ml_collections

from cnn_jax.augment import default_augment_config
from cnn_jax.experiments.configs import base


def experiment_config() -> ml_collections.ConfigDict:
    """The study design; see experiments/regularization/main.py for the phases."""
    exp = ml_collections.ConfigDict()
    exp.variants = ("baseline", "dropout", "weight_decay", "augment", "all")  # the size curve
    exp.tune = ("dropout", "weight_decay", "augment")  # AdamW grids (strength x lr)
    exp.all_components = ("dropout", "weight_decay", "augment")
    exp.all_factors = (0.5, 1.0)  # joint factor over the components' chosen strengths
    exp.learning_rates = ml_collections.ConfigDict(
        {"adamw": (1e-3, 3e-3, 1e-2), "momentum": (0.01, 0.03, 0.1)}
    )
    exp.grids = ml_collections.ConfigDict(
        {
            "dropout": (0.25, 0.5, 0.7),  # head rate; conv rate half of it
            "weight_decay": (0.05, 0.3, 1.5),  # decoupled: kernels shrink by lr * wd per step
            "augment": (0.5, 1.0, 2.0),  # x the augment section below
            "l1": (1e-5, 1e-4, 1e-3),
            "l2": (1e-4, 1e-3, 1e-2),
            "noise": (0.1, 0.3, 0.6),
            "max_norm": (2.0, 3.0, 4.0),
        }
    )
    # Per-optimizer strength grids where one grid cannot suit both (regularization_tuning):
    # under SGD + momentum 0.9, decoupled decay w matches L2 c at w = 2c / (1 - 0.9).
    exp.optimizer_grids = ml_collections.ConfigDict(
        {"momentum": ml_collections.ConfigDict({"weight_decay": (2e-3, 1e-2, 5e-2)})}
    )
    # Per-regularizer learning-rate grids where one regularizer needs rates past its optimizer's
    # (tuning.learning_rates_for): '<optimizer>': {'<regularizer>': rates}; empty: none.
    exp.regularizer_learning_rates = ml_collections.ConfigDict({})
    # Controls at tune_size, converged: '<optimizer>.<regularizer>' vs that optimizer's baseline.
    exp.controls = ("adamw.pooling", "adamw.strided_wide")
    exp.control_pairs = (("pooling", "adamw.strided_wide"),)  # pooling vs matched-FLOPs strided
    exp.wide_factor = 1.85  # strided_wide: features x 1.85, FLOPs within ~1% of pooling's
    exp.pair_strength = ml_collections.ConfigDict({"l2": 1e-3, "max_norm": 3.0})
    exp.literature = ml_collections.ConfigDict({"variants": (), "size": "all", "seeds": (0,)})
    exp.tune_size, exp.tune_draw, exp.tune_seeds = 1000, 0, (0,)
    exp.sizes = (250, 1000, 4000)
    exp.draws, exp.budget_draws, exp.seeds = (0, 1), (0,), (0, 1)
    # The 1x budget is train.num_epochs at tune_size, scaled with n (experiments/regularization/
    # runs.py); converged runs stop early under 3x it, or under converged_epochs if that is more.
    exp.min_epochs, exp.epoch_exponent = 3, 1.0
    exp.converged_epochs = None  # None: 3x the 1x budget at every n
    exp.retune_size = None  # a size (the largest n) to re-tune the chosen settings at, or None
    # Equivalence margin of the claims: 20% of the baseline's test error, at least 0.25 pt (a fixed
    # 1 pt margin let a variant that doubled a 1% error pass as equivalent).
    # never above 1 pt (20% of Fashion's 14% error would be 2.8 pt, too loose to call equivalent).
    exp.margin_relative, exp.margin_floor, exp.margin_cap = 0.2, 0.0025, 0.01
    exp.vmap_seeds = True
    # Grid points that differ only in traced fields (rate, weight decay, L1, L2) as members of
    # one program (cnn_jax.config.grid): benchmarks/REPORT_grid.md measures it against separate
    # ones.
    exp.vmap_grids = True
    augment = default_augment_config()
    augment.rotation_degrees = 10.0
    augment.scale_min, augment.scale_max = 0.9, 1.1
    augment.crop_padding = 2
    exp.augment = augment
    exp.record_as = ""  # set by the configs of record
    return exp


def get_config() -> ml_collections.ConfigDict:
    config = base.get_config()
    config.dataset.name = "fashion_mnist"
    config.dataset.options = ml_collections.ConfigDict(
        {"validation_size": 1000, "train_subset": 1000, "subset_seed": 0}
    )
    model = config.model
    model.preset = "mnist_cnn"
    model.pool, model.stride = "none", 2  # no pooling in the baseline: strided convs
    model.batch_norm = False
    model.conv_dropout = model.head_dropout = 0.0
    model.input_noise_std = model.hidden_noise_std = 0.0
    config.optim.weight_decay = 0.0
    config.optim.l1 = config.optim.l2 = 0.0
    config.optim.max_norm = 0.0
    train = config.train
    train.batch_size = 50  # 20 steps per epoch on 1,000 images
    train.num_epochs = 15  # the 1x budget at experiment.tune_size (scaled with n by the study)
    train.log_every_steps = 20
    train.checkpoint_every_steps = 10**6  # only at the end: runs are short, and resumable as units
    train.keep_checkpoints = 1
    train.tensorboard = False
    train.quiet = True
    config.early_stopping = ml_collections.ConfigDict(
        {"enabled": False, "metric": "accuracy", "patience": 6, "min_delta": 0.0}
    )
    config.augment = default_augment_config()
    config.experiment = experiment_config()
    return config
