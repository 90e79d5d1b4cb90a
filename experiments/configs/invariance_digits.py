"""Translation invariance on the embedded digits (8x8 on a 16x16 canvas): every variant, 3 seeds.

    python -m experiments.translation_invariance \
        --config=experiments/configs/invariance_digits.py --workdir=runs/invariance_digits
"""

import ml_collections

from experiments.configs import base

VARIANTS = (
    "max",
    "avg",
    "max_blur",
    "strided",
    "strided_blur",
    "none",
    "gap",
    "max_blur_gap",
    "valid",
    "circular",
    "augment",
)


def experiment_config() -> ml_collections.ConfigDict:
    """Measurement settings shared by the invariance configs (under config.experiment)."""
    exp = ml_collections.ConfigDict()
    exp.variants = VARIANTS  # every variant of experiments.translation_invariance
    exp.seeds = (0, 1, 2)
    exp.vmap_seeds = True  # consecutive seeds train as one vmapped run (one compile per variant)
    exp.mode = "zero"  # content shifts on a zero canvas: the digit moves, the frame stays
    exp.max_shift = 4  # shifts in [-4, 4]^2: the digit stays inside the 16x16 canvas
    exp.num_images = 1000  # test images shifted to every grid position (all of digits' test)
    exp.batch_size = 128
    exp.eq_max_shift = 4
    exp.eq_num_images = 64  # per-layer equivariance keeps every layer's map: fewer images
    exp.eq_batch_size = 16
    exp.augment_translate = 4.0  # the 'augment' variant: random shifts in [-4, 4] pixels
    exp.blur_size = 3  # binomial filter [1, 2, 1] (Zhang 2019's 'Tri')
    exp.two_dots_distances = (2, 3, 4, 6, 8, 12, 16, 24)
    exp.two_dots_levels = 5
    exp.two_dots_show = 6
    return exp


def get_config() -> ml_collections.ConfigDict:
    config = base.get_config()
    config.model.preset = "mnist_cnn"
    config.train.num_epochs = 15
    config.train.tensorboard = False
    config.train.quiet = True
    config.train.keep_checkpoints = 1
    config.experiment = experiment_config()
    return config
