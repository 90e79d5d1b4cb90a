"""A memory estimate of a run, checked before anything is allocated.

`train.num_seeds` (K seeds in one program), the batch, the canvas and the model multiply
into memory that, past the machine's, gets the process killed by the kernel mid-run with
no message. `check` compares a deliberately rough, upper-side estimate with the memory
available and refuses the run in one line naming the field to reduce.

Estimate (bytes), from shapes only (`jax.eval_shape`, nothing computed):
- per seed: parameters x 4 copies (weights, gradients, two Adam moments) + 1 more for the
  early-stopping best copy, float32; activations of one training batch x 3 (forward values
  kept for the backward pass, their gradients, workspace), float32;
- shared: the images in memory as uint8 (train + validation + test), and one evaluation
  batch's activations per seed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.nn.model_spec import ModelSpec
from cnn_jax.nn.models import CNN

GIB = 2**30
# Images per dataset (all splits) when the dataset is one of the built-in ones.
DATASET_IMAGES = {"digits": 1797, "mnist": 70000, "fashion_mnist": 70000}
DEFAULT_IMAGES = 70000
USABLE_FRACTION = 0.9  # of the available memory


def _model_sizes(spec: ModelSpec, image_shape: tuple[int, int, int]) -> tuple[int, int]:
    """(parameter count, activation elements per example) of the model."""
    model = CNN(spec)
    x = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)

    def forward(x_bhwc):
        variables = model.init(jax.random.key(0), x_bhwc, train=False)
        return variables, model.apply(variables, x_bhwc, train=False)

    variables, (logits, inter) = jax.eval_shape(forward, x)
    params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(variables))
    acts = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(inter)) + int(np.prod(logits.shape))
    return params, acts


def estimate_bytes(
    spec: ModelSpec,
    image_shape: tuple[int, int, int],
    train: Mapping[str, Any],
    dataset: str,
    train_subset: int | None = None,
) -> dict[str, int]:
    """{'per_seed', 'shared', 'total'} bytes of a run (see the module docstring)."""
    params, acts = _model_sizes(spec, tuple(image_shape))
    seeds, batch = int(train.get("num_seeds", 1) or 1), int(train["batch_size"])
    eval_batch = int(train.get("eval_batch_size", 0) or max(batch, 256))
    per_seed = 5 * params * 4 + 3 * batch * acts * 4 + eval_batch * acts * 4
    images = DATASET_IMAGES.get(dataset, DEFAULT_IMAGES)
    if train_subset:
        images = min(images, int(train_subset) + images // 5)
    shared = images * int(np.prod(image_shape))
    return {"per_seed": per_seed, "shared": shared, "total": seeds * per_seed + shared}


def available_bytes() -> int | None:
    """Free memory of the first device (accelerators), or of the host (CPU) within this
    process's cgroup limit (a container or a SLURM job sees its limit, not the machine's);
    None if unknown."""
    device = jax.local_devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    known = [b for b in (_host_available_bytes(), cgroup_available_bytes()) if b is not None]
    return min(known) if known else None


def _host_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


# (controller dir under the cgroup mount, limit file, usage file): cgroup v2, then v1.
_CGROUP_FILES = (("", "memory.max", "memory.current"),
                 ("memory", "memory.limit_in_bytes", "memory.usage_in_bytes"))  # fmt: skip
_UNLIMITED = 2**60  # v1 writes "no limit" as a page-rounded 2**63 - 1


def cgroup_available_bytes(
    proc_cgroup: Path = Path("/proc/self/cgroup"), mount: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """The tightest (limit - usage) of this process's memory cgroup and its ancestors, v2 or
    v1 (the kernel's per-cgroup accounting, Documentation/admin-guide/cgroup-v2.rst); None
    without a memory limit."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    found = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for sub, limit_file, usage_file in _CGROUP_FILES:
            if (controllers == "") != (sub == "") or (sub and sub not in controllers.split(",")):
                continue
            base = mount / sub if sub else mount
            for folder in _ancestors(base, path):
                found.append(_headroom(folder / limit_file, folder / usage_file))
    known = [b for b in found if b is not None]
    return min(known) if known else None


def _ancestors(base: Path, path: str) -> list[Path]:
    """`base/path` and each of its parents up to `base` (those that exist)."""
    parts = [p for p in path.strip("/").split("/") if p]
    folders = [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return [f for f in folders if f.is_dir()]


def _headroom(limit_file: Path, usage_file: Path) -> int | None:
    try:
        limit, usage = limit_file.read_text().strip(), int(usage_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if limit == "max" or not limit.isdigit() or int(limit) >= _UNLIMITED:
        return None
    return max(int(limit) - usage, 0)


def check(
    spec: ModelSpec,
    image_shape: tuple[int, int, int],
    train: Mapping[str, Any],
    dataset: str,
    train_subset: int | None = None,
    members_field: str = "train.num_seeds",
) -> None:
    """Raises one ValueError line when the estimate exceeds 90% of the available memory,
    naming the field to lower (`members_field`: what sets `train["num_seeds"]`, the
    program's members: seeds, or grid points x seeds)."""
    free = available_bytes()
    if free is None:
        return
    need = estimate_bytes(spec, image_shape, train, dataset, train_subset)
    usable = USABLE_FRACTION * free
    if need["total"] <= usable:
        return
    seeds = int(train.get("num_seeds", 1) or 1)
    fits = int((usable - need["shared"]) // need["per_seed"]) if usable > need["shared"] else 0
    by_members = seeds > 1 and fits >= 1
    field = members_field if by_members else "train.batch_size"
    value = seeds if by_members else train["batch_size"]
    unit = "seeds" if members_field == "train.num_seeds" else "members (grid points x seeds)"
    allowed = f"at most {fits} {unit}" if by_members else "a smaller batch"
    shape = "x".join(str(d) for d in image_shape)
    raise ValueError(
        f"{field}: {value} needs about {need['total'] / GIB:.1f} GiB ({seeds} seed(s), batch "
        f"{train['batch_size']}, {shape} images; estimate), more than the "
        f"{free / GIB:.1f} GiB available; allowed: {allowed} (or a smaller canvas or model)"
    )
