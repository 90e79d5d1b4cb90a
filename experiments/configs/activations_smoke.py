"""Smoke run of the activation study: ReLU / sigmoid / identity and the collapse variants,
2 seeds, 2 epochs of digits, one optimizer.

For CI and the notebook (under 2 minutes on 2 CPU cores); a sanity check of the pipeline,
not a measurement (see activations_full.py).
"""

from experiments.configs import activations_full


def get_config():
    config = activations_full.get_config()
    config.train.num_epochs = 2
    config.train.eval_every_epochs = 2
    config.experiment.seeds = (0, 1)
    # One compile per variant: for 1-2 epochs compiling dominates, so vmapped seeds are
    # cheaper here (activations smoke, cold cache: 52 s vs 78 s CPU), unlike the full runs.
    config.experiment.vmap_seeds = True
    config.experiment.target_accuracy = 0.5
    config.experiment.activations = ("relu", "sigmoid", "identity")
    config.experiment.optimizers = {"adamw": {}}
    return config
