r"""Regularizer study of record on MNIST (issue 13): dropout, decoupled weight decay and
augmentation against the tuned baseline over training-set sizes up to 16,000, L2 against
decoupled weight decay under SGD with momentum (where they coincide up to scale), early
stopping against the same maximum without it, and Srivastava et al. 2014-style runs (dropout
with L2 / max-norm) on all 55k training images.

    nohup python -m experiments.regularization \
        --config=experiments/configs/regularization_mnist.py \
        --workdir=runs/regularization_mnist > runs/regularization_mnist.log 2>&1 &

Design: tuning at n = 1,000 on validation (seed 0, draw 0): the AdamW baseline over 3 rates,
dropout, weight decay and augmentation over 3 strengths x 3 rates each; the momentum baseline
over 3 rates, momentum L2 and decay over 3 strengths each at its chosen rate (the decay grid
is the L2 grid x 2 / (1 - 0.9), the scale at which the two coincide in steady state). Size
curve: n in {1000, 4000, 16000}, 2 subset draws x 2 seeds (vmapped), converged (early stopping
on validation, patience 4, under 3x the budget); epochs scale as 1000 / n (the same number of
steps at every n, at least 3). Fixed 1x / 3x budgets (10 / 30 epochs) at n = 1,000 on draw 0.
(The first MNIST record, 2026-12-01, had one draw x one seed at n = 1,000 and no size curve.)
Literature: SGD + momentum on all 55k images, 1 epoch at batch 128 (430 steps, fixed budget),
1 seed: L2 (5e-4), dropout 0.5 + L2 5e-4, dropout 0.5 + max-norm 3. Wall time: provenance.json.
"""

import ml_collections

from . import regularization_base


def get_config():
    config = regularization_base.get_config()
    config.dataset.name = "mnist"
    config.early_stopping.patience = 4
    exp = config.experiment
    exp.variants = ("baseline", "dropout", "weight_decay", "augment")
    exp.tune = ("dropout", "weight_decay", "augment")
    exp.grids.l2 = (1e-4, 5e-4, 2.5e-3)
    exp.grids.weight_decay = (2e-3, 1e-2, 5e-2)  # = 2 * l2 / (1 - momentum)
    exp.controls = ("momentum.l2", "momentum.weight_decay")
    exp.controls_tune_lr = False
    exp.control_pairs = (("momentum.l2", "momentum.weight_decay"),)
    exp.sizes = (1000, 4000, 16000)
    exp.draws, exp.budget_draws, exp.seeds = (0, 1), (0,), (0, 1)
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
