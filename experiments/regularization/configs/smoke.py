"""Smoke run of the regularizer study: every phase on the embedded digits with a tiny CNN.

For CI and the notebook; a sanity check of the machinery, not a measurement (see
regularization_fashion_mnist.py). Two learning rates and two strengths instead of the record's
3 x 3, two sizes, two draws x two seeds, one control pair (L2 vs decoupled decay under SGD
with momentum).
"""

import ml_collections

from cnn_jax.experiments.regularization.configs import base


def get_config() -> ml_collections.ConfigDict:
    config = base.get_config()
    config.dataset.name = "digits"
    config.dataset.options = ml_collections.ConfigDict(
        {"canvas_size": 16, "train_subset": 256, "subset_seed": 0}
    )
    config.model.blocks = [{"features": 8, "stride": 2}, {"features": 16, "stride": 2}]
    config.model.head_hidden = [32]
    config.train.batch_size = 32
    config.early_stopping.patience = 2
    exp = config.experiment
    exp.variants = ("baseline", "dropout", "all")
    exp.tune = ("dropout",)
    exp.all_components = ("dropout", "batch_norm")
    exp.all_factors = (1.0,)
    exp.learning_rates = ml_collections.ConfigDict({"adamw": (1e-2,), "momentum": (0.05,)})
    exp.grids.dropout = (0.2, 0.5)
    exp.grids.l2 = (1e-3,)
    exp.grids.weight_decay = (2e-2,)  # = 2 * l2 / (1 - momentum): the matched scale
    exp.controls = ("momentum.l2", "momentum.weight_decay")
    exp.control_pairs = (("momentum.l2", "momentum.weight_decay"),)
    exp.tune_size, exp.sizes = 128, (64, 128)
    exp.draws, exp.seeds = (0, 1), (0,)
    config.train.num_epochs, exp.min_epochs = 3, 2
    return config
