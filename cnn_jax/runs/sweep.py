"""The one sweep engine: variants x seeds, sequential or vmapped seeds, resumable, checked.

Layout (both modes): seed s of variant v has its results.json, metrics.jsonl and
predictions/ in `workdir/<v>/seed_<s>/` (`run_dir`), which `runs.load_run` loads.
- Sequential: each seed trains as its own run in that directory.
- Vmapped (`vmap_seeds=True`): the pending seeds of a variant that form a consecutive run
  (e.g. 0, 1, 2) train as one program (`train.num_seeds = K`, `seed` = the first) in
  `workdir/<v>/` itself (config.json, checkpoints; the trainer writes the seed dirs).
  Seeds that do not fit that unit (non-consecutive, or added after the variant's unit
  finished) train sequentially into their seed dirs; a vmapped and a sequential run of one
  seed train the same model (to float rounding), so both count as that seed's result.

- Grids (`vmap_grids=True`, `plan_grids`): variants that differ only in traced fields
  (learning rate, weight decay, L1, L2: `cnn_jax.config.grid`) and wait for the same seeds train
  as one program in `workdir/_grids/<hash>/`, which writes each member's seed dir above
  (`vmapped_parent` points back), so a grid member and a separate run are interchangeable.

A member that diverged (NaN/Inf; the trainer froze it, `cnn_jax.steps.freeze_diverged`)
has a final results.json saying so: it is a cache hit like any finished run, never retrained,
and its row reads "diverged at step N"; `without_diverged` leaves such rows out of an
analysis, saying how many.

Every finished seed dir is a cache hit only when its run identity (`cnn_jax.config.identity`)
equals the asked one, else one ValueError line names the fields (`train.overwrite`
retrains it instead). An interrupted unit resumes from its checkpoint, so a killed sweep
restarts where it was and the final table is the same.

Units are jobs `(name, fn, kwargs)` with a module-level `fn` and plain kwargs (a config
dict, a path string), so any launcher with `run(jobs)` can execute them elsewhere (e.g. a
`cnn_jax.runs.launch.SlurmLauncher`); the default runs them here one after another, reporting each
row as soon as its unit ends: into the study's progress display when a study command opened
one (`cnn_jax.runs.progress`: one count across all sweeps, per-row lines only with --verbose),
else as one line per row.
Inside `progress.planning()` a sweep trains and reads nothing: it counts its runs and hands back
stand-in rows, so a study can count its whole total by running its own phases once.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import ml_collections

from cnn_jax import run_identity, run_results
from cnn_jax.config import grid, identity
from cnn_jax.outputs.writers import UnreadableJSONError, read_json
from cnn_jax.runs import launch, progress
from cnn_jax.train import train_and_evaluate

Job = tuple[str, Callable[..., Any], dict[str, Any]]


class Launcher(Protocol):
    """Runs jobs (name, fn, kwargs): each `fn(**kwargs)` trains one unit; returns when all end."""

    def run(self, jobs: Sequence[Job]) -> Any: ...


def run_dir(workdir: str | Path, variant: str, seed: int) -> Path:
    """Where one (variant, seed) run lives."""
    return Path(workdir) / variant / f"seed_{seed}"


def train_unit(config: dict[str, Any], workdir: str) -> dict[str, Any]:
    """A job: trains one unit (one seed, or K vmapped seeds) from a plain config dict."""
    return train_and_evaluate(ml_collections.ConfigDict(config), workdir)


@dataclasses.dataclass(frozen=True)
class Unit:
    """One trainer call of a sweep: a variant's seeds (or a grid of variants' seeds, see
    `plan_grids`) trained together in `workdir`."""

    variant: str
    seeds: tuple[int, ...]
    workdir: Path
    config: ml_collections.ConfigDict
    grid_variants: tuple[str, ...] = ()  # the variants of a grid unit, in member order

    @property
    def variants(self) -> tuple[str, ...]:
        return self.grid_variants or (self.variant,)

    def job(self) -> Job:
        seeds = f"seed_{self.seeds[0]}" + (f"-{self.seeds[-1]}" if len(self.seeds) > 1 else "")
        more = f" (+{len(self.grid_variants) - 1} grid points)" if self.grid_variants else ""
        kwargs = {"config": self.config.to_dict(), "workdir": str(self.workdir)}
        return f"{self.variant}/{seeds}{more}", train_unit, kwargs


def _seed_config(base: ml_collections.ConfigDict, seed: int, num_seeds: int = 1):
    config = base.copy_and_resolve_references()
    config.seed, config.train.num_seeds, config.train.quiet = int(seed), int(num_seeds), True
    return config


def cached_results(path: Path, config: ml_collections.ConfigDict, seed: int) -> dict | None:
    """The finished results in `path` if they are this (config, seed)'s, None if the dir is
    unfinished or (with train.overwrite) to be retrained; another identity raises."""
    if not (path / "results.json").exists():
        return None
    try:
        results = read_json(path / "results.json")
    except UnreadableJSONError as e:  # cut short (a kill, a full disk)
        if (path / "config.json").is_file():  # a run of its own: the trainer writes it again
            return None
        raise ValueError(
            f"{e}; it is a member's record, which only its finished unit wrote; allowed: "
            "restore it, or delete it and run the same command again (which then says how "
            "to retrain its unit)"
        ) from None
    parent = run_results.member_parent(path, results)
    stored = identity.stored_config(parent)
    if stored is None:
        raise ValueError(
            f"workdir: {path} has results.json but no config.json in {parent}; allowed: "
            "a new --workdir, or delete that run"
        )
    member = run_identity.member_fields(stored, int(results.get("seed_index", 0)))
    diffs = identity.differences(member, run_identity.seed_fields(config, seed))
    if not diffs:
        return results
    if config.train.get("overwrite", False):
        if parent != path:  # a seed of a vmapped unit: retrain it on its own
            shutil.rmtree(path)
        return None
    fix = "the same settings, a new --workdir, or --config.train.overwrite=True to retrain"
    raise ValueError(identity.mismatch_message(path, diffs, fix))


def _consecutive_prefix(seeds: Sequence[int]) -> tuple[int, ...]:
    ordered = sorted(seeds)
    run = [ordered[0]]
    while len(run) < len(ordered) and ordered[len(run)] == run[-1] + 1:
        run.append(ordered[len(run)])
    return tuple(run)


def plan_variant(
    variant: str,
    base: ml_collections.ConfigDict,
    workdir: Path,
    pending: Sequence[int],
    vmap_seeds: bool,
) -> list[Unit]:
    """The trainer calls that produce a variant's pending seeds (see the module docstring)."""
    units, rest = [], list(pending)
    home = workdir / variant
    if vmap_seeds and rest:
        stored = identity.stored_config(home)
        if stored is None and len(rest) > 1:
            seeds = _consecutive_prefix(rest)
        elif stored is not None and not (home / "results.json").exists():
            first, k = int(stored.get("seed", 0)), int(stored["train"].get("num_seeds", 1))
            seeds = (
                tuple(range(first, first + k)) if set(rest) & set(range(first, first + k)) else ()
            )
        else:
            seeds = ()
        if len(seeds) > 1:
            units.append(Unit(variant, seeds, home, _seed_config(base, seeds[0], len(seeds))))
            rest = [s for s in rest if s not in seeds]
    for seed in rest:
        units.append(
            Unit(variant, (seed,), run_dir(workdir, variant, seed), _seed_config(base, seed))
        )
    return units


