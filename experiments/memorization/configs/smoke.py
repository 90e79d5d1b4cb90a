"""Smoke run of the memorization study: the MNIST design on the embedded digits (28x28 canvas,
MNIST's shape), 256 training images, 2 seeds, a 6-epoch cap, 3 data x 2 regularizers.

For CI: checks the pipeline, not a measurement (see mnist.py). Not published.
"""

from cnn_jax.experiments.memorization.configs import mnist


def get_config():
    config = mnist.get_config()
    config.dataset.name = "digits"
    config.dataset.options = {"canvas_size": 28, "train_subset": 256, "subset_seed": 0}
    config.train.batch_size = 32
    config.train.num_epochs = 6
    config.optim.learning_rate = 0.05
    exp = config.experiment
    exp.record_as = ""
    exp.seeds = (0, 1)
    exp.regularizers = {k: v for k, v in mnist.regularizers().items() if k in ("none", "dropout")}
    exp.fit_threshold = 0.5
    return config
