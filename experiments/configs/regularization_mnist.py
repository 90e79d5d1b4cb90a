r"""Regularizer study of record on MNIST (issue 13), cut to what the shared machine could
finish: L2 against decoupled weight decay under SGD with momentum (where they coincide up to
scale), early stopping against the same maximum without it, and Srivastava et al. 2014-style
runs (dropout with L2 / max-norm) on all 55k training images.

    nohup python -m experiments.regularization \
        --config=experiments/configs/regularization_mnist.py \
        --workdir=runs/regularization_mnist > runs/regularization_mnist.log 2>&1 &

Design: tuning at n = 1,000 on validation (seed 0, draw 0): the AdamW and the momentum
baselines over 3 rates each; momentum L2 and decay over 3 strengths each at the chosen momentum
rate (the decay grid is the L2 grid x 2 / (1 - 0.9), the scale at which the two coincide in
steady state). One draw x one seed: intervals cover test-image sampling only. No size curve and
no dropout tuning on MNIST in this record (they did not fit; Fashion-MNIST has the size curve).
Literature: SGD + momentum on all 55k images, 1 epoch at batch 128 (430 steps, fixed budget),
1 seed: L2 (5e-4), dropout 0.5 + L2 5e-4, dropout 0.5 + max-norm 3.
"""

import ml_collections

from . import regularization_base


def get_config():
    config = regularization_base.get_config()
    config.dataset.name = "mnist"
    config.early_stopping.patience = 4
    exp = config.experiment
    exp.variants = ("baseline",)
    exp.tune = ()
    exp.grids.l2 = (1e-4, 5e-4, 2.5e-3)
    exp.grids.weight_decay = (2e-3, 1e-2, 5e-2)  # = 2 * l2 / (1 - momentum)
    exp.controls = ("momentum.l2", "momentum.weight_decay")
    exp.controls_tune_lr = False
    exp.control_pairs = (("momentum.l2", "momentum.weight_decay"),)
    exp.sizes = (1000,)
    exp.draws, exp.budget_draws, exp.seeds = (0,), (0,), (0,)
    exp.pair_strength = ml_collections.ConfigDict({"l2": 5e-4, "max_norm": 3.0})
    exp.literature = ml_collections.ConfigDict(
        {
            "variants": (("l2", 5e-4), ("dropout_l2", 0.5), ("dropout_max_norm", 0.5)),
            "size": "all",
            "seeds": (0,),
            "optimizer": "momentum",
            "mode": "1x",  # a fixed budget: 1 epoch of 55k images at batch 128
            "epochs": 1,
            "batch_size": 128,
        }
    )
    exp.budget_epochs = 10
    exp.record_as = "regularization_mnist"
    return config
