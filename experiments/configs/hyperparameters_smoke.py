"""Smoke run of the conv hyperparameter study: a few settings x 2 seeds, 1 epoch of digits.

For CI and the notebook (under 2 minutes on 2 CPU cores); a sanity check of the pipeline,
not a measurement (see hyperparameters_full.py).
"""

from experiments.configs import hyperparameters_full


def get_config():
    config = hyperparameters_full.get_config()
    config.train.num_epochs = 1
    config.train.eval_every_epochs = 1
    config.train.log_every_steps = 5
    config.experiment.seeds = (0, 1)
    # One compile per variant: for 1-2 epochs compiling dominates, so vmapped seeds are
    # cheaper here (activations smoke, cold cache: 52 s vs 78 s CPU), unlike the full runs.
    config.experiment.vmap_seeds = True
    config.experiment.features = 8
    config.experiment.kernel_sizes = (3, 7)
    config.experiment.strides = (1, 2)
    config.experiment.paddings = ("SAME",)
    config.experiment.depths = (2,)
    config.experiment.depth_kernels = (3,)
    return config
