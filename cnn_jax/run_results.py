"""A finished run's record: results.json (whole run and per seed) and per-image predictions.

Layout: a single-seed run writes everything into its workdir; a K-seed (vmapped) run
writes results.json with every seed's entry into its workdir and, per seed, `seed_<s>/`
holding metrics.jsonl, results.json (with `vmapped_parent` and `seed_index`, so
`runs.load_run(seed dir)` finds the model) and `predictions/{validation,test}.npz`.
`previous_run` reads a workdir's record back: finished, partial, or trained otherwise.
A member that diverged (frozen by the trainer, `steps.freeze_diverged`) has a record too, a
final one: `diverged` {'step', 'what'}, `test_accuracy` null, no `final` metrics and no
predictions (`mark_diverged`, `diverged_text`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from cnn_jax import metrics, run_identity, seed_strategy
from cnn_jax.config import grid, identity
from cnn_jax.early_stopping import EarlyStopping
from cnn_jax.outputs import predictions
from cnn_jax.outputs.writers import (
    UnreadableJSONError,
    atomic_write_json,
    file_sha256,
    git_revision,
    read_json,
)
from cnn_jax.system import checkpoint

PREDICTED_SPLITS = ("validation", "test")
DIVERGED = "diverged"  # a member's results.json: {'step': N, 'what': 'loss' | ...}


def shared_fields(
    run: Any,
    model_summary: Any,
    *,
    step: int,
    start_step: int,
    timed_from_step: int,
    train_time: float,
    wall_time: float,
) -> dict[str, Any]:
    """What every seed of the run shares: budget, model size, data, machine, timing (the
    seconds of every process that trained it; `train_time` covers the steps after
    `timed_from_step`)."""
    trained = (step - timed_from_step) * run.train.batch_size * run.num_seeds
    return {
        "steps": step,
        "epochs": run.num_epochs,
        "num_params": model_summary.total_params,
        "forward_flops_per_example": model_summary.total_flops,
        "model": run.spec.name,
        "dataset": run.dataset.name,
        "image_shape": list(run.dataset.image_shape),
        "train_examples": len(run.dataset.train),
        "devices": run.mesh.devices.size,
        "processes": jax.process_count(),
        "num_seeds": run.num_seeds,
        "train_time_sec": train_time,
        "train_images_per_sec": trained / max(train_time, 1e-9),
        "wall_time_sec": wall_time,
        "resumed_from_step": start_step,
        "git_revision": git_revision(),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "seed_strategy": seed_strategy.describe(run),  # K > 1: how the seeds ran
        identity.KEY: run_identity.of(run.config),
    }


def seed_entries(
    seeds: tuple[int, ...], final: Mapping[str, list[dict]], early: EarlyStopping | None
) -> list[dict[str, Any]]:
    """One entry per seed: its final metrics per split, test accuracy, early-stopping epoch."""
    entries = []
    for k, seed in enumerate(seeds):
        seed_final = {name: per_seed[k] for name, per_seed in final.items()}
        headline = seed_final["test"][metrics.HEADLINE]
        entry = {"seed": seed, "final": seed_final, "test_accuracy": headline}
        if early is not None:
            entry["best_epoch"] = int(early.state["best_epoch"][k])
            entry["stopped_early"] = bool(early.stopped[k])
        entries.append(entry)
    return entries


def mark_diverged(entry: dict[str, Any], diverged: Mapping[str, Any]) -> None:
    """Makes a member's entry say that it diverged ({'step', 'what'}) and drops every metric
    that could be read as its result (its frozen parameters are no trained model)."""
    for key in ("final", "best_epoch", "stopped_early"):
        entry.pop(key, None)
    entry["test_accuracy"] = None
    entry[DIVERGED] = dict(diverged)


def diverged_text(results: Any) -> str | None:
    """'diverged at step N' for a diverged member's results, else None."""
    diverged = results.get(DIVERGED) if isinstance(results, dict) else None
    if not isinstance(diverged, dict):
        return None
    return f"diverged at step {diverged.get('step')}"


