"""Translation invariance on CIFAR-10, for users who have it prepared in a TFDS data dir.

    tfds build cifar10 --file_format=array_record --data_dir=DIR   # once, where TFDS can download
    python -m experiments.invariance.main \
        --config=experiments/invariance/configs/cifar10.py --workdir=runs/invariance_cifar10 \
        --config.dataset.data_dir=DIR

Zhang 2019's own small-image setting (the paper also reports CIFAR-10): natural images, so a
shift brings the zero-filled border in, as Zhang's crops bring in new content. The Zhang,
Azulay and budget protocols with the MNIST CNN's layout on 32x32x3 (conv32-pool-conv64-pool-
dense256); the depth and red-green protocols are left to the MNIST study. Every test image is
scored (`experiment.num_images` unset). Not run in this repository (no CIFAR-10 here): its
smoke-size copy (cifar10_smoke.py) is tested on a generated CIFAR-shaped data dir; the README
estimates 2-3 days on 2 CPU cores.
"""

from cnn_jax.experiments.configs import base
from cnn_jax.experiments.invariance.configs import digits


def get_config():
    config = base.get_config()
    config.dataset.name = "cifar10"
    config.dataset.options = {"validation_size": 5000}
    config.model.preset = "mnist_cnn"
    config.train.batch_size = 128
    config.train.num_epochs = 30
    config.train.tensorboard = False
    config.train.quiet = True
    config.train.keep_checkpoints = 1
    config.train.eval_train_at_end = False
    exp = config.experiment = digits.experiment_config()
    exp.protocols = ("zhang", "azulay", "budget")
    exp.augment_shift = 4  # pad-4-and-crop, the standard CIFAR-10 augmentation
    exp.max_shift = 4
    return config
