"""The MNIST CNN on full MNIST (55k train / 5k validation / 10k test); needs `make data`."""

from cnn_jax.experiments.configs import base


def get_config():
    config = base.get_config()
    config.dataset.name = "mnist"
    config.dataset.options = {}
    config.train.batch_size = 128
    config.train.num_epochs = 3
    config.train.log_every_steps = 50
    config.optim.learning_rate = 2e-3
    config.optim.warmup_epochs = 0.2
    return config
