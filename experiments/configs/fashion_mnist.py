"""The MNIST CNN on Fashion-MNIST (Debian's `dataset-fashion-mnist`; see `make data`)."""

from cnn_jax.experiments.configs import mnist


def get_config():
    config = mnist.get_config()
    config.dataset.name = "fashion_mnist"
    config.train.num_epochs = 10
    return config
