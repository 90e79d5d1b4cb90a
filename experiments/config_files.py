"""`--config` values: a config file's path, or the name of a config shipped in the package.

`--config=digits` (or `digits.py`, or the repository path `experiments/configs/digits.py`
given from another directory) is the packaged `configs/digits.py`, so the installed
commands work from anywhere; any other value is a path. `cnn_jax.config_cli.load_file`
imports the file as a module of its package, so `from . import base` works in both the
repository (`experiments.configs`) and an installed wheel (`cnn_jax.experiments.configs`).
"""

from __future__ import annotations

from pathlib import Path

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"


def names() -> list[str]:
    """The packaged configs' names (`--config=<name>`)."""
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.py") if not p.stem.startswith("_"))


def resolve(value: str) -> Path:
    """The config file `value` names: an existing file, else a packaged config; one
    ValueError line listing the names otherwise."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    packaged = len(path.parts) == 1 or path.parts[-2:-1] == ("configs",)
    candidate = CONFIGS_DIR / (path.name if path.suffix == ".py" else f"{path.name}.py")
    if packaged and candidate.is_file():
        return candidate
    raise ValueError(
        f"--config: {value!r} is neither a file nor a packaged config; allowed: a path to a "
        f".py file with get_config(), or one of: {', '.join(names())}"
    )
