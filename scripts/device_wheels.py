#!/usr/bin/env python3
"""Downloads, here, the wheels that an offline machine lacks, into one folder (default .whl/).

    python scripts/device_wheels.py                    # = make device-wheels
    python scripts/device_wheels.py --installed-file freeze.txt --dest /tmp/w

The GPU machines this project borrows have no network and their own Python 3.12 with jax,
torch and much else (GPU_MACHINE_PACKAGES). The project's runtime needs (pyproject.toml's
dependencies) are resolved transitively by pip for Python 3.12 on manylinux x86_64, with
requirements.lock's versions where they apply; what the target already has is dropped, the
rest downloaded as wheels, one version each. A package published only as source is built
here into a wheel (pure Python only: a compiled one would not match the target). The folder
travels with the working tree, so its size plus the tree's must stay under 64 MiB; the
script prints both and exits 1 when they do not fit. scripts/device_check.sh installs it.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TREE_LIMIT_MIB = 64.0  # what travels to the device machine: the tree plus the wheels
PYTHON_VERSION = "3.12"
# pip matches each platform tag exactly; the GPU machines run glibc 2.39 (Python 3.12.3).
PLATFORMS = (
    *(f"manylinux_2_{n}_x86_64" for n in range(39, 16, -1)),
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
# What the GPU machines ('cuda' image) already hold, as listed on 2026-11-17; versions where
# they are known (they pin the resolution, so the wheels fit the machine's jax and numpy).
GPU_MACHINE_PACKAGES = (
    "absl-py",
    "accelerate",
    "aiofiles",
    "aiohappyeyeballs",
    "aiohttp",
    "aiosignal",
    "annotated-doc",
    "anyio",
    "attrs",
    "botorch",
    "build",
    "certifi",
    "charset-normalizer",
    "chex",
    "click",
    "cloudpickle",
    "cmake",
    "colorama",
    "contourpy",
    "coverage",
    "cuda-bindings",
    "cuda-core",
    "cuda-pathfinder",
    "cuda-toolkit",
    "cupy-cuda13x",
    "cycler",
    "cython",
    "diffrax",
    "e3nn",
    "einops",
    "equinox",
    "etils",
    "execnet",
    "filelock",
    "flatbuffers",
    "flax",
    "fonttools",
    "formulaic",
    "frozenlist",
    "fsspec",
    "gpytorch",
    "grpcio",
    "h11",
    "h5py",
    "hf-xet",
    "httpcore",
    "httpx",
    "huggingface-hub",
    "humanize",
    "hypothesis",
    "idna",
    "imageio",
    "iniconfig",
    "interface-meta",
    "jax==0.11.2",
    "jax-cuda13-pjrt==0.11.2",
    "jax-cuda13-plugin==0.11.2",
    "jaxlib==0.11.2",
    "jaxtyping",
    "jinja2",
    "joblib",
    "kiwisolver",
    "lazy-loader",
    "lightning",
    "lightning-utilities",
    "linear-operator",
    "lineax",
    "llvmlite",
    "lxml",
    "markdown",
    "markdown-it-py",
    "markupsafe",
    "matplotlib",
    "mdurl",
    "meson",
    "ml-dtypes",
    "mpi4py",
    "mpmath",
    "msgpack",
    "multidict",
    "multipledispatch",
    "mypy-extensions",
    "nanobind",
    "narwhals",
    "networkx",
    "ninja",
    "numba",
    "numba-cuda",
    "numpy==2.5.2",
    "numpyro",
    "nvidia-cublas",
    "nvidia-cuda-cupti",
    "nvidia-cuda-nvrtc",
    "nvidia-cuda-runtime",
    "nvidia-cudnn-cu13",
    "nvidia-cufft",
    "nvidia-cufile",
    "nvidia-curand",
    "nvidia-cusolver",
    "nvidia-cusparse",
    "nvidia-cusparselt-cu13",
    "nvidia-ml-py",
    "nvidia-nccl-cu13",
    "nvidia-nvjitlink",
    "nvidia-nvshmem-cu13",
    "nvidia-nvtx",
    "onnx",
    "onnx-ir",
    "onnxruntime",
    "onnxscript",
    "opencv-python-headless",
    "optax",
    "opt-einsum",
    "opt-einsum-fx",
    "optimistix",
    "orbax-checkpoint",
    "packaging",
    "pandas",
    "pathspec",
    "patsy",
    "peft",
    "pillow",
    "pip",
    "pluggy",
    "portalocker",
    "prometheus-client",
    "propcache",
    "protobuf",
    "psutil",
    "pyarrow",
    "pybind11",
    "py-cpuinfo",
    "pygments",
    "pyparsing",
    "pyproject-hooks",
    "pyre-extensions",
    "pytest",
    "pytest-benchmark",
    "pytest-cov",
    "pytest-mock",
    "pytest-timeout",
    "pytest-xdist",
    "python-dateutil",
    "pytorch-lightning",
    "pyyaml",
    "regex",
    "requests",
    "rich",
    "sacrebleu",
    "safetensors",
    "scikit-build-core",
    "scikit-image",
    "scikit-learn",
    "scipy",
    "seaborn",
    "sentencepiece",
    "sentence-transformers",
    "setuptools",
    "shellingham",
    "simplejson",
    "six",
    "sortedcontainers",
    "statsmodels",
    "sympy",
    "tabulate",
    "tensorboard",
    "tensorboard-data-server",
    "tensorstore",
    "threadpoolctl",
    "tifffile",
    "tiktoken",
    "timm",
    "tokenizers",
    "toolz",
    "torch==2.11.0",
    "torchaudio",
    "torchdiffeq",
    "torch-geometric",
    "torchmetrics",
    "torchvision",
    "tqdm",
    "transformers",
    "treescope",
    "triton",
    "typer",
    "typing-extensions",
    "typing-inspect",
    "urllib3",
    "uvloop",
    "wadler-lindig",
    "werkzeug",
    "wheel",
    "wrapt",
    "xarray",
    "xxhash",
    "yarl",
    "zipp",
)
NO_WHEEL = re.compile(r"No matching distribution found for (\S+)")
# pip's words when a constraint pins a package that has no wheel: the names follow, indented.
NO_WHEEL_LIST = "no matching distributions available for your environment:"
MAX_BUILDS = 5  # source-only packages built into wheels in one run


def normalize(name: str) -> str:
    """PEP 503's form of a package name: `Array_Record` and `array-record` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(lines: Iterable[str]) -> dict[str, str | None]:
    """`name` or `name==version` per entry (pip freeze's lines too) -> {name: version | None};
    comments, blank lines and `-e`/URL lines are skipped."""
    pins: dict[str, str | None] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-") or " @ " in line:
            continue
        name, _, version = line.partition("==")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name.strip()):
            raise ValueError(f"installed package {line!r} not allowed; allowed: name or name==ver")
        pins[normalize(name.strip())] = version.strip() or None
    return pins


