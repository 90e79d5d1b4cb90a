"""The wheel installs and its commands work from any directory.

Builds the wheel from a copy of the sources (`pip wheel --no-deps --no-build-isolation`,
nothing written into the checkout), installs it with `--no-deps` into a fresh venv made
without pip, whose dependencies come from the project venv's site-packages through a
`.pth` line (a plain path: the checkout's editable-install hooks are not loaded, so the
only cnn_jax there is the wheel's), then runs `cnn-jax-train --config=smoke` and
`cnn-jax-compare` from an empty temporary directory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from experiments.commands import COMMANDS
from tests.conftest import REPO

pytestmark = pytest.mark.slow
SOURCES = ("cnn_jax", "experiments", "pyproject.toml", "README.md")


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd}: {done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    return done


def _packages(root: Path) -> set[str]:
    return {str(p.parent.relative_to(root)) for p in root.rglob("__init__.py")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if importlib.util.find_spec("setuptools") is None:  # e.g. a Python 3.12 venv
        pytest.skip("building offline needs setuptools in this venv (pip install setuptools)")
    tmp = tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        source, target = REPO / name, tmp / "src" / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), "."],
         cwd=tmp / "src")  # fmt: skip
    (found,) = (tmp / "dist").glob("cnn_jax-*.whl")
    return found


def test_wheel_ships_every_package_under_cnn_jax(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"cnn_jax"}  # no generic top-level `experiments`
    shipped = {n.rsplit("/", 1)[0] for n in names if n.endswith("/__init__.py")}
    wanted = {f"cnn_jax/{p}".removesuffix("/.") for p in _packages(REPO / "cnn_jax")}
    folder = REPO / "experiments"  # installed as cnn_jax.experiments
    wanted |= {f"cnn_jax/experiments/{p}".removesuffix("/.") for p in _packages(folder)}
    assert shipped == wanted  # pyproject's explicit package list is complete
    assert "cnn_jax/experiments/configs/smoke.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for command in ("cnn-jax-train", "cnn-jax-invariance", "cnn-jax-compare", "cnn-jax-data"):
        assert f"{command} = " in text


def test_installed_commands_work_from_another_directory(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=tmp_path).stdout.strip()  # fmt: skip
    (Path(site) / "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "--python",
          str(python), "install", "--no-deps", str(wheel)], cwd=tmp_path)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["JAX_PLATFORMS"] = "cpu"
    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = (
        "import importlib.util, cnn_jax; print(cnn_jax.__file__); "
        "print(importlib.util.find_spec('experiments'))"
    )
    where, experiments = _run([str(python), "-c", probe], cwd=work, env=env).stdout.split()
    assert where.startswith(str(venv)) and experiments == "None"
    train = [str(venv / "bin" / "cnn-jax-train"), "--config=smoke", "--workdir=run"]
    train += ["--config.train.num_epochs=1", "--config.train.eval_train_at_end=False"]
    out = _run(train, cwd=work, env=env).stdout
    assert "Test accuracy: " in out
    assert "TensorBoard" not in out  # the smoke config writes no TensorBoard logs
    assert (work / "run" / "results.json").exists()
    table = _run([str(venv / "bin" / "cnn-jax-compare"), "run"], cwd=work, env=env).stdout
    assert table.splitlines()[0].startswith("run") and "test_accuracy" in table
    bad = subprocess.run([str(venv / "bin" / "cnn-jax-train"), "--config=nosuch"], cwd=work,
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: --config: 'nosuch' is neither a file nor")
    usage = _run([str(venv / "bin" / "cnn-jax-train"), "--help"], cwd=work, env=env).stdout
    assert usage.startswith("usage: cnn-jax-train [--config=FILE]")
    for command in COMMANDS:  # every study's command finds its module in the wheel
        usage = _run([str(venv / "bin" / command), "--help"], cwd=work, env=env).stdout
        assert usage.startswith(f"usage: {command} "), usage[:200]
        assert str(REPO) not in usage and "experiments/" not in usage  # names, not paths
    usage = _run([str(venv / "bin" / "cnn-jax-data"), "--help"], cwd=work, env=env).stdout
    assert usage.startswith("usage: cnn-jax-data") and str(Path.home()) not in usage
    locate = "import cnn_jax.experiments.configs.smoke as m; print(m.__file__)"
    packaged = _run([str(python), "-c", locate], cwd=work, env=env).stdout.strip()
    shutil.copy(packaged, work / "my_config.py")  # a packaged config copied out runs as is
    train[1:3] = ["--config=my_config.py", "--workdir=mine"]
    assert "Test accuracy: " in _run(train, cwd=work, env=env).stdout
