"""The CIFAR-10 study (cifar10.py) at smoke size: checks a prepared data dir end to end.

    python -m experiments.invariance.main --config=invariance/cifar10_smoke \
        --workdir=runs/invariance_cifar10_smoke --config.dataset.data_dir=DIR

The cifar10 config's model, augmentation and shifts on 16 training images (4 held out),
max vs Tri-3 (Zhang 2019) with the Azulay & Weiss diagonal shifts, 2 vmapped seeds, 1 epoch
at batch 8, the first 8 test images: a sanity check of the path (data dir, 32x32x3 model,
shifted evaluation, claims, tables), not a measurement. CI runs it on a generated CIFAR-shaped
copy (tests/experiments/invariance/test_cifar10.py).
"""

from cnn_jax.experiments.invariance.configs import cifar10


def get_config():
    config = cifar10.get_config()
    config.dataset.options = {"validation_size": 4, "train_subset": 16}
    config.train.num_epochs = 1
    config.train.batch_size = 8
    exp = config.experiment
    exp.protocols = ("zhang", "azulay")
    exp.zhang_variants = ("max", "blur3")
    exp.azulay_variants = ("max",)
    exp.seeds = (0, 1)
    exp.num_images = 8
    exp.batch_size = 8
    return config
