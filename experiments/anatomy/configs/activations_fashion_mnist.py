"""Activation study of record on Fashion-MNIST (28x28, 5,000 training images), 5 seeds, 1x/3x.

The digits study (activations_full) reaches 25% training error within a few dozen steps; Fashion-
MNIST is harder (closer to Krizhevsky 2012's CIFAR-10 in how long a 4-layer CNN takes to get
there) and its 10,000 test images give the accuracy comparisons more power. Same 4-layer CNN,
SGD with momentum at a constant learning rate chosen per activation on validation, linear
collapse nets; 1x = 4 epochs of 5,000 images (312 steps). Targets: 25% (Krizhevsky) and 15%
training error (Fashion-MNIST's training error stays above 5% at these budgets). Needs
`make data`. Published to results/anatomy_activations_fashion_mnist.
"""

from cnn_jax.experiments.anatomy.configs import activations_full


def get_config():
    config = activations_full.get_config()
    config.dataset.name = "fashion_mnist"
    config.dataset.options = {"train_subset": 5000}
    config.train.log_every_steps = 4  # 78 steps per epoch
    exp = config.experiment
    exp.record_as = "anatomy_activations_fashion_mnist"
    exp.target_accuracies = (0.75, 0.85)
    return config
