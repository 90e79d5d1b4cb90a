"""Smoke run of the learned vs built-in invariance protocol: digits, max and GAP nets trained
with shifts up to 0 or 2 px, 2 seeds, 2 epochs, 100 test images, test shifts 0..6 px. A sanity
check of the path (fashion_mnist_learned.py is the study), for CI."""

from cnn_jax.experiments.invariance.configs import digits


def get_config():
    config = digits.get_config()
    config.train.num_epochs = 2
    exp = config.experiment
    exp.protocols = ("learned",)
    exp.learned_variants = digits.learned_variants(("max", "gap"), (0, 2))
    exp.learned_distances = (0, 1, 2, 4, 6)
    exp.learned_small, exp.learned_large = 1, 4
    exp.seeds = (0, 1)
    exp.num_images = 100
    return config
