r"""Regularizer study of record on Fashion-MNIST: dropout, decoupled weight decay,
augmentation and all three together against the tuned baseline over training-set sizes up to
16,000; L1, L2 and decoupled decay under both SGD with momentum and AdamW; pooling against
strided convs at matched parameters and at matched FLOPs; early stopping against the same
maximum without it.

    nohup python -m experiments.regularization.main \
        --config=experiments/regularization/configs/fashion_mnist.py \
        --workdir=runs/regularization_fashion_mnist > runs/regularization_fashion_mnist.log 2>&1 &

Design (the MNIST record's, plus the optimizer x penalty controls): tuning at n = 1,000 on
validation (seed 0, draw 0): the AdamW baseline over 3 rates; dropout, weight decay and
augmentation over 3 strengths x 3 rates each; `all` (the three at their chosen strengths) over
2 joint factors x 3 rates. The momentum baseline over 3 rates; L1, L2 and decay under each
optimizer over 3 strengths at that optimizer's chosen rate (AdamW decay: experiment.grids,
momentum decay: the L2 grid x 2 / (1 - 0.9), where the two coincide in steady state);
pooling and the widened strided net (matched FLOPs) at the baseline's rate. Size curve:
n in {1000, 4000, 16000}, 2 subset draws x 2 seeds (vmapped), converged (early stopping on
validation, patience 4, under 3x the budget); epochs scale as 1000 / n (the same number of
steps at every n, at least 3). Fixed 1x / 3x budgets (10 / 30 epochs) at n = 1,000 on draw 0.
(Earlier records: 2026-12-01, baseline and dropout only; 2026-12-02, n <= 4,000 with 3 draws x
1 seed.) Wall time: provenance.json.
"""

from cnn_jax.experiments.regularization.configs import base


def get_config():
    config = base.get_config()
    config.early_stopping.patience = 4
    exp = config.experiment
    exp.variants = ("baseline", "dropout", "weight_decay", "augment", "all")
    exp.tune = ("dropout", "weight_decay", "augment")
    exp.all_components = ("dropout", "weight_decay", "augment")
    exp.grids.l2 = (1e-4, 5e-4, 2.5e-3)
    exp.controls = (
        "adamw.l1", "adamw.l2", "momentum.l1", "momentum.l2", "momentum.weight_decay",
        "adamw.pooling", "adamw.strided_wide",
    )  # fmt: skip
    exp.controls_tune_lr = False
    exp.control_pairs = (
        ("momentum.l2", "momentum.weight_decay"),
        ("adamw.l2", "weight_decay"),
        ("adamw.pooling", "adamw.strided_wide"),
    )
    exp.sizes = (1000, 4000, 16000)
    exp.draws, exp.budget_draws, exp.seeds = (0, 1), (0,), (0, 1)
    exp.budget_epochs = 10
    exp.record_as = "regularization_fashion_mnist"
    return config
