r"""Regularizer study of record on MNIST: dropout, decoupled weight decay, augmentation and
all three together against the tuned baseline over training-set sizes from 1,000 to 16,000;
L1, L2 and decoupled decay under both SGD with momentum and AdamW; pooling against strided
convs at matched parameters and FLOPs; early stopping against the same maximum without it;
Srivastava et al. 2014 Table 9 beside our runs of the same regularizers.

    nohup python -m experiments.regularization.main --config=regularization/mnist \
        --workdir=runs/regularization_mnist > runs/regularization_mnist.log 2>&1 &

Design: the Fashion-MNIST record's (fashion_mnist.py: a 30-epoch converged cap at every n,
4 draws x 4 seeds per comparison, tuning with 2 seeds on the 5,000-image validation split over
grids widened past the old edges, re-tuning at n = 16,000). The size curve stops at 16,000:
n = all (55,000 images) has no subset to draw, so it cannot give 4 draws x 4 seeds; it is kept
for the literature runs only.
Literature (Srivastava et al. 2014, JMLR 15:1929-1958, Table 9): SGD + momentum on the whole
training split (55,000 images) at batch 128, trained to convergence (early stopping under the
same 30-epoch cap, was 1 fixed epoch), 4 seeds: L2 5e-4, max-norm 3, dropout 0.5 + L2 5e-4,
dropout 0.5 + max-norm 3; the rate is the tuned momentum baseline's (the paper's rates are not
in our literature notes). Expected wall time: the study README's cost table.
(Earlier records: 2026-12-01, one draw x one seed at n = 1,000; 2026-12-02, n <= 16,000 and
AdamW decay tuned over the momentum grid, 100x too weak for AdamW; 2026-12-02, 2 draws x 2 seeds
with a 9-epoch cap at n >= 4,000, literature runs of 1 epoch.)
"""

import ml_collections

from cnn_jax.experiments.regularization.configs import fashion_mnist


def get_config():
    config = fashion_mnist.get_config()
    config.dataset.name = "mnist"
    exp = config.experiment
    exp.pair_strength = ml_collections.ConfigDict({"l2": 5e-4, "max_norm": 3.0})
    exp.literature = ml_collections.ConfigDict(
        {
            "variants": (
                ("l2", 5e-4),
                ("max_norm", 3.0),
                ("dropout_l2", 0.5),
                ("dropout_max_norm", 0.5),
            ),  # fmt: skip
            "size": "all",
            "seeds": (0, 1, 2, 3),
            "optimizer": "momentum",
            "mode": "converged",  # early stopping under experiment.converged_epochs
            "batch_size": 128,
        }
    )
    exp.record_as = "regularization_mnist"
    return config
