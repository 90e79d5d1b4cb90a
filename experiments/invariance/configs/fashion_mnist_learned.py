"""Learned vs built-in invariance on Fashion-MNIST (`make data`), where shifted error leaves
headroom: results/invariance_fashion_mnist_learned.

    python -m experiments.invariance.main --config=invariance/fashion_mnist_learned \
        --workdir=runs/invariance_fashion_mnist_learned

The seed's "translation invariance only over small distances", measured: the Zhang nets
(max pooling, MaxBlurPool Tri-3, a GAP head, stride-2 convs; each padded as its reference
code, variants.GEOMETRY) trained with random shifts up to r in {0, 1, 2, 3, 6} px, accuracy
and consistency with the unshifted top-1 at horizontal test shifts 0..12 px on the whole test
split, 5 seeds; the Fashion-MNIST study's training set and budget (fashion_mnist.py). The
curves show where built-in invariance (r = 0) ends and learned invariance takes over,
including shifts beyond the trained range; the claims are judged by the engine.
"""

from cnn_jax.experiments.invariance.configs import fashion_mnist


def get_config():
    config = fashion_mnist.get_config()
    exp = config.experiment
    exp.protocols = ("learned",)
    exp.record_as = "invariance_fashion_mnist_learned"
    return config