def write_predictions(
    dirs: Sequence[Path],
    split_labels: Mapping[str, Any],
    per_example: Mapping[str, dict],
    skip: Collection[int] = (),
) -> list[dict[str, str]]:
    """`<member dir>/predictions/<split>.npz` for every member (`RunSetup.member_dirs`) and
    predicted split, but none for the members in `skip` (diverged); returns each member's
    {split: sha256 of its file}, which its results hold (`predictions.HASHES`) so that readers
    can tell the file is the one the run wrote."""
    hashes: list[dict[str, str]] = [{} for _ in dirs]
    for name, outputs in per_example.items():
        top1, p_correct, logits = outputs["top1"], outputs["p_correct"], outputs.get("logits")
        if len(dirs) == 1:
            top1, p_correct = top1[None], p_correct[None]
            logits = None if logits is None else logits[None]
        for k, member_dir in enumerate(dirs):
            if k in skip:
                continue
            path = predictions.path_of(member_dir, name)
            predictions.save(
                path,
                labels_n=split_labels[name],
                top1_n=top1[k],
                p_correct_n=p_correct[k],
                logits_nc=None if logits is None else logits[k],
            )
            hashes[k][name] = file_sha256(path)
    return hashes


def assemble(
    seeds: tuple[int, ...], shared: dict[str, Any], entries: list[dict[str, Any]]
) -> dict[str, Any]:
    """The run's results: one seed's entry merged in, or all seeds' with the mean accuracy of
    those that did not diverge (and how many did, `diverged_members`)."""
    if len(seeds) == 1:
        return dict(shared, **entries[0])
    results = dict(shared, per_seed=entries, seeds=list(seeds))
    finished = [e["test_accuracy"] for e in entries if DIVERGED not in e]
    results["test_accuracy"] = float(np.mean(finished)) if finished else None
    if len(finished) < len(entries):
        results["diverged_members"] = len(entries) - len(finished)
    return results


def write_results(
    workdir: Path,
    dirs: Sequence[Path],
    seeds: tuple[int, ...],
    shared: dict[str, Any],
    entries: list[dict[str, Any]],
) -> dict[str, Any]:
    """Writes results.json (and each member's in its dir for K > 1 members, with the path
    back to this run and its index); returns the run's results."""
    results = assemble(seeds, shared, entries)
    if len(seeds) > 1:
        for k, (entry, member_dir) in enumerate(zip(entries, dirs)):
            parent = os.path.relpath(workdir, member_dir)
            seed_results = dict(shared, **entry, vmapped_parent=parent, seed_index=k)
            atomic_write_json(member_dir / "results.json", seed_results)
    atomic_write_json(workdir / "results.json", results)
    return results


_OUTPUTS = ("checkpoints", "config.json", "results.json", "metrics.jsonl", "predictions")
_EVENTS = "events.out.tfevents.*"
_DISCARD = "a new --workdir, or --config.train.overwrite=True to discard that run"
_EXTEND = (
    "to train it on, a new --workdir with --extend={workdir} (train.extend_from); or "
    "--config.train.overwrite=True to discard it"
)


def _epochs_only(diffs: Sequence[str]) -> bool:
    """Whether the settings differ in the epoch count alone (the run could be extended)."""
    return all(d.startswith("train.num_epochs:") for d in diffs)


def _member_dirs(workdir: Path, stored: dict[str, Any]) -> list[Path]:
    """The member dirs of the stored K-member run in `workdir` (none for a single run)."""
    seed, num = int(stored.get("seed", 0)), int((stored.get("train") or {}).get("num_seeds", 1))
    spec = grid.GridSpec.from_config(stored.get("grid"))
    seeds = grid.member_seeds(spec, seed, num)
    if spec is not None:  # a config.json's dirs are checked as the command's were
        grid.check_member_dirs(workdir, spec, seeds)
    return grid.member_dirs(workdir, spec, seeds) if len(seeds) > 1 else []


def check_members_free(workdir: Path, dirs: Sequence[Path]) -> None:
    """Refuses member dirs whose results.json is another run's (a separate run's own, or a
    member of another grid or K-seed run), before this run writes over them: one line."""
    for member_dir in dirs:
        path = member_dir / "results.json"
        if not path.is_file():
            continue
        results = read_json(path)
        parent = results.get("vmapped_parent") if isinstance(results, dict) else None
        parent = parent if isinstance(parent, str) and parent else None
        if parent is None or (member_dir / parent).resolve() != workdir.resolve():
            owner = f"the run in {(member_dir / parent).resolve()}" if parent else "its own run"
            raise ValueError(
                f"grid.dirs: {member_dir} holds the results of {owner}; allowed: dirs of this "
                "run's own, or a new --workdir"
            )


