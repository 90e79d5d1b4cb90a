"""Activation study on the embedded digits (16x16 canvas), 3 seeds, two optimizers.

Architecture: conv16-avgpool, conv32-avgpool, conv32, flatten, dense(10): average pooling
and no hidden dense layer, so with the identity activation the network is linear. Linear
collapse: three 3x3 VALID convs (identity / ReLU) vs one 7x7 VALID conv, 16 filters each.
"""

import ml_collections

from experiments.configs import base


def get_config():
    config = base.get_config()
    config.dataset.name = "digits"
    config.dataset.options = {"canvas_size": 16}
    config.model.head = "flatten"
    config.model.head_hidden = ()
    config.train.batch_size = 64
    config.train.num_epochs = 10
    config.train.eval_every_epochs = 10  # validation once at the end: steady step timings
    config.train.log_every_steps = 5
    config.train.checkpoint_every_steps = 1_000_000  # only the final checkpoint
    config.train.keep_checkpoints = 1
    config.train.tensorboard = False
    config.train.quiet = True

    exp = config.experiment = ml_collections.ConfigDict()
    exp.seeds = (0, 1, 2)
    # True trains a variant's seeds as one vmapped program (one compile), but XLA:CPU runs
    # vmapped convolutions (grouped per seed) far slower than K separate runs here.
    exp.vmap_seeds = False
    exp.target_accuracy = 0.9
    exp.activations = ("relu", "sigmoid", "tanh", "gelu", "identity")
    exp.blocks = (
        {"features": 16, "kernel_size": 3, "padding": "SAME", "pool": "avg"},
        {"features": 32, "kernel_size": 3, "padding": "SAME", "pool": "avg"},
        {"features": 32, "kernel_size": 3, "padding": "SAME"},
    )
    # Optimizer overrides of config.optim, one study per entry.
    exp.optimizers = {
        "adamw": {},
        "momentum": {"name": "momentum", "learning_rate": 0.05, "momentum": 0.9},
    }
    exp.collapse = {"features": 16, "kernel_size": 3, "depth": 3}
    return config
