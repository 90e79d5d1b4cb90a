"""MNIST to >= 99.2% test accuracy with 5 seeds: the cheapest recipe measured so far.

The airbench way of thinking (Jordan 2024, literature.md section C) applied to MNIST on a CPU:
batch norm (so a high learning rate is stable), a one-cycle-style schedule (0.1-epoch warm-up,
cosine to 1%), 2 epochs, 55k training images (5k held out), and nothing the result does not
need: one validation at the end, no train-set evaluation, no TensorBoard, one checkpoint.
Label smoothing and batch-norm momentum are not trainer config fields yet (momentum is 0.9).

History (2 cores, `python -m benchmarks.run --only none --mnist-fast`, which times the whole
command with an empty compilation cache):
- earlier on 2026-12-02 (load 1.1): the mnist_cnn preset with batch norm (9.3 MFLOP
  forward), 2 epochs, 1k validation: 5 seeds mean 99.25% in 187 s; 1 epoch: 102 s, mean 98.96%.
- 2026-12-02 (load 1.7-2.0): this recipe, 3 BN conv blocks 16-32-64 without the dense layer
  (3.9 MFLOP), 2 epochs, 5k validation: 5 seeds 99.23, 99.15, 99.26, 99.17, 99.27% (mean
  99.22%) in 117 s (103 s of training, seeds unrolled). The 60 s target is missed by 2x.

Chosen on validation accuracy (5k images, 1 seed each, 2026-12-02; test accuracies were
printed by the same runs but not used): 2 epochs of 16-32-64 99.22%; 16-32 + dense 128 99.08%;
24-48 + dense 128 99.04%; 12-24-48 99.00%; strided 32-64 + dense 128 99.02%; lr 1e-2 99.20%;
global max head 99.20%; batch 256 at lr 1e-2 99.16%; bfloat16 compute 99.20% and slower. At
1 epoch no variant tried (widths, lr 1e-2, batch 64, Nesterov, label smoothing 0.1 patched
into the loss for the trial, no end learning rate) passed 99.04%, and 5 seeds of 16-32 +
dense 128 took 57 s for a 98.73% mean: one epoch is too few, and two epochs of anything
stronger do not fit in 60 s on these 2 cores.
`python -m benchmarks.run --only none --mnist-fast` times the whole command.

    python -m experiments.train --config=experiments/configs/mnist_fast.py --workdir=runs/mnist_fast
"""

from cnn_jax.experiments.configs import base


def get_config():
    config = base.get_config()
    config.dataset.name = "mnist"
    config.dataset.options = {"validation_size": 5000}  # the split the recipe was tuned on
    config.model.blocks = [  # 3 BN conv blocks, 16-32-64 channels, 3x3 SAME: 3.9 MFLOP forward
        {"features": 16, "batch_norm": True, "pool": "max"},
        {"features": 32, "batch_norm": True, "pool": "max"},
        {"features": 64, "batch_norm": True},
    ]
    config.model.head_hidden = []  # flatten 7x7x64 -> 10 logits
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
