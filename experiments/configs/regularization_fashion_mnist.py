r"""Regularizer study of record on Fashion-MNIST (issue 13): dropout, augmentation and both
together against the tuned baseline, and pooling against strided convs at matched parameters
and at matched FLOPs.

    nohup python -m experiments.regularization \
        --config=experiments/configs/regularization_fashion_mnist.py \
        --workdir=runs/regularization_fashion_mnist > runs/regularization_fashion_mnist.log 2>&1 &

Design (sized for 2 shared CPU cores): tuning at n = 1,000 on validation (seed 0, draw 0):
baseline over 3 AdamW rates, dropout and augmentation over 3 strengths x 3 rates, `all`
(dropout + augmentation) over joint factors {0.5, 1} x 3 rates; pooling and the widened
strided net (matched FLOPs) at the baseline's chosen rate. The size curve: n in {250, 1000,
4000} (a reduced grid; no 16k / full), 2 subset draws x 2 seeds, converged (early stopping,
patience 4, under 3x the budget); fixed 1x / 3x budgets at n = 1,000 on draw 0. Epochs scale
as 1000 / n (the same number of steps at every n). Wall time: see results/ provenance.json.
"""

from . import regularization_base


def get_config():
    config = regularization_base.get_config()
    config.early_stopping.patience = 4
    exp = config.experiment
    exp.variants = ("baseline", "dropout", "augment", "all")
    exp.tune = ("dropout", "augment")
    exp.all_components = ("dropout", "augment")
    exp.all_factors = (0.5, 1.0)
    exp.controls = ("adamw.pooling", "adamw.strided_wide")
    exp.controls_tune_lr = False
    exp.control_pairs = (("adamw.pooling", "adamw.strided_wide"),)
    exp.budget_epochs = 10
    exp.record_as = "regularization_fashion_mnist"
    return config
