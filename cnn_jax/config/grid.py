"""Hyperparameter grids as members of one compiled run.

Settings that change no array shape (the learning rate, decoupled weight decay, L1 and L2
strengths: `TRACED`) can differ between the members of one K-member program, as seeds do:
the config's `grid` section lists, per grid point, the values of those fields and the
directory its seeds' records go to (relative to the run's workdir):

    config.grid = {"fields": ("optim.learning_rate",),
                   "values": ((1e-3,), (3e-3,), (1e-2,)),
                   "dirs": ("../lr0.001", "../lr0.003", "../lr0.01")}

A grid run is a small sweep of its own: each dir must resolve inside the folder holding the
workdir, beside it or below it (for a sweep's grid unit in `<root>/_grids/<name>/`, inside the
sweep root; `dirs_root`), and no two members' dirs may coincide or nest
(`check_member_dirs`), so a config cannot send records, or `train.overwrite`'s deletions,
anywhere else.

With `train.num_seeds = S`, the run trains G x S members, point-major: member k is grid point
k // S with seed `seed + k % S`. Members of one seed share its initialisation and its batch
order (common random numbers: the grid points' comparison is paired). Member k's metrics,
results and predictions go to `<workdir>/<dirs[g]>/seed_<s>/`, exactly where a separate
run of that setting would sit in a sweep, with `vmapped_parent` pointing back here.

The values reach the train step as per-member arrays in the batch (`with_hparams`), so every
seed strategy (vmap, unrolled, lax.map) maps them with the seed axis. The learning rate
enters as a factor on the configured schedule (every schedule is linear in its peak rate),
so a member trains as its separate run would, to float rounding. Dropout, noise and
augmentation strengths stay compile-time constants (Flax's Dropout branches on its rate):
their grid points are separate programs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import jax.numpy as jnp
import numpy as np

TRACED = ("optim.learning_rate", "optim.weight_decay", "optim.l1", "optim.l2")
UNITS_FOLDER = "_grids"  # a sweep's grid units train in <sweep root>/_grids/<name>/
KEYS = ("fields", "values", "dirs")


@dataclasses.dataclass(frozen=True)
class GridSpec:
    """The `grid` section: traced fields, one value tuple and one directory per grid point."""

    fields: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]  # [G][F]
    dirs: tuple[str, ...]  # [G], relative to the run's workdir

    @property
    def size(self) -> int:
        return len(self.values)

    def overrides(self, point: int) -> dict[str, float]:
        """{dotted field: value} of grid point `point`."""
        return dict(zip(self.fields, self.values[point]))

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | Any | None) -> GridSpec | None:
        """The checked spec, or None when the section is absent or empty (one ValueError line
        naming the field otherwise)."""
        if section is None:
            return None
        plain = section.to_dict() if hasattr(section, "to_dict") else dict(section)
        if not plain:
            return None
        unknown = sorted(set(plain) - set(KEYS))
        if unknown:
            raise ValueError(f"grid: unknown key(s) {unknown}; allowed: {', '.join(KEYS)}")
        fields = tuple(plain.get("fields") or ())
        bad = [f for f in fields if f not in TRACED] or (None if fields else ["(none)"])
        if bad or len(set(fields)) != len(fields):
            raise ValueError(
                f"grid.fields: {list(fields)!r}; allowed: distinct fields among "
                f"{', '.join(TRACED)} (other settings change the program: separate runs)"
            )
        values = tuple(tuple(_number(f, v) for f, v in zip(fields, _row(fields, r)))
                       for r in plain.get("values") or ())  # fmt: skip
        dirs = tuple(str(d) for d in plain.get("dirs") or ())
        if len(values) < 2 or len(dirs) != len(values) or len(set(dirs)) != len(dirs):
            raise ValueError(
                f"grid: {len(values)} value rows and {len(dirs)} dirs; allowed: at least 2 "
                "rows, one distinct dir per row"
            )
        for d in dirs:
            if not d or PurePosixPath(d).is_absolute() or d in (".", ""):
                raise ValueError(f"grid.dirs: {d!r}; allowed: a relative path, not '.'")
        return cls(fields, values, dirs)


def _row(fields: Sequence[str], row: Any) -> tuple:
    row = tuple(row) if isinstance(row, list | tuple) else (row,)
    if len(row) != len(fields):
        raise ValueError(
            f"grid.values: row {list(row)!r} has {len(row)} values; allowed: one per field "
            f"({', '.join(fields)})"
        )
    return row


def _number(field: str, value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    positive = field == "optim.learning_rate"
    if not ok or value < 0 or (positive and value == 0):
        allowed = "a finite number > 0" if positive else "a finite number >= 0"
        raise ValueError(f"grid.values: {field} = {value!r}; allowed: {allowed}")
    return float(value)


def num_members(spec: GridSpec | None, num_seeds: int) -> int:
    """How many members a run trains: G x S with a grid, else S."""
    return num_seeds * (spec.size if spec is not None else 1)


def member_seeds(spec: GridSpec | None, seed: int, num_seeds: int) -> tuple[int, ...]:
    """Each member's seed, point-major (see the module docstring)."""
    points = spec.size if spec is not None else 1
    return tuple(int(seed) + j for _ in range(points) for j in range(num_seeds))


