"""Smoke run of the activation study: ReLU / tanh at one learning rate, the collapse
variants, 2 seeds, 1 epoch of digits, the 1x budget only (budget verdicts: unit tests).

For CI and the notebook (under 2 minutes on 2 CPU cores); checks the pipeline, not a
measurement (see activations_full.py). Not published.
"""

from cnn_jax.experiments.anatomy.configs import activations_full


def get_config():
    config = activations_full.get_config()
    config.train.num_epochs = 1
    exp = config.experiment
    exp.record_as = ""
    exp.seeds = (0, 1)
    exp.activations = ("relu", "tanh")
    exp.budgets = {"1x": 1.0}
    exp.learning_rates = (0.1,)
    exp.target_accuracies = (0.5, 0.75)
    exp.krizhevsky_target = 0.5
    return config
