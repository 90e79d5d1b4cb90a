"""Smoke run of the conv hyperparameter study: kernels and border parts, 2 seeds, 1 epoch.

For CI and the notebook (well under 2 minutes on 2 CPU cores); checks the pipeline, not a
measurement (see hyperparameters_full.py). Not published (no experiment.record_as).
"""

from cnn_jax.experiments.anatomy.configs import hyperparameters_full


def get_config():
    config = hyperparameters_full.get_config()
    config.train.num_epochs = 1
    config.train.log_every_steps = 5
    exp = config.experiment
    exp.record_as = ""
    exp.parts = ("kernels", "border")  # stride and depth variants: unit tests (no training)
    exp.seeds = (0, 1)
    exp.budgets = {"1x": 1.0}  # the 3x path: the end-to-end test (border part)
    exp.width = 4
    exp.kernels = {"fields": (5,), "match": ("params",)}
    exp.depth = {"depths": (1, 3), "same_only_depths": (), "large_kernel": 7, "large_depths": (1,)}
    exp.border = {"paddings": ("SAME", "VALID"), "depth": 2}
    return config