def member_dirs(workdir: Path, spec: GridSpec | None, seeds: Sequence[int]) -> list[Path]:
    """Where each member's records go: the workdir for one member, `seed_<s>/` for K seeds,
    `<dirs[g]>/seed_<s>/` for a grid (`seeds` from `member_seeds`)."""
    if spec is None:
        return [workdir / f"seed_{s}" for s in seeds] if len(seeds) > 1 else [workdir]
    per_point = len(seeds) // spec.size
    return [workdir / spec.dirs[k // per_point] / f"seed_{s}" for k, s in enumerate(seeds)]


def dirs_root(workdir: Path) -> Path:
    """Where a run's grid member dirs may lie: the folder holding its workdir (the sweep root
    for a sweep's grid unit, which sits in `<root>/_grids/<name>/`)."""
    workdir = Path(workdir).resolve()
    return workdir.parent.parent if workdir.parent.name == UNITS_FOLDER else workdir.parent


def check_member_dirs(workdir: Path, spec: GridSpec, seeds: Sequence[int]) -> None:
    """Each grid dir resolves (links followed) strictly inside `dirs_root(workdir)`, and is
    neither the workdir nor above it, and no two members' dirs coincide or nest, since they
    would overwrite or delete each other's records: one ValueError line naming the dir."""
    workdir = Path(workdir).resolve()
    root = dirs_root(workdir).resolve()
    for d in spec.dirs:
        target = (workdir / d).resolve()
        if target == root or not target.is_relative_to(root):
            raise ValueError(
                f"grid.dirs: {d!r} resolves to {target}, not inside {root}; allowed: a dir "
                "beside or below the run's workdir (for a sweep's grid unit, in its sweep root)"
            )
        if workdir.is_relative_to(target):
            raise ValueError(
                f"grid.dirs: {d!r} resolves to {target}, which holds the run's own workdir; "
                "allowed: a dir of the members' own"
            )
    dirs = [m.resolve() for m in member_dirs(workdir, spec, seeds)]
    for i, a in enumerate(dirs):
        for b in dirs[i + 1 :]:
            if a.is_relative_to(b) or b.is_relative_to(a):
                raise ValueError(
                    f"grid.dirs: members' dirs {a} and {b} overlap (their records would "
                    "overwrite each other); allowed: dirs that neither coincide nor nest"
                )


def member_hparams(
    spec: GridSpec, num_seeds: int, base: Mapping[str, float]
) -> dict[str, np.ndarray]:
    """Per-member values [K] of each traced field, keyed by its optim name; the learning rate
    as `lr_scale` (member rate / configured rate: the factor on the schedule)."""
    out = {}
    for i, field in enumerate(spec.fields):
        name = field.split(".", 1)[1]
        column = np.repeat([row[i] for row in spec.values], num_seeds).astype(np.float32)
        if name == "learning_rate":
            name, column = "lr_scale", column / np.float32(base["learning_rate"])
        out[name] = column
    return out


def with_hparams(train_fn: Callable, hparams_k: Mapping[str, np.ndarray]) -> Callable:
    """The K-member train step with each member's values added to its batch (`hparams`)."""
    consts = {k: jnp.asarray(v) for k, v in hparams_k.items()}

    def train(state, batch):
        return train_fn(state, {**batch, "hparams": consts})

    return train


def member_config(config: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The plain config one member of a run trained with: seed, `num_seeds` 1, no grid, its
    grid point's values (for identity checks and for reading a member back)."""
    plain = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in plain.items()}
    train = dict(out.get("train") or {})
    num_seeds = int(train.get("num_seeds", 1) or 1)
    spec = GridSpec.from_config(out.pop("grid", None))
    point, j = divmod(int(index), num_seeds)
    out["seed"] = int(out.get("seed", 0) or 0) + j
    train["num_seeds"] = 1
    out["train"] = train
    for field, value in (spec.overrides(point) if spec is not None else {}).items():
        section, key = field.split(".", 1)
        out[section] = dict(out.get(section) or {}, **{key: value})
    return out
