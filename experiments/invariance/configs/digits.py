"""Translation invariance on the embedded digits (8x8 on a 16x16 canvas): every protocol.

    python -m experiments.invariance.main \
        --config=experiments/invariance/configs/digits.py --workdir=runs/invariance_digits

Protocols and variants: experiments/invariance/main.py, experiments/invariance/variants.py.
Zhang 2019: shift-augmented training (random shifts in [-3, 3], background-filled, as a random
crop of the zero-padded image), consistency over two random shifts in [-3, 3]^2 per image.
Azulay & Weiss 2019: 1-pixel diagonal steps on the black canvas, with and without augmentation.
The seed's claim: the depth nets on a 32x32 canvas, horizontal shifts up to half the canvas
(16 px; the 8x8 digit stays whole up to 12). Kayhan & van Gemert 2020: red-green, 2000 train.
"""

import ml_collections
from ml_collections.config_dict import placeholder

from cnn_jax.experiments.configs import base

ZHANG = ("max", "blur2", "blur3", "blur5", "gap", "strided", "strided_blur3")
DEPTH = ("d0", "d1_max", "d2_max", "d3_max", "d1_strided", "d2_strided", "d3_strided")
DEPTH += ("d1_blur", "d2_blur", "d3_blur", "d0_aug", "d1_max_aug", "d2_max_aug", "d3_max_aug")
KAYHAN = ("kv_valid", "kv_same_zero", "kv_same_circular", "kv_full_zero")


def learned_variants(nets: tuple[str, ...], shifts: tuple[int, ...]) -> tuple[str, ...]:
    """`<net>_shift<r>` for every net and training shift range r (variants.py)."""
    return tuple(f"{net}_shift{r}" for net in nets for r in shifts)


def experiment_config() -> ml_collections.ConfigDict:
    """Measurement settings shared by the invariance configs (under config.experiment)."""
    exp = ml_collections.ConfigDict()
    exp.protocols = ("zhang", "azulay", "budget", "depth", "kayhan")
    exp.zhang_variants = ZHANG
    exp.azulay_variants = ("max_noaug", "blur3_noaug", "max", "blur3")
    exp.budget_variants = ("max_3x", "blur3_3x")
    exp.depth_variants = DEPTH
    exp.kayhan_variants = KAYHAN
    exp.seeds = (0, 1, 2, 3, 4)
    exp.vmap_seeds = True  # consecutive seeds of a variant train as one vmapped run
    exp.num_classes = 10
    # test images scored at every shift of every set: the first N; unset = the whole test split
    exp.num_images = placeholder(int)
    exp.batch_size = 250
    exp.max_shift = 3  # Zhang's two random shifts per image, uniform over [-3, 3]^2
    exp.shift_seed = 0  # the same random shifts for every run: paired comparisons
    exp.augment_shift = 3  # training shifts in [-3, 3] (augment.crop_padding)
    # GAP head's epochs (Zhang's `gap` variants); unset = train.num_epochs. GAP under-fits at
    # the others' budget: a record states this budget and raises it until GAP fits.
    exp.gap_epochs = placeholder(int)
    exp.depth_features = 16
    exp.depth_dataset_options = {"canvas_size": 32}
    exp.distances = (0, 1, 2, 3, 4, 6, 8, 10, 12, 14, 16)
    exp.small_distance = 2
    exp.large_distance = 8
    exp.two_dots_variants = ("d3_max", "d3_blur")
    exp.two_dots_distances = (1, 2, 3, 4, 6, 8, 12)
    # learned vs built-in invariance ('learned', off by default): nets x training shift ranges
    exp.learned_variants = learned_variants(("max", "blur3", "gap", "strided"), (0, 1, 2, 3, 6))
    exp.learned_distances = tuple(range(13))  # test shifts 0..12 px
    exp.learned_small = 1  # consistency claims at 1 px ...
    exp.learned_large = 12  # ... accuracy claims at 12 px (beyond every trained range)
    exp.kayhan_dataset_options = {"num_train": 2000, "num_validation": 1000, "num_test": 1000}
    exp.kayhan_epochs = 30
    exp.alpha = 0.05  # family-wise error rate: Holm over every claim of the study
    exp.margin_relative = 0.2  # equivalence margin: 20% of b's error on the quantity ...
    exp.margin_floor = 0.002  # ... never below 0.2 points ...
    exp.margin_cap = 0.01  # ... nor above 1 point (a baseline near chance has a large error)
    exp.exact_tolerance = 0.0  # identities (Kayhan's circular / zero-FULL): max |a - b| allowed
    exp.record_as = ""  # full configs of record set e.g. "invariance_mnist"
    return exp


def get_config() -> ml_collections.ConfigDict:
    config = base.get_config()
    config.model.preset = "mnist_cnn"
    config.train.num_epochs = 10
    config.train.tensorboard = False
    config.train.quiet = True
    config.train.keep_checkpoints = 1
    config.train.eval_train_at_end = False
    config.experiment = experiment_config()
    return config
