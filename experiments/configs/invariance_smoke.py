"""Smoke run of the translation-invariance experiment: about 45 s on 2 lightly loaded CPU cores.

Three variants (max pooling, MaxBlurPool, global average pooling) x 2 seeds (one vmapped
run per variant) on the embedded digits, few epochs, fewer shifts and images; mostly XLA
compile time (measured 45 s wall with an empty compile cache). For CI and the notebook;
the numbers are a sanity check, not a measurement (see invariance_digits.py for that).
"""

from experiments.configs import invariance_digits


def get_config():
    config = invariance_digits.get_config()
    config.train.num_epochs = 3
    exp = config.experiment
    exp.variants = ("max", "max_blur", "gap")
    exp.seeds = (0, 1)  # consecutive: each variant trains both seeds as one vmapped run
    exp.max_shift = 2
    exp.num_images = 100
    exp.eq_max_shift = 1
    exp.eq_num_images = 8
    exp.two_dots_distances = (2, 3, 4, 8)
    exp.two_dots_levels = 4
    exp.two_dots_show = 4
    return config
