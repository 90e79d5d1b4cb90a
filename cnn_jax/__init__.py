"""cnn_jax: measure what convolutional networks do. The map, one line per folder, bottom up.

- `datasets`, `stats`: data as uint8 splits through TFDS; intervals, tests and verdicts.
- `config`: config sections as typed specs with one-line errors.
- `nn`: layers, kinds, model specs and the `CNN` module.
- `system`, `outputs`: devices, checkpoints, signals; files, logs and plots.
- the training core (this folder): `train.train_and_evaluate`, the one trainer, and its parts
  (`run_setup`, `steps`, `optim`, `augment`, `early_stopping`, `metrics`, `input_pipeline`,
  `seed_strategy`, `run_results`, `run_identity`, `extension`, `config_validation`).
- `runs`, `measure`: sweeps, loading, comparing and publishing runs; what a trained CNN does.

Each folder imports only lower floors (`tests/test_layering.py`); the studies built on the
library live in the repository's `experiments/` folder.
"""
