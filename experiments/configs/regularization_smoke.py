"""Smoke run of the regularizer study: every variant x 2 seeds on the embedded digits, 3 epochs.

For CI and the notebook; a sanity check, not a measurement (see regularization_full.py).
Measured on the shared 2-core machine: 1 min 55 s wall at load average 1.8-3.5 (empty
compilation cache), 5.5 min at load ~9. Compilation dominates, hence one vmapped program
per variant.
"""

from experiments.configs import regularization_full


def get_config():
    config = regularization_full.get_config()
    config.dataset.name = "digits"
    config.dataset.options = {"canvas_size": 16}
    config.train.batch_size = 64
    config.train.num_epochs = 3
    config.train.log_every_steps = 10
    config.train.checkpoint_every_steps = 10**6  # only the final checkpoint (for weight stats)
    config.early_stopping.patience = 1
    config.experiment.seeds = (0, 1)
    # Compilation dominates a 3-epoch run: one vmapped program per variant instead of one
    # per seed (smoke: 313 s vmapped vs ~22 s per sequential run, at load average 9).
    config.experiment.vmap_seeds = True
    config.experiment.sweeps = {"dropout": (0.2,), "l1": (1e-4,)}
    return config
