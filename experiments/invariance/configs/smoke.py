"""Smoke run of the translation-invariance study: every protocol, few variants, 2 seeds.

Digits (8x8 on 16x16; the depth nets on 32x32), 2 epochs, 2 vmapped seeds, 100 test images;
red-green with 200 training images; 6 variants (6 compiles: most of the time). Measured: 114 s
wall on the quiet 2-core machine (load 1) with the `unrolled` seed strategy (cnn_jax.seed_strategy;
over 5 min with lax.map). For CI (tests/experiments/invariance/test_main.py)
and the notebook: the numbers are a sanity check, not a measurement (invariance_mnist.py and
invariance_fashion_mnist.py are the studies of record).
"""

from cnn_jax.experiments.invariance.configs import digits


def get_config():
    config = digits.get_config()
    config.train.num_epochs = 2
    exp = config.experiment
    exp.protocols = ("zhang", "azulay", "depth", "kayhan")
    exp.zhang_variants = ("max", "blur3")
    exp.azulay_variants = ("max_noaug", "max")
    exp.depth_variants = ("d0", "d2_max")
    exp.kayhan_variants = ("kv_same_zero",)
    exp.seeds = (0, 1)
    exp.num_images = 100
    exp.distances = (0, 1, 2, 4, 8, 16)
    exp.two_dots_variants = ("d2_max",)
    exp.two_dots_distances = (1, 2, 4, 8)
    exp.kayhan_dataset_options = {"num_train": 200, "num_validation": 100, "num_test": 100}
    exp.kayhan_epochs = 3
    return config
