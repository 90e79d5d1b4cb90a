"""Data parallelism with `jax.jit` over a 1-axis device Mesh('data') (no pmap).

The batch is split over the 'data' axis, parameters and optimizer state are replicated,
and XLA inserts the gradient all-reduce. Multi-host: every process calls
`initialize_distributed()` first, builds the same global mesh over `jax.devices()`, and
feeds only its own slice of each global batch (`shard_batch`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Starts multi-process JAX (`jax.distributed.initialize`); arguments auto-detect on
    TPU pods and SLURM/Open MPI GPU clusters, or give them explicitly (localhost works)."""
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )


def make_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-axis mesh named 'data' over all (global) devices."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy on every device (params, optimizer state)."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, seed_axis: bool = False) -> NamedSharding:
    """Splits the batch axis over 'data': axis 0, or axis 1 after a leading seed axis."""
    spec = PartitionSpec(None, DATA_AXIS) if seed_axis else PartitionSpec(DATA_AXIS)
    return NamedSharding(mesh, spec)


def check_batch_size(global_batch_size: int, mesh: Mesh, field: str = "train.batch_size") -> None:
    """Raises one clear line if the global batch does not split evenly over devices."""
    n = mesh.devices.size
    if global_batch_size % n:
        raise ValueError(
            f"{field}: {global_batch_size} not divisible by the {n} devices; "
            f"allowed: multiples of {n}"
        )


def local_batch_slice(global_batch_size: int) -> slice:
    """This process's rows of each global batch (all rows in a single-process run)."""
    per_process = global_batch_size // jax.process_count()
    start = jax.process_index() * per_process
    return slice(start, start + per_process)


def shard_batch(
    local_batch: Mapping[str, np.ndarray], mesh: Mesh, seed_axis: bool = False
) -> dict[str, jax.Array]:
    """Builds global batch arrays, sharded over 'data', from this process's local rows."""
    sharding = batch_sharding(mesh, seed_axis)
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
        for k, v in local_batch.items()
    }


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Places every leaf of `tree` on all devices of `mesh`."""
    return jax.device_put(tree, replicated(mesh))
