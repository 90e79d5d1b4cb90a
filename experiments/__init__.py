"""The studies built on the library, one folder each, and the command-line entry points.

- `train`, `cli`, `commands`, `config_cli`, `config_files`: `--config` / `--workdir` commands.
- `configs/`: the general training configs (`--config=digits`, `smoke`, `mnist`, ...).
- `invariance/`, `regularization/`, `anatomy/`, `calibration/`: a study each, with its README,
  its stages (`main` drives; `variants`, `evaluate`, `analysis`, `report`, `plots` where the
  study has them) and its `configs/` (`--config=<study>/<name>`).

A new study: copy a study folder, rename it, edit its variants and configs.
"""

if __name__ == "experiments":  # a checkout: configs import `cnn_jax.experiments` (see there)
    from . import packaged_name

    packaged_name.install()
