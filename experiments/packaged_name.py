"""`cnn_jax.experiments` in a checkout: the name configs import by, as in an installed wheel.

Packaged configs import each other absolutely (`from cnn_jax.experiments.configs import base`)
so that a copy of one runs from any folder. A wheel installs this folder as
`cnn_jax.experiments`, and so does the editable install (`pip install -e .`); a checkout that
is only on `sys.path` (PYTHONPATH=repo) gets the same name from the finder below, which
answers for that one name and only when no other finder does.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

NAME = "cnn_jax.experiments"
FOLDER = Path(__file__).resolve().parent


class PackagedNameFinder:
    """Finds `cnn_jax.experiments` as this folder (a meta-path finder, placed last)."""

    @classmethod
    def find_spec(
        cls, fullname: str, path=None, target=None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != NAME:
            return None
        return importlib.util.spec_from_file_location(
            NAME, FOLDER / "__init__.py", submodule_search_locations=[str(FOLDER)]
        )


def install() -> None:
    """Appends the finder to `sys.meta_path` once (after every other finder)."""
    if not any(f is PackagedNameFinder for f in sys.meta_path):
        sys.meta_path.append(PackagedNameFinder)
