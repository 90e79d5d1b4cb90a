"""The `launcher` config section: where a sweep trains its units (here, or as SLURM jobs).

Its fields, defaults and one-line checks live here, below the launchers themselves
(`cnn_jax.runs.launch`), so `validate_config` can refuse a typo before anything trains.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ml_collections

NAMES = ("local", "slurm")

# (field, type, smallest allowed value) of the numeric launcher fields.
NUMBERS = (
    ("timeout_min", int, 1),
    ("cpus_per_task", int, 1),
    ("gpus_per_node", int, 0),
    ("mem_gb", float, 0),
    ("array_parallelism", int, 1),
    ("max_num_timeout", int, 0),
    ("poll_s", float, 0.1),
    ("max_pending_min", float, 0.1),
)

STRINGS = ("partition", "folder")

KEYS = ("name", *STRINGS, *(name for name, _, _ in NUMBERS))


def default_config() -> ml_collections.ConfigDict:
    """The `launcher` config section: in-process by default; `name="slurm"` for a cluster."""
    p = ml_collections.config_dict.placeholder
    return ml_collections.ConfigDict(
        {
            "name": "local",
            "partition": p(str),  # None: the cluster's default partition
            "timeout_min": 60,  # per job; a job that hits it is requeued and resumes
            "cpus_per_task": 4,
            "gpus_per_node": 0,
            "mem_gb": p(float),  # None: the partition's default memory
            "array_parallelism": 64,  # at most this many jobs of the array at once
            "max_num_timeout": 3,  # requeues after a time-out before the job fails
            "folder": p(str),  # None: <sweep workdir>/slurm (submitit's pickles and logs)
            "poll_s": 5.0,  # how often the sweep checks its jobs
            # Give up (cancel the jobs left, exit 1) once none of the sweep's jobs has run for
            # this long: a day outlasts a busy queue, yet an unattended sweep whose jobs can
            # never start stops the same day.
            "max_pending_min": 1440.0,
        }
    )


def check_section(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """The `launcher` section as plain values (None: {}), or one ValueError naming the
    bad field (called by `validate_config`, so a typo fails before anything trains)."""
    if section is None:
        return {}
    if hasattr(section, "to_dict"):
        section = section.to_dict()
    if not isinstance(section, Mapping):
        raise ValueError(f"launcher: {section!r} not allowed; allowed: a config section")
    values = dict(section)
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ValueError(
            f"launcher.{unknown[0]}: unknown key {unknown}; allowed: {', '.join(KEYS)}"
        )
    name = values.get("name", "local")
    if name not in NAMES:
        raise ValueError(f"launcher.name: {name!r} not allowed; allowed: {', '.join(NAMES)}")
    for key, kind, minimum in NUMBERS:
        value = values.get(key)
        if value is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and (kind is float or isinstance(value, int)) and value >= minimum:
            continue
        allowed = "an integer" if kind is int else "a number"
        raise ValueError(f"launcher.{key}: {value!r} not allowed; allowed: {allowed} >= {minimum}")
    for key in STRINGS:
        if values.get(key) is not None and not isinstance(values[key], str | Path):
            raise ValueError(f"launcher.{key}: {values[key]!r} not allowed; allowed: a string")
    return values
