"""Translation invariance on MNIST (`make data`): the study of record, results/invariance_mnist.

    python -m experiments.translation_invariance \
        --config=experiments/configs/invariance_mnist.py --workdir=runs/invariance_mnist

Sized for a 2-core machine (issue 12: fewer, well-chosen comparisons with real power): 5 seeds
trained as one vmapped run per variant on a fixed random 4,000-image training subset, 3
epochs; 1,000 test images at every shift. MNIST's digits sit in a 20x20 box centred on the
28x28 black canvas, so the Zhang / Azulay shifts (<= 4 px) keep them whole; the depth nets
see the digits on a 40x40 black canvas (whole up to 10 px, half the canvas is 20 px). Only the
headline comparison (MaxBlurPool Tri-3 vs max pooling) is retrained at 3x budget. The
red-green absolute-position test (Kayhan & van Gemert 2020) runs here too (its own data).
"""

from . import invariance_digits, mnist


def get_config():
    config = mnist.get_config()
    config.dataset.options = {"train_subset": 4000, "subset_seed": 0}
    config.train.num_epochs = 3
    config.train.tensorboard = False
    config.train.quiet = True
    config.train.keep_checkpoints = 1
    config.train.eval_train_at_end = False
    exp = config.experiment = invariance_digits.experiment_config()
    exp.depth_variants = ("d0", "d1_max", "d2_max", "d3_max", "d3_strided", "d3_blur", "d3_max_aug")
    exp.depth_dataset_options = {"canvas_size": 40}
    exp.distances = (0, 1, 2, 3, 4, 6, 8, 10, 14, 20)
    exp.large_distance = 8
    exp.two_dots_variants = ("d3_max", "d3_blur")
    exp.two_dots_distances = (1, 2, 3, 4, 6, 8, 12, 16)
    exp.kayhan_epochs = 10
    exp.record_as = "invariance_mnist"
    return config