def _grid_key(config: ml_collections.ConfigDict) -> str:
    """What must be equal for variants to share a grid unit: everything but the traced fields
    and the seed."""
    flat = run_identity.fields(config)
    for name in (*grid.TRACED, "seed", "train.num_seeds"):
        flat.pop(name, None)
    return identity.digest(flat)


def plan_grids(
    configs: Mapping[str, ml_collections.ConfigDict],
    workdir: Path,
    pending: Mapping[str, tuple[int, ...]],
    max_members: int = 16,
) -> tuple[list[Unit], set[str]]:
    """Grid units (`cnn_jax.config.grid`) for the pending variants that differ only in traced
    fields (learning rate, weight decay, L1, L2) and wait for the same consecutive seeds:
    each unit (at most `max_members` members) trains in `workdir/_grids/<hash>/` and writes
    every member's record where its own run would be. Returns (units, variants planned)."""
    groups: dict[tuple, list[str]] = {}
    for variant, seeds in pending.items():
        if seeds and _consecutive_prefix(seeds) == tuple(sorted(seeds)):
            groups.setdefault((_grid_key(configs[variant]), seeds), []).append(variant)
    units, planned = [], set()
    for (_, seeds), variants in groups.items():
        per_unit = max(1, max_members // len(seeds))
        for i in range(0, len(variants), per_unit):
            unit = _grid_unit(configs, workdir, variants[i : i + per_unit], seeds)
            if unit is not None:
                units.append(unit)
                planned.update(unit.variants)
    return units, planned


def _grid_unit(configs, workdir: Path, variants: Sequence[str], seeds: tuple[int, ...]):
    """One grid unit of `variants` x `seeds`, or None when they do not differ in a traced
    field (nothing to vary) or there is only one."""
    flat = [identity.fields(configs[v]) for v in variants]
    fields = tuple(f for f in grid.TRACED if len({float(x.get(f, 0.0)) for x in flat}) > 1)
    if len(variants) < 2 or not fields:
        return None
    values = [[float(x.get(f, 0.0)) for f in fields] for x in flat]
    name = identity.digest({"variants": list(variants), "seeds": list(seeds), "key": values})
    home = workdir / grid.UNITS_FOLDER / name
    config = _seed_config(configs[variants[0]], seeds[0], len(seeds))
    dirs = tuple(os.path.relpath(workdir / v, home) for v in variants)
    config.grid = ml_collections.ConfigDict(
        {"fields": fields, "values": tuple(map(tuple, values)), "dirs": dirs}
    )
    return Unit(variants[0], seeds, home, config, grid_variants=tuple(variants))


def run_sweep(
    configs: Mapping[str, ml_collections.ConfigDict],
    workdir: str | Path,
    seeds: Sequence[int],
    *,
    vmap_seeds: bool = True,
    vmap_grids: bool = False,
    launcher: Launcher | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Trains every variant with every seed; returns rows {variant, seed, run_dir, results,
    status} in (variant, seed) order. `launcher.run(jobs)` trains the pending units (default:
    here, one by one, each row reported as soon as its unit ends). With `vmap_grids`, the
    variants that differ only in traced fields train as grid units (`plan_grids`)."""
    workdir, seeds = Path(workdir), [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"seeds: {seeds}; allowed: one or more distinct integers")
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    t0 = time.time()
    if (plan := progress.planning_now()) is not None:  # a planning pass: count, train nothing
        return plan.count(configs, seeds, lambda v, s: str(run_dir(workdir, v, s)))
    counter = _Reporter(len(configs) * len(seeds), verbose, on_result)
    display = progress.current()
    if display is not None:
        display.add(len(configs) * len(seeds))
    pending: dict[str, tuple[int, ...]] = {}
    for variant, base in configs.items():
        waiting = []
        for seed in seeds:
            path = run_dir(workdir, variant, seed)
            results = cached_results(path, _seed_config(base, seed), seed)
            if results is None:
                waiting.append(seed)
            else:
                rows[variant, seed] = counter.report(variant, seed, path, results, "cached", t0)
        pending[variant] = tuple(waiting)
    units, planned = plan_grids(configs, workdir, pending) if vmap_grids else ([], set())
    for variant, base in configs.items():
        if variant not in planned:
            units += plan_variant(variant, base, workdir, pending[variant], vmap_seeds)
    refuse_finished_units(units, workdir)
    if launcher is None and units:  # the configs' `launcher` section; local: None
        launcher = launch.configured(units[0].config, workdir)
    if launcher is None:
        for unit in units:
            t0 = time.time()
            name, fn, kwargs = unit.job()
            if display is not None:
                display.unit(name)
            fn(**kwargs)
            rows.update(_unit_rows(unit, workdir, counter, t0))
    elif units:
        t0 = time.time()
        if display is not None:
            display.unit(f"{len(units)} units through {type(launcher).__name__}")
        launcher.run([unit.job() for unit in units])
        for unit in units:
            rows.update(_unit_rows(unit, workdir, counter, t0))
    return [rows[variant, seed] for variant in configs for seed in seeds]


def without_diverged(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the runs that trained to the end: a diverged member's (no accuracy, no
    predictions) is left out, and one stderr line says how many were and which."""
    kept = [r for r in rows if run_results.diverged_text(r["results"]) is None]
    left = [r for r in rows if run_results.diverged_text(r["results"]) is not None]
    if left:
        named = [f"{r['variant']} seed {r['seed']} ({run_results.diverged_text(r['results'])})"
                 for r in left]  # fmt: skip
        shown = "; ".join(named[:3]) + (f" (+{len(named) - 3} more)" if len(named) > 3 else "")
        print(
            f"note: {len(left)} of {len(rows)} runs diverged and are left out of the analysis: "
            f"{shown}",
            file=sys.stderr,
            flush=True,
        )
    return kept


def refuse_finished_units(units: Sequence[Unit], workdir: Path) -> None:
    """Refuses, before anything trains, a grid unit that is already finished although its
    members' records are missing (deleted): the trainer would return the unit's results and
    write no member's, so the sweep could never get them. One line saying how to retrain."""
    for unit in units:
        if unit.grid_variants and (unit.workdir / "results.json").exists():
            member = run_dir(workdir, unit.grid_variants[0], unit.seeds[0]) / "results.json"
            raise ValueError(
                f"sweep: {member} and the other records of grid unit {unit.job()[0]} are "
                f"missing, but the unit in {unit.workdir} is finished; allowed: restore them, "
                f"or delete {unit.workdir} and run the same command again to retrain it"
            )


def _unit_rows(unit: Unit, workdir: Path, counter: _Reporter, t0: float) -> dict:
    out = {}
    for variant in unit.variants:
        for seed in unit.seeds:
            path = run_dir(workdir, variant, seed)
            if not (path / "results.json").exists():
                raise RuntimeError(f"sweep: unit {unit.job()[0]} ended without {path}/results.json")
            results = read_json(path / "results.json")
            out[variant, seed] = counter.report(variant, seed, path, results, "trained", t0)
    return out


class _Reporter:
    """Counts each row (the study's progress display, when open), prints its line
    (`progress.say`: with a display open, only when verbose) and calls `on_result`."""

    def __init__(self, total: int, verbose: bool, on_result: Callable | None):
        self.total, self.done, self.verbose, self.on_result = total, 0, verbose, on_result

    def report(
        self, variant: str, seed: int, path: Path, results: dict, status: str, t0: float
    ) -> dict[str, Any]:
        row = {
            "variant": variant,
            "seed": seed,
            "run_dir": str(path),
            "results": results,
            "status": status,
        }
        self.done += 1
        display = progress.current()
        if display is not None:
            display.finished(cached=status == "cached")
        if self.verbose:
            outcome = run_results.diverged_text(results)
            outcome = outcome or f"test accuracy {results['test_accuracy']:.4f}"
            progress.say(
                f"[{self.done}/{self.total}] {variant} seed {seed}: {outcome} "
                f"({status}, {time.time() - t0:.1f} s)"
            )
        if self.on_result is not None:
            self.on_result(row)
        return row
