"""A seconds-long run for tests and CI: a tiny CNN, few epochs, digits on a 16x16 canvas."""

from cnn_jax.experiments.configs import base


def get_config():
    config = base.get_config()
    config.model.preset = "lenet5"
    config.model.activation = "relu"
    config.train.num_epochs = 2
    config.train.batch_size = 64
    config.train.log_every_steps = 5
    config.train.tensorboard = False
    config.train.quiet = True
    return config
