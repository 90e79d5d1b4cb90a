"""Feature-map pictures of the flax-MNIST-style CNN on digits, after a short training run.

Any preset works (--config.model.preset=tiny_vgg, lenet5, ...), and any trained run
(--config.experiment.run_dir=runs/...). Trains 3 epochs of digits first: about a minute on
2 CPU cores, also the smoke configuration.
"""

import ml_collections

from cnn_jax.experiments.configs import base


def get_config():
    config = base.get_config()
    config.dataset.name = "digits"
    config.dataset.options = {"canvas_size": 16}
    config.model.preset = "mnist_cnn"
    config.train.num_epochs = 3
    config.train.eval_every_epochs = 3
    config.train.log_every_steps = 10
    config.train.checkpoint_every_steps = 1_000_000  # only the final checkpoint
    config.train.keep_checkpoints = 1
    config.train.tensorboard = False
    config.train.quiet = True

    exp = config.experiment = ml_collections.ConfigDict()
    exp.run_dir = ""  # a trained run to load instead of training `config`
    exp.seed_index = ml_collections.config_dict.placeholder(int)  # for K-seed runs
    exp.train = True  # False: random initial weights (compare with learned filters)
    exp.input_indices = (0, 1)  # test images for the feature-map panels
    exp.max_channels = 8
    exp.top_layer = ""  # default: the last block's activation
    exp.top_channels = (0, 1, 2)
    exp.top_k = 9
    return config
