"""Memorization study of record on Fashion-MNIST: the MNIST design (configs/mnist.py) on
Fashion-MNIST's 2,000-image subset. Needs `make data`. Published to
results/memorization_fashion_mnist.
"""

from cnn_jax.experiments.memorization.configs import mnist


def get_config():
    config = mnist.get_config()
    config.dataset.name = "fashion_mnist"
    config.experiment.record_as = "memorization_fashion_mnist"
    return config
