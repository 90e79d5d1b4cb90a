"""MNIST to >= 99.2% test accuracy with 5 seeds: the cheapest recipe measured so far (issue 15).

The airbench way of thinking (Jordan 2024, literature.md section C) applied to MNIST on a CPU:
batch norm (so a high learning rate is stable), a one-cycle-style schedule (0.1-epoch warm-up,
cosine to 1%), 2 epochs, 59k training images (1k held out), and nothing the result does not
need: one validation at the end, no train-set evaluation, no TensorBoard, one checkpoint.
Label smoothing and batch-norm momentum are not trainer config fields yet (momentum is 0.9).

Measured (1 seed, load 20-30 on 2 cores, 2026-12-01): this config 99.25% test, 175 CPU-s;
16/32-channel BN blocks without the dense layer 98.88% (69 CPU-s); 24/48 channels 99.00%
(105 CPU-s). On 2 quiet cores (Intel Xeon, load 1.1, 2026-12-02, `time` of the command
below): 5 seeds 99.24, 99.27, 99.25, 99.16, 99.32% (mean 99.25%) in 187 s for the whole
command (177 s of training, seeds unrolled); with `--config.train.num_epochs=1`, 102 s and
mean 98.96% (every seed below 99.1%). The 60 s target is missed by 3x.
`python -m benchmarks.run --only none --mnist-fast` times the whole command.

    python -m experiments.train --config=experiments/configs/mnist_fast.py --workdir=runs/mnist_fast
"""

from . import base


def get_config():
    config = base.get_config()
    config.dataset.name = "mnist"
    config.dataset.options = {"validation_size": 1000}
    config.model.preset = "mnist_cnn"
    config.model.batch_norm = True
    config.optim.name = "adamw"
    config.optim.learning_rate = 5e-3
    config.optim.schedule = "warmup_cosine"
    config.optim.warmup_epochs = 0.1
    config.optim.end_lr_factor = 0.01
    config.optim.weight_decay = 5e-4
    config.train.batch_size = 128
    config.train.num_epochs = 2
    config.train.num_seeds = 5
    config.train.eval_every_epochs = 1000  # validation once, at the end
    config.train.eval_train_at_end = False
    config.train.checkpoint_every_steps = 100_000
    config.train.keep_checkpoints = 1
    config.train.log_every_steps = 200
    config.train.tensorboard = False
    return config
