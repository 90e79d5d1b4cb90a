r"""Regularizer study of record on Fashion-MNIST (issue 13): dropout against the tuned baseline,
and pooling against strided convs at matched parameters and at matched FLOPs.

    nohup python -m experiments.regularization \
        --config=experiments/configs/regularization_fashion_mnist.py \
        --workdir=runs/regularization_fashion_mnist > runs/regularization_fashion_mnist.log 2>&1 &

Design (2 CPU cores; the first record, 2026-12-01, ran at load 13-17 and held only baseline and
dropout; this one adds weight decay, augmentation, L1, `all` and n = 4,000): tuning at
n = 1,000 on validation (seed 0, draw 0): baseline over 3 AdamW rates, each regularizer over
3 strengths x 3 rates, `all` (dropout + weight decay + augmentation at their chosen strengths)
over 2 joint factors; pooling and the widened strided net (matched FLOPs) at the baseline's
chosen rate. Size curve: n in {250, 1000, 4000}, 3 subset draws x 1 seed, converged (early
stopping on validation, patience 4, under 3x the budget); fixed 1x / 3x budgets (10 / 30
epochs) at n = 1,000 on draw 0. Epochs scale as 1000 / n (the same number of steps at every
n; at least 3). Runs already trained by the first record are identity-checked cache hits.
Wall time: results/ provenance.json.
"""

from . import regularization_base


def get_config():
    config = regularization_base.get_config()
    config.early_stopping.patience = 4
    exp = config.experiment
    exp.variants = ("baseline", "dropout", "weight_decay", "augment", "l1", "all")
    exp.tune = ("dropout", "weight_decay", "augment", "l1")
    exp.all_components = ("dropout", "weight_decay", "augment")
    exp.controls = ("adamw.pooling", "adamw.strided_wide")
    exp.controls_tune_lr = False
    exp.control_pairs = (("adamw.pooling", "adamw.strided_wide"),)
    exp.sizes = (250, 1000, 4000)
    exp.draws, exp.budget_draws, exp.seeds = (0, 1, 2), (0,), (0,)
    exp.budget_epochs = 10
    exp.record_as = "regularization_fashion_mnist"
    return config
