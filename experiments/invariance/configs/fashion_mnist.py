"""Translation invariance on Fashion-MNIST (`make data`): results/invariance_fashion_mnist.

    python -m experiments.invariance.main \
        --config=experiments/invariance/configs/fashion_mnist.py \
        --workdir=runs/invariance_fashion_mnist

The MNIST study's settings (invariance_mnist.py) on Fashion-MNIST, whose objects fill most of
the 28x28 canvas (a 3-px shift moves some of them off it, as Zhang's crops lose content),
without the red-green test (dataset-independent, in the MNIST record): 10,000 training
images, every Zhang variant also at 3x budget (the first record, 2026-12-02, had 1,000 images
and only max vs Tri-3 at 3x).
"""

from cnn_jax.experiments.invariance.configs import mnist


def get_config():
    config = mnist.get_config()
    config.dataset.name = "fashion_mnist"
    exp = config.experiment
    exp.protocols = tuple(p for p in exp.protocols if p != "kayhan")
    exp.zhang_variants = ("max", "blur3", "strided", "strided_blur3")  # as its record ran
    exp.record_as = "invariance_fashion_mnist"
    return config
