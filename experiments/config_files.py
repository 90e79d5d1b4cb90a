"""`--config` values: a config file's path, or the name of a config shipped in the package.

General configs live in `configs/` and are named by their stem (`--config=digits`); each
study's configs live in `<study>/configs/` and are named `<study>/<stem>`
(`--config=invariance/mnist`). A repository path given from another directory
(`experiments/invariance/configs/mnist.py`) also names the packaged file, so the installed
commands work from anywhere; any other value is a path. Packaged configs import each other
absolutely (`from cnn_jax.experiments.configs import base`), the installed name, which a
checkout answers to as well (`packaged_name`), so a copy of one runs from any folder.
"""

from __future__ import annotations

from pathlib import Path

EXPERIMENTS_DIR = Path(__file__).resolve().parent
CONFIGS_DIR = EXPERIMENTS_DIR / "configs"


def _packaged() -> dict[str, Path]:
    """Name -> file of every packaged config: `stem` (general), `<study>/<stem>` (a study's)."""
    found = {p.stem: p for p in CONFIGS_DIR.glob("*.py")}
    for path in EXPERIMENTS_DIR.glob("*/configs/*.py"):
        found[f"{path.parent.parent.name}/{path.stem}"] = path
    return {name: path for name, path in found.items() if not Path(name).name.startswith("_")}


def names() -> list[str]:
    """The packaged configs' names (`--config=<name>`)."""
    return sorted(_packaged())


def resolve(value: str) -> Path:
    """The config file `value` names: an existing file, else a packaged config; one
    ValueError line listing the names otherwise."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    parts = path.with_suffix("").parts if path.suffix == ".py" else path.parts
    if "configs" in parts:  # a repository path: [..., <study>,] configs, <stem>
        i = len(parts) - 1 - parts[::-1].index("configs")
        study = parts[i - 1] if i >= 1 and parts[i - 1] != "experiments" else None
        parts = (study, *parts[i + 1 :]) if study else parts[i + 1 :]
    candidate = _packaged().get("/".join(parts))
    if candidate is not None:
        return candidate
    raise ValueError(
        f"--config: {value!r} is neither a file nor a packaged config; allowed: a path to a "
        f".py file with get_config(), or one of: {', '.join(names())}"
    )


def name_of(value: str) -> str:
    """How `--help` shows a config: its packaged name when `value` names a packaged config
    (`experiments/configs/digits.py` -> `digits`), else `value` as given."""
    try:
        path = resolve(value).resolve()
    except ValueError:
        return value
    return next((name for name, p in _packaged().items() if p.resolve() == path), value)
