"""The library's folders import only downward: the tree is the architecture.

Each folder of `cnn_jax/` sits on a floor (`FLOORS`); a module may import its own folder and
any lower floor, never a higher one or a sibling on the same floor, and the library never
imports the studies (`experiments`), the benchmarks or the tests. Imports inside functions
count too, so a cycle cannot hide behind a lazy import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Folder of cnn_jax -> floor; "" is the training core (the package's top-level modules).
FLOORS = {
    "datasets": 0,
    "stats": 0,
    "config": 1,
    "nn": 2,
    "system": 3,
    "outputs": 3,
    "": 4,
    "runs": 5,
    "measure": 5,
}
OUTSIDE = ("experiments", "benchmarks", "tests")


def folder_of(module: str) -> str:
    """`cnn_jax.nn.layers` -> "nn"; `cnn_jax.train` (a top-level module) -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in FLOORS) else ""


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in the file, at any depth, relative ones resolved."""
    package = module.split(".")[: -1 if path.name != "__init__.py" else None]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def violations(root: Path) -> list[str]:
    """One line per import in `root/cnn_jax` that goes up a floor, across a floor, or out."""
    bad = []
    for path in sorted((root / "cnn_jax").rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        here = folder_of(module)
        for line, target in imported_modules(path, module):
            where = f"{path.relative_to(root)}:{line} imports {target}"
            top = target.split(".")[0]
            if top in OUTSIDE:
                bad.append(f"{where}: the library imports no study, benchmark or test")
            elif top == "cnn_jax" and target != "cnn_jax":
                there = folder_of(target)
                if there != here and there in FLOORS and FLOORS[there] >= FLOORS[here]:
                    bad.append(
                        f"{where}: floor {FLOORS[there]} ({there or 'core'}) is not below "
                        f"floor {FLOORS[here]} ({here or 'core'})"
                    )
    return bad


def test_every_folder_has_a_floor():
    folders = {p.parent.name for p in (REPO / "cnn_jax").glob("*/__init__.py")}
    assert folders == set(FLOORS) - {""}


def test_the_library_imports_only_downward():
    assert violations(REPO) == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("cnn_jax/nn/layers.py", "from cnn_jax import train\n"),  # up: nn -> core
        ("cnn_jax/config/specs.py", "def f():\n    from cnn_jax.nn import layers\n"),  # lazy
        ("cnn_jax/stats/__init__.py", "from cnn_jax.datasets import core\n"),  # same floor
        ("cnn_jax/runs/sweep.py", "from experiments import cli\n"),  # out of the library
        ("cnn_jax/outputs/plots.py", "from ..runs import record\n"),  # relative, up
    ],
)
def test_an_upward_import_is_reported(tmp_path: Path, module: str, source: str):
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    path.write_text(source)
    (bad,) = violations(tmp_path)
    assert bad.startswith(f"{module}:")


def test_a_downward_import_is_allowed(tmp_path: Path):
    path = tmp_path / "cnn_jax/runs/sweep.py"
    path.parent.mkdir(parents=True)
    path.write_text(
        "from cnn_jax import train\nfrom cnn_jax.nn import layers\nfrom . import launch\n"
    )
    assert violations(tmp_path) == []


def test_the_studies_import_each_other_relatively():
    # `experiments/` installs as `cnn_jax.experiments`: an absolute `experiments` import would
    # work in the repository and fail from a wheel.
    absolute = []
    for path in sorted((REPO / "experiments").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(name.split(".")[0] == "experiments" for name in names):
                absolute.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert absolute == []