def project_requirements(pyproject: Path) -> list[str]:
    """pyproject.toml's [project] dependencies, as written."""
    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def constraints(lock: dict[str, str | None], installed: dict[str, str | None]) -> list[str]:
    """Pins for the resolution: the target's known versions, and the lock's versions of the
    packages the target lacks (the lock's jax would contradict the target's own)."""
    pins = {name: v for name, v in lock.items() if name not in installed and v}
    pins.update({name: v for name, v in installed.items() if v})
    return [f"{name}=={v}" for name, v in sorted(pins.items())]


def missing(resolved: dict[str, str], installed: Iterable[str]) -> dict[str, str]:
    """The resolved packages (name -> version) that the target does not have."""
    have = {normalize(n) for n in installed}
    return {normalize(n): v for n, v in sorted(resolved.items()) if normalize(n) not in have}


def wheel_name_version(filename: str) -> tuple[str, str]:
    """(normalized name, version) of a wheel file name (PEP 427)."""
    parts = Path(filename).name.removesuffix(".whl").split("-")
    if len(parts) < 5:
        raise ValueError(f"{filename}: not a wheel file name (name-version-py-abi-platform.whl)")
    return normalize(parts[0]), parts[1]


def stale(files: Iterable[str], wanted: dict[str, str]) -> list[str]:
    """The wheel files to delete: other versions of wanted packages and unwanted packages."""
    out = []
    for f in files:
        name, version = wheel_name_version(f)
        if wanted.get(name) != version:
            out.append(f)
    return sorted(out)


def fits(wheels_bytes: int, tree_bytes: int, limit_mib: float = TREE_LIMIT_MIB) -> bool:
    """Whether the wheels and the working tree together stay under the transfer limit."""
    return wheels_bytes + tree_bytes < limit_mib * 2**20


def target_options(python_version: str) -> list[str]:
    """pip's options that select wheels for the target, not for this interpreter."""
    opts = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python_version]
    for platform in PLATFORMS:
        opts += ["--platform", platform]
    return opts


def pip(*args: str) -> subprocess.CompletedProcess:
    """`python -m pip ARGS` with its output captured (warnings about mirrors are noise)."""
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def resolve(reqs: list[str], pins: list[str], dest: Path, python_version: str) -> dict[str, str]:
    """name -> version of every package the requirements need on the target (pip's resolver,
    nothing downloaded but metadata); source-only packages are built into `dest` on the way."""
    with tempfile.TemporaryDirectory() as tmp:
        cons, report = Path(tmp) / "constraints.txt", Path(tmp) / "report.json"
        cons.write_text("\n".join(pins) + "\n")
        for _ in range(MAX_BUILDS + 1):
            done = pip(
                "install",
                "--dry-run",
                "--ignore-installed",
                "--report",
                str(report),
                "--target",
                str(Path(tmp) / "t"),
                "--find-links",
                str(dest),
                "-c",
                str(cons),
                *target_options(python_version),
                *reqs,
            )
            if done.returncode == 0:
                items = json.loads(report.read_text())["install"]
                return {normalize(i["metadata"]["name"]): i["metadata"]["version"] for i in items}
            names = without_wheel(done.stdout + done.stderr)
            if not names:
                raise SystemExit(f"device_wheels: pip could not resolve: {_last_error(done)}")
            for name in names:
                build_wheel(name, cons, dest)
    raise SystemExit(f"device_wheels: more than {MAX_BUILDS} packages have no wheel; giving up")


