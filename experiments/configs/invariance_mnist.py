"""Translation invariance on full MNIST (needs `make data`): every variant, 3 seeds.

    python -m experiments.translation_invariance \
        --config=experiments/configs/invariance_mnist.py --workdir=runs/invariance_mnist

MNIST digits sit in a 20x20 box centred in 28x28, so shifts up to 4 pixels keep them whole.
Per-layer maps are larger than on digits, so fewer images go through the layer analysis.
"""

from experiments.configs import invariance_digits, mnist


def get_config():
    config = mnist.get_config()
    config.train.tensorboard = False
    config.train.quiet = True
    config.train.keep_checkpoints = 1
    config.experiment = invariance_digits.experiment_config()
    config.experiment.num_images = 2000  # of the 10k test images, each at 81 shifts
    config.experiment.eq_num_images = 32
    config.experiment.eq_batch_size = 8
    return config
