"""Builds `conv_handlers.cc` into a shared library against the installed jaxlib and oneDNN wheels.

`python -m cnn_jax.nn.onednn.build` (run by `make install` after `pip install -e .[onednn]`):
g++ (or $CXX) compiles the FFI handlers with jaxlib's XLA FFI headers (`jax.ffi.include_dir()`)
and the headers of the `onednn-devel-cpu-gomp` wheel, links the `onednn-cpu-gomp` wheel's
libdnnl.so.3 and writes `libcnn_jax_onednn.so` next to it (rpath $ORIGIN), with a stamp of the
jaxlib version and source hash the loader checks (an FFI library is built for one XLA FFI
API). Prints one line either way; exit status 1 when nothing was built.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

SOURCE = Path(__file__).with_name("conv_handlers.cc")
LIBRARY = "libcnn_jax_onednn.so"
RUNTIME_WHEEL = "onednn-cpu-gomp"  # libdnnl.so.3, OpenMP (GNU) threading
HEADERS_WHEEL = "onednn-devel-cpu-gomp"  # oneapi/dnnl/dnnl.hpp
COMPILE_TIMEOUT_S = 300


class BuildError(RuntimeError):
    """Why the library cannot be built here (one line)."""


def _wheel_file(dist: str, suffix: str) -> Path | None:
    """The installed file of wheel `dist` whose path ends in `suffix`, or None."""
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).endswith(suffix):
            return Path(f.locate()).resolve()
    return None


def onednn_library() -> Path | None:
    """libdnnl.so.3 of the onednn-cpu-gomp wheel (installed in <prefix>/lib), or None."""
    return _wheel_file(RUNTIME_WHEEL, "libdnnl.so.3")


def onednn_include_dir() -> Path | None:
    """The include folder holding oneapi/dnnl/dnnl.hpp (onednn-devel-cpu-gomp), or None."""
    header = _wheel_file(HEADERS_WHEEL, "oneapi/dnnl/dnnl.hpp")
    return header.parents[2] if header else None


def library_path() -> Path:
    """Where the built library lives: beside libdnnl.so.3, else <prefix>/lib."""
    dnnl = onednn_library()
    return (dnnl.parent if dnnl else Path(sys.prefix) / "lib") / LIBRARY


def stamp_path(library: Path) -> Path:
    return library.with_suffix(".json")


def expected_stamp() -> dict[str, str]:
    """What a library usable by this process was built from: jaxlib version and source hash."""
    import jaxlib

    source = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    return {"jaxlib": str(jaxlib.__version__), "source_sha256": source}


def compile_command(output: Path, dnnl: Path, include: Path) -> list[str]:
    """The compiler command line (C++17, -O2, headers of XLA FFI and oneDNN, rpath $ORIGIN)."""
    import jax

    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not compiler:
        raise BuildError("no C++ compiler (g++ or $CXX) found")
    return [
        compiler,
        "-std=c++17",
        "-O2",
        "-shared",
        "-fPIC",
        "-isystem",
        str(include),
        "-isystem",
        jax.ffi.include_dir(),
        str(SOURCE),
        "-o",
        str(output),
        str(dnnl),
        "-lgomp",  # omp_set_num_threads: oneDNN's OpenMP runtime, one thread per task
        "-Wl,-rpath,$ORIGIN",
    ]


def build() -> Path:
    """Compiles the library (atomically replacing an old one) and writes its stamp."""
    dnnl, include = onednn_library(), onednn_include_dir()
    if dnnl is None or include is None:
        raise BuildError(f"the {RUNTIME_WHEEL} / {HEADERS_WHEEL} wheels are not installed")
    target = library_path()
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        partial = Path(tmp) / LIBRARY
        cmd = compile_command(partial, dnnl, include)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BuildError(f"{cmd[0]}: {e}") from e
        if done.returncode != 0:
            first = next((ln for ln in done.stderr.splitlines() if "error" in ln), done.stderr)
            raise BuildError(f"{cmd[0]} failed: {first.strip()[:300]}")
        os.replace(partial, target)
    stamp_path(target).write_text(json.dumps(expected_stamp(), indent=1) + "\n")
    return target


def main() -> int:
    try:
        path = build()
    except (BuildError, OSError) as e:
        print(f"note: oneDNN convolutions not built ({e}); XLA's convolutions are used")
        return 1
    print(f"oneDNN convolutions built: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