def without_wheel(pip_output: str) -> list[str]:
    """The requirements that pip found no wheel for, from its error output (both wordings)."""
    found = NO_WHEEL.findall(pip_output)
    if NO_WHEEL_LIST in pip_output:
        for line in pip_output.split(NO_WHEEL_LIST, 1)[1].splitlines()[1:]:
            if not line.startswith((" ", "\t")) or not line.strip():
                break
            found.append(line.strip())
    return list(dict.fromkeys(found))


def build_wheel(requirement: str, cons: Path, dest: Path) -> None:
    """Builds a source-only package here (`pip wheel --no-deps`); it must be pure Python."""
    print(f"{requirement}: no wheel for the target; building one here")
    with tempfile.TemporaryDirectory() as tmp:
        done = pip("wheel", "-q", "--no-deps", "-c", str(cons), "-w", tmp, requirement)
        if done.returncode:
            raise SystemExit(f"device_wheels: {requirement}: build failed: {_last_error(done)}")
        (built,) = Path(tmp).glob("*.whl")
        if not built.name.endswith("-none-any.whl"):
            raise SystemExit(f"device_wheels: {built.name} is not pure Python; build it there")
        built.replace(dest / built.name)


def download(wanted: dict[str, str], dest: Path, python_version: str) -> None:
    """Fetches the wanted wheels that `dest` does not hold yet (one pip call)."""
    have = {wheel_name_version(f.name) for f in dest.glob("*.whl")}
    todo = [f"{n}=={v}" for n, v in wanted.items() if (n, v) not in have]
    if not todo:
        return
    done = pip(
        "download", "-q", "--no-deps", "-d", str(dest), *target_options(python_version), *todo
    )
    if done.returncode:
        raise SystemExit(f"device_wheels: download failed: {_last_error(done)}")


def tree_bytes(repo: Path) -> int:
    """Bytes of what travels with a device call: tracked and untracked-not-ignored files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    files = (repo / p for p in out.decode().split("\0") if p)
    return sum(f.stat().st_size for f in files if f.is_file())


def _last_error(done: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")] or [done.stderr]
    return lines[-1].strip()[:300]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=REPO / ".whl", help="wheel folder")
    parser.add_argument("--python-version", default=PYTHON_VERSION, help="target's Python")
    parser.add_argument(
        "--installed-file",
        type=Path,
        help="the target's packages, one `name[==version]` a line (pip freeze's output); "
        "replaces the GPU machines' list",
    )
    parser.add_argument("--installed", default="", help="comma-separated names the target also has")
    parser.add_argument(
        "--requirement",
        action="append",
        help="a requirement (repeatable); default: pyproject.toml's dependencies",
    )
    parser.add_argument("--lock", type=Path, default=REPO / "requirements.lock")
    parser.add_argument("--no-lock", action="store_true", help="newest versions, not the lock's")
    parser.add_argument("--limit-mib", type=float, default=TREE_LIMIT_MIB)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not re.fullmatch(r"3\.\d+", args.python_version):
        raise SystemExit(
            f"device_wheels: --python-version {args.python_version!r} not allowed; allowed: 3.N"
        )
    base = args.installed_file.read_text().splitlines() if args.installed_file else None
    installed = parse_pins(base if base is not None else GPU_MACHINE_PACKAGES)
    installed.update(parse_pins(args.installed.split(",")))
    lock = {} if args.no_lock else parse_pins(args.lock.read_text().splitlines())
    reqs = args.requirement or project_requirements(REPO / "pyproject.toml")
    args.dest.mkdir(parents=True, exist_ok=True)
    resolved = resolve(reqs, constraints(lock, installed), args.dest, args.python_version)
    wanted = missing(resolved, installed)
    download(wanted, args.dest, args.python_version)
    for name in stale((f.name for f in args.dest.glob("*.whl")), wanted):
        print(f"removing {name} (not needed, or another version)")
        (args.dest / name).unlink()
    return report(args.dest, wanted, args.limit_mib)


def report(dest: Path, wanted: dict[str, str], limit_mib: float) -> int:
    """Prints each wheel and the sizes; 1 when the wheels and the tree do not fit the limit."""
    files = sorted(dest.glob("*.whl"))
    for f in files:
        print(f"  {f.name}  {f.stat().st_size / 2**20:.2f} MiB")
    got = {wheel_name_version(f.name)[0] for f in files}
    if set(wanted) - got:
        print(f"device_wheels: missing from {dest}: {', '.join(sorted(set(wanted) - got))}")
        return 1
    size, tree = sum(f.stat().st_size for f in files), tree_bytes(REPO)
    mib = lambda n: f"{n / 2**20:.1f} MiB"
    print(
        f"{len(files)} wheels in {dest}: {mib(size)}; working tree {mib(tree)}; "
        f"together {mib(size + tree)} of {limit_mib:.0f} MiB"
    )
    if not fits(size, tree, limit_mib):
        print("device_wheels: the wheels and the working tree exceed the limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
