"""Default job: flax-MNIST-style CNN on the embedded 8x8 digits placed on a 16x16 canvas."""

from cnn_jax.experiments.configs import base


def get_config():
    return base.get_config()
