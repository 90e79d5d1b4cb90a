r"""Regularizer study of record on MNIST: dropout, decoupled weight decay,
augmentation and all three together against the tuned baseline over training-set sizes from
1,000 to the whole training split; L1, L2 and decoupled decay under both SGD with momentum and
AdamW; pooling against strided convs at matched parameters and FLOPs; early stopping against
the same maximum without it; Srivastava et al. 2014-style runs (dropout with L2 / max-norm).

    nohup python -m experiments.regularization.main \
        --config=experiments/regularization/configs/mnist.py \
        --workdir=runs/regularization_mnist > runs/regularization_mnist.log 2>&1 &

Design: the Fashion-MNIST record's (regularization_fashion_mnist.py: tuning at n = 1,000 on
validation, 3 strengths x 3 rates per regularizer, `all` over 2 joint factors x 3 rates, the
optimizer x penalty controls at each optimizer's chosen rate), with the size curve
n in {1000, 4000, 16000, all}: 2 subset draws x 2 seeds (vmapped) below `all`, 2 seeds on the
whole split (59,000 images; there is nothing to draw), converged (early stopping on validation,
patience 4, under 3x the budget); epochs scale as 1000 / n (the same number of steps at every
n, at least 3). Fixed 1x / 3x budgets (10 / 30 epochs) at n = 1,000 on draw 0.
Literature: SGD + momentum on all 59k training images, 1 epoch at batch 128 (fixed budget),
1 seed: L2 (5e-4), dropout 0.5 + L2 5e-4, dropout 0.5 + max-norm 3.
(Earlier records: 2026-12-01, one draw x one seed at n = 1,000; 2026-12-02, n <= 16,000 and
AdamW decay tuned over the momentum grid, 100x too weak for AdamW.) Wall time: provenance.json.
"""

import ml_collections

from cnn_jax.experiments.regularization.configs import fashion_mnist


def get_config():
    config = fashion_mnist.get_config()
    config.dataset.name = "mnist"
    exp = config.experiment
    exp.sizes = (1000, 4000, 16000, "all")
    exp.pair_strength = ml_collections.ConfigDict({"l2": 5e-4, "max_norm": 3.0})
    exp.literature = ml_collections.ConfigDict(
        {
            "variants": (("l2", 5e-4), ("dropout_l2", 0.5), ("dropout_max_norm", 0.5)),
            "size": "all",
            "seeds": (0,),
            "optimizer": "momentum",
            "mode": "1x",  # a fixed budget: 1 epoch of 59k images at batch 128
            "epochs": 1,
            "batch_size": 128,
        }
    )
    exp.record_as = "regularization_mnist"
    return config
