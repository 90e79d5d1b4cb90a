"""A packaged config copied out of the package loads and runs as is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from experiments import config_cli, config_files
from tests.conftest import REPO, child_pythonpath


@pytest.mark.parametrize("name", config_files.names())
def test_a_copied_packaged_config_loads_the_same_config(name: str, tmp_path: Path):
    packaged = config_files.resolve(name)
    copy = tmp_path / "my_config.py"
    shutil.copy(packaged, copy)
    loaded, original = config_cli.load_file(str(copy)), config_cli.load_file(str(packaged))
    assert loaded.to_json() == original.to_json()


def test_a_relative_import_outside_a_package_says_what_to_write(tmp_path: Path):
    copy = tmp_path / "old_copy.py"
    copy.write_text("from . import base\n\n\ndef get_config():\n    return base.get_config()\n")
    with pytest.raises(ValueError) as info:
        config_cli.load_file(str(copy))
    message = str(info.value)
    assert "\n" not in message and f"{copy}:1" in message
    assert "from cnn_jax.experiments.configs import base" in message


def test_a_checkout_without_the_editable_install_answers_to_the_installed_name(tmp_path: Path):
    shutil.copy(config_files.resolve("invariance/smoke"), tmp_path / "mine.py")
    code = textwrap.dedent(
        f"""
        import sys
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in f.__module__]
        sys.path_hooks[:] = [h for h in sys.path_hooks if "editable" not in h.__module__]
        for name in [m for m in sys.modules if m.startswith("cnn_jax")]:
            del sys.modules[name]
        sys.path.insert(0, {str(REPO)!r})
        from experiments import config_cli
        print(config_cli.load_file({str(tmp_path / "mine.py")!r}).model.preset)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["mnist_cnn"]


@pytest.mark.slow
def test_a_copied_smoke_config_trains_from_another_folder(tmp_path: Path, data_dir: Path):
    shutil.copy(config_files.resolve("smoke"), tmp_path / "my_config.py")
    env = dict(os.environ, PYTHONPATH=child_pythonpath(), JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "experiments.train", "--config=my_config.py", "--workdir=run",
           f"--config.dataset.data_dir={data_dir}", "--config.train.num_epochs=1"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Test accuracy: " in done.stdout and (tmp_path / "run" / "results.json").exists()


def test_help_names_the_default_config_by_its_packaged_name():
    from experiments import cli

    text = cli.help_text("prog", "experiments/invariance/configs/smoke.py", "runs/x")
    assert "experiments/" not in text and str(REPO) not in text
    assert "(default: invariance/smoke)" in text and "config fields (invariance/smoke):" in text
