"""Conv hyperparameter study on the embedded digits (16x16 canvas), 3 seeds.

One factor at a time around a base (3x3 kernels, stride 1, SAME, 2 layers of 16 filters),
plus depth 1..4 x kernel {3, 7} x padding {VALID, SAME}. About 16 feasible settings x 3
seeds; roughly 10 minutes on 2 CPU cores.
"""

import ml_collections

from experiments.configs import base


def get_config():
    config = base.get_config()
    config.dataset.name = "digits"
    config.dataset.options = {"canvas_size": 16}
    config.model.head = "flatten"
    config.model.head_hidden = ()  # flatten -> dense(classes): the conv stack does the work
    config.train.batch_size = 64
    config.train.num_epochs = 8
    config.train.eval_every_epochs = 8  # validation once, at the end
    config.train.log_every_steps = 10
    config.train.checkpoint_every_steps = 1_000_000  # only the final checkpoint
    config.train.keep_checkpoints = 1
    config.train.tensorboard = False
    config.train.quiet = True

    exp = config.experiment = ml_collections.ConfigDict()
    exp.seeds = (0, 1, 2)
    # True trains a variant's seeds as one vmapped program (one compile), but XLA:CPU runs
    # vmapped convolutions (grouped per seed) far slower than K separate runs here.
    exp.vmap_seeds = False
    exp.features = 16
    exp.activation = "relu"
    exp.base = {"kernel_size": 3, "stride": 1, "padding": "SAME", "depth": 2}
    exp.kernel_sizes = (1, 3, 5, 7)
    exp.strides = (1, 2, 3)
    exp.paddings = ("VALID", "SAME")
    exp.depths = (1, 2, 3, 4)
    exp.depth_kernels = (3, 7)
    return config
