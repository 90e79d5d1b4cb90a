"""Conv hyperparameter study of record on the embedded digits (16x16 canvas).

Plain ReLU nets of 8-filter convs with batch norm (no pooling), AdamW lr 3e-2, 1x = 4 epochs
and 3x = 12 epochs (train.budget_factor; the stride GAP nets also 30x = 120 epochs), 5 seeds
vmapped. Parts (`experiments.anatomy.variants`): stride with three heads and at a matched
receptive field, 3x3 stacks vs one 5x5 / 7x7 at matched params / FLOPs, depth x padding, and
border digits. Published to results/anatomy_hyperparameters_digits.
"""

import ml_collections

from cnn_jax.experiments.configs import base


def get_config():
    config = base.get_config()
    config.dataset.name = "digits"
    config.dataset.options = {"canvas_size": 16}
    config.optim.learning_rate = 3e-2  # with batch norm; 1e-2 without BN left GAP nets at 48%
    config.train.batch_size = 64
    config.train.num_epochs = 4  # the 1x budget
    config.train.eval_every_epochs = 1_000  # validation once, at the end
    config.train.log_every_steps = 20
    config.train.checkpoint_every_steps = 1_000_000  # only the final checkpoint
    config.train.keep_checkpoints = 1
    config.train.tensorboard = False
    config.train.quiet = True

    exp = config.experiment = ml_collections.ConfigDict()
    exp.record_as = "anatomy_hyperparameters_digits"
    exp.parts = ("stride", "kernels", "depth", "border")
    exp.seeds = (0, 1, 2, 3, 4)  # 5: the calibrated regime of cnn_jax.stats
    exp.vmap_seeds = True
    exp.budgets = {"1x": 1.0, "3x": 3.0, "30x": 30.0}
    # Every variant at 1x and 3x; the stride-at-a-matched-field pair (and stride1_gap) also at 30x
    # (120 epochs), where both fit their training set (>= 99.4% train accuracy in a timing run;
    # at 3x the dilated stride-1 net was at 82% test, still learning).
    exp.budget_variants = {"30x": ("stride1_gap", "stride1_gap_dilated2", "stride2_gap")}
    exp.width = 8  # filters per conv layer (the matched variants change it)
    exp.head = "global_avg"  # the same classifier whatever the map size
    exp.batch_norm = True  # GAP nets without BN train too slowly at these budgets
    # match_field: stride 1 dilated (1, 2) to stride 2's receptive field (7 px), the same GAP net
    exp.stride = {"strides": (1, 2), "depth": 2, "kernel": 3, "match_field": True}
    exp.kernels = {"fields": (5, 7), "match": ("params", "flops")}
    exp.depth = {
        "depths": (1, 3, 7),
        "same_only_depths": (),
        "large_kernel": 7,
        "large_depths": (1, 2),
    }
    exp.border = {"paddings": ("SAME", "VALID", "CIRCULAR"), "depth": 4}
    return config
