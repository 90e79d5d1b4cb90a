"""Memorization study of record on MNIST: Zhang et al. 2017's random labels and shuffled pixels.

A half-width MNIST CNN (conv16-pool-conv32-pool-dense128, about 0.2M parameters, far more than
1,000 random labels need: Zhang et al. 2017 fit 50,000 with 1.2-1.7M) with SGD + momentum 0.9
at a constant rate, as Zhang et al. 2017 trained (their rate decayed 0.95 per epoch; constant
here so that time to fit is not set by the schedule). 1,000 training images (one subset draw),
4 seeds (vmapped), an epoch cap of 60. Conditions: true and random labels x no regularizer,
weight decay (L2 penalty 5e-4), dropout (0.5 in the head, 0.25 after each conv block), random
crops (padding 2; Zhang's augmentation was random cropping); shuffled pixels without one.
Cost: the smoke run's steady step (same model, 2 seeds x 32 images) took 16-18 ms on the
shared 2-core CPU (load about 5); a record step (4 seeds x 50 images) is about 3x that, so 9
conditions x 60 epochs x 20 steps is about 10 min of training, 12-15 min with compiles.
Fit: 99% training accuracy (`experiment.fit_threshold`). Needs `make data`. Published to
results/memorization_mnist.
"""

import ml_collections

from cnn_jax.augment import default_augment_config
from cnn_jax.experiments.configs import base


def regularizers() -> ml_collections.ConfigDict:
    """Each explicit regularizer of Zhang et al. 2017, Table 1: (dotted config path, value)."""
    return ml_collections.ConfigDict({
        "none": (),
        "weight_decay": (("optim.l2", 5e-4),),
        "dropout": (("model.head_dropout", 0.5), ("model.conv_dropout", 0.25)),
        "augment": (("augment.crop_padding", 2),),
    })  # fmt: skip


def get_config() -> ml_collections.ConfigDict:
    config = base.get_config()
    config.dataset.name = "mnist"
    config.dataset.options = ml_collections.ConfigDict(
        {"validation_size": 5000, "train_subset": 1000, "subset_seed": 0}
    )
    model = config.model
    model.preset = "mnist_cnn"
    model.blocks = [{"features": 16, "kernel_size": 3, "pool": "max"},
                    {"features": 32, "kernel_size": 3, "pool": "max"}]  # fmt: skip
    model.head_hidden = [128]
    model.batch_norm = False
    model.conv_dropout = model.head_dropout = 0.0
    optim = config.optim
    optim.name, optim.momentum, optim.schedule = "momentum", 0.9, "constant"
    optim.learning_rate = 0.01
    optim.weight_decay = optim.l1 = optim.l2 = 0.0
    config.augment = default_augment_config()
    train = config.train
    train.batch_size = 50  # 20 steps per epoch on 1,000 images
    train.num_epochs = 60  # the cap: a run that has not fit by then is censored there
    train.eval_every_epochs = 1_000  # validation once, at the end: no early stopping here
    train.checkpoint_every_steps = 10**6  # only the final checkpoint
    train.keep_checkpoints = 1
    train.tensorboard = False
    train.quiet = True

    exp = config.experiment = ml_collections.ConfigDict()
    exp.record_as = "memorization_mnist"
    exp.data = ("true_labels", "random_labels", "shuffled_pixels")
    exp.regularizers = regularizers()
    exp.shuffled_with = ("none",)  # Zhang et al. 2017 ran shuffled pixels without regularizers
    exp.corrupt_seed = 0
    exp.seeds = (0, 1, 2, 3)
    exp.vmap_seeds = True
    # Zhang et al. 2017 report 99.3-100% training accuracy (Table 1); a windowed training-mode
    # mean of 100% is out of reach with dropout noise, while 99% leaves at most 1 image in 100
    # unfit: the labels are memorized, not learnt from a rule (random labels have none).
    exp.fit_threshold = 0.99
    # "does not prevent fitting": eval-mode training accuracy at most 1 pt below the
    # unregularized run's on the same random labels (non-inferiority).
    exp.fit_margin = 0.01
    return config
