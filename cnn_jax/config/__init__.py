"""What a run is, before anything is built: config sections as typed specs, one-line errors.

- `checks`: the shared one-line checks (`check_choice`, `check_keys`, ...) and spec parsing.
- `specs`: the `train` and `dataset` sections (`TrainSpec`, `DatasetSpec`) and their checks.
- `launcher`: the `launcher` section (where a sweep trains: here or on SLURM).
- `grid`: a `grid` section's hyperparameter points, trained as members of one program.
- `identity`: a run's identity (what must match for a finished run to be reused).

The other sections' specs live with the code that uses them: `optim.OptimSpec`,
`augment.AugmentSpec`, `early_stopping.EarlyStoppingSpec`, `nn.model_spec.ModelSpec`.
Floor 1: imports `datasets` only.
"""