def member_parent(run_dir: Path, results: dict[str, Any]) -> Path:
    """The run that trained `run_dir` (`run_dir` itself unless its results.json names a
    `vmapped_parent`). A parent is followed only if its own config.json lists `run_dir` as
    member `seed_index`: a results file cannot send a reader to another directory."""
    if "vmapped_parent" not in results:
        return run_dir
    value, k = results["vmapped_parent"], results.get("seed_index")
    where = f"{Path(run_dir) / 'results.json'}: vmapped_parent {value!r}"
    parent = Path(run_dir) / value if isinstance(value, str) and value else None
    stored = identity.stored_config(parent) if parent is not None else None
    members = _member_dirs(parent, stored) if stored is not None else []
    listed = type(k) is int and 0 <= k < len(members)
    if not listed or members[k].resolve() != Path(run_dir).resolve():
        raise ValueError(
            f"{where} is not the run that trained this member (no config.json there lists it "
            f"as member {k!r}); allowed: the path the trainer wrote, or retrain the run"
        )
    return parent


def _clear(workdir: Path, stored: dict[str, Any] | None) -> None:
    """Removes what the trainer wrote for the stored run (train.overwrite); without a
    readable config.json, the run's own files (its member dirs are not known)."""
    members = _member_dirs(workdir, stored) if stored is not None else []
    for path in [workdir / n for n in _OUTPUTS] + members + list(workdir.glob(_EVENTS)):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _checkpoint_conflict(workdir: Path, wanted: dict[str, Any], proven: bool) -> str | None:
    """Why the newest checkpoint is not this run's: saved with other settings, or (when
    config.json does not `proven` it) with no identity at all; None when it agrees."""
    newest = checkpoint.newest_identity(workdir / "checkpoints")
    if newest is None:
        return None
    step, fields = newest
    where = f"workdir: {workdir / 'checkpoints'} step {step}"
    if fields is None:
        if proven:
            return None
        return (
            f"{where} carries no run identity and config.json is missing, so nothing proves "
            f"which settings trained it; allowed: {_DISCARD}"
        )
    diffs = identity.differences(run_identity.canonical(fields), wanted)
    if diffs:
        return f"{where} was trained with other settings ({identity.describe(diffs)}); " + (
            f"allowed: {_DISCARD}"
        )
    return None


def _results_conflict(workdir: Path, expected: set[str]) -> str | None:
    """Why results.json is not this run's (it holds none of the `expected` identity hashes),
    or None."""
    try:
        results = read_json(workdir / "results.json")
    except (FileNotFoundError, UnreadableJSONError):  # none, or cut short: written again
        return None
    held = results.get(identity.KEY) if isinstance(results, dict) else None
    if held is None or held in expected:
        return None
    return (
        f"workdir: {workdir / 'results.json'} holds the results of another run (run_identity "
        f"{held!r}, this config's {' or '.join(sorted(expected))}); allowed: {_DISCARD}"
    )


def _conflict(
    config: ml_collections.ConfigDict, workdir: Path, stored: dict[str, Any] | None
) -> str | None:
    """Why `workdir` holds, or may hold, another run than `config`'s: config.json, the
    newest checkpoint and results.json must each agree with it (so a lost or replaced
    config.json proves nothing); one line, or None."""
    wanted = run_identity.fields(config)
    if stored is not None:
        diffs = identity.differences(run_identity.fields(stored), wanted)
        if diffs:
            kind = "finished" if (workdir / "results.json").exists() else "partial"
            fix = _EXTEND if kind == "finished" and _epochs_only(diffs) else _DISCARD
            return identity.mismatch_message(workdir, diffs, fix.format(workdir=workdir), kind)
    held = stored is not None and identity.stored_hash(workdir)
    expected = {held} if held else run_identity.accepted_hashes(config)
    return _checkpoint_conflict(workdir, wanted, stored is not None) or _results_conflict(
        workdir, expected
    )


def previous_run(
    config: ml_collections.ConfigDict, workdir: Path, *, locked: bool = False
) -> dict[str, Any] | None:
    """The finished results of this very run in `workdir`, or None (nothing, or a partial run
    of the same identity to resume). Another identity, or one nothing proves, raises one line,
    or is cleared with `train.overwrite`, but only by a caller holding the workdir's lock
    (`locked`): a second process must never delete what a live run is writing."""
    try:
        stored = identity.stored_config(workdir)
    except ValueError as unreadable:  # config.json damaged: it proves nothing
        stored, conflict = None, str(unreadable)
    else:
        conflict = _conflict(config, workdir, stored)
    if conflict and config.train.get("overwrite", False):
        if locked and jax.process_index() == 0:
            _clear(workdir, stored)
        return None
    if conflict:
        raise ValueError(conflict)
    if stored is not None and (workdir / "results.json").exists():
        try:
            return read_json(workdir / "results.json")
        except UnreadableJSONError:  # cut short after training: resume and write it again
            return None
    return None  # without config.json the checkpoint, which proved it, resumes the run
