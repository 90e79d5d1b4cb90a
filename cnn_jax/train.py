"""`train_and_evaluate(config, workdir)`: the one training loop every experiment composes.

It builds the run from the config (`run_setup.build`), resumes from the latest checkpoint
in `workdir`, trains data-parallel over all devices (K seeds at once when
`config.train.num_seeds > 1`), evaluates on the validation split every epoch (with optional
early stopping), evaluates on the test split at the end, and writes config.json,
metrics.jsonl, TensorBoard events, checkpoints, results.json and per-image predictions
(`run_results`).

Identity (`cnn_jax.run_identity`): a workdir trained with other settings is refused with one
line naming the fields (unless `train.overwrite`), and a finished run is returned as it is,
nothing rewritten. One process per workdir (`workdir_lock`). `train.extend_from` continues a
finished run to more epochs in a new workdir (`cnn_jax.extension`).
Robustness: SIGTERM/SIGINT save a checkpoint and raise `Preempted`; a NaN/Inf loss or
gradient raises `NonFiniteError` before any non-finite state reaches a checkpoint. In a
K-member run, a diverging member is frozen at its last finite state instead
(`steps.freeze_diverged`), named in one line on stderr, and recorded as diverged (its
results.json says at which step, with no accuracy and no predictions) while the others train
on; only when every member has diverged does the run raise.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from cnn_jax import extension, input_pipeline, run_identity, run_results, steps
from cnn_jax.config import identity
from cnn_jax.config.specs import TrainSpec
from cnn_jax.config_validation import validate_config
from cnn_jax.datasets import Split
from cnn_jax.early_stopping import EarlyStopping, select_where
from cnn_jax.nn.summary import summary
from cnn_jax.outputs import predictions
from cnn_jax.outputs.writers import MetricsWriter, atomic_write_json, hparams_of
from cnn_jax.run_setup import RunSetup, build
from cnn_jax.system import parallel
from cnn_jax.system.checkpoint import Checkpointer, training_carry
from cnn_jax.system.preemption import NonFiniteError, Preempted, PreemptionGuard
from cnn_jax.system.workdir_lock import WorkdirLock

log = logging.getLogger(__name__)


def evaluate(
    run: RunSetup, params_state: steps.TrainState, split: Split, *, per_example: bool = False
) -> tuple[list[dict], dict[str, np.ndarray] | None]:
    """Mean loss and accuracy per seed on a whole split (eval mode), and with `per_example`
    the per-image top1 / p_correct ([n] or [K, n]) and logits ([n, C] or [K, n, C]), fetched
    once at the end."""
    batch_size = run.train.eval_batch(run.mesh.devices.size)
    total, outputs = None, []
    batches = input_pipeline.eval_batches(split.images, split.labels, batch_size)
    for batch in input_pipeline.prefetch_to_device(batches, run.mesh):
        sums, examples = run.eval_step(params_state, batch)
        total = steps.accumulate(total, sums)
        if per_example:
            outputs.append(examples)
    if not per_example:
        return steps.summarize(total), None
    host = jax.device_get(outputs)
    n = len(split.labels)  # eval_batches pads the last batch only: the first n are real
    arrays = {}
    for key in host[0]:  # the example axis: last, or before the class axis of the logits
        axis = -2 if key == "logits" else -1
        joined = np.concatenate([o[key] for o in host], axis=axis)
        arrays[key] = joined[..., :n, :] if axis == -2 else joined[..., :n]
    return steps.summarize(total), arrays


def _train_batches(run: RunSetup, epoch: int, start_batch: int):
    train, bs = run.dataset.train, run.train.batch_size
    if run.vmapped:
        batches = input_pipeline.seeded_train_batches(
            train.images, train.labels, bs, seeds=run.seeds, epoch=epoch, start_batch=start_batch
        )
    else:
        batches = input_pipeline.train_batches(
            train.images, train.labels, bs, seed=run.seeds[0], epoch=epoch, start_batch=start_batch
        )
    return input_pipeline.prefetch_to_device(batches, run.mesh, seed_axis=run.vmapped)


def _check_finite(run: RunSetup, window: steps.Metrics | None, frozen: dict[int, int]) -> None:
    """Raises NonFiniteError naming the first bad step (and, with K members, which ones),
    unless some members are still finite: then each newly diverged one (frozen by the step,
    `steps.freeze_diverged`) is named in one line on stderr and added to `frozen`."""
    bad = steps.nonfinite_members(window)
    if not bad:
        return
    if run.vmapped and len(set(bad) | set(frozen)) < run.num_seeds:
        for k in sorted(set(bad) - set(frozen)):
            if jax.process_index() == 0:
                tqdm.write(_frozen_line(run, k, bad[k]), file=sys.stderr)
            frozen[k] = bad[k]
        return
    which = ""
    if run.vmapped:
        names = [f"{_member_name(run, k)} at step {step}" for k, step in sorted(bad.items())]
        shown = "; ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
        which = f" (members: {shown})"
    raise NonFiniteError(
        f"non-finite loss, gradient or parameters at step {min(bad.values())}{which}; stopped "
        "before saving it. The last good checkpoint is kept: lower optim.learning_rate or set "
        "optim.grad_clip_norm"
    )


def _frozen_line(run: RunSetup, k: int, step: int) -> str:
    return (
        f"warning: member {_member_name(run, k)} diverged at step {step} (non-finite loss, "
        "gradient or parameters): frozen at its last finite state and recorded as diverged; "
        "the other members train on"
    )


def _member_name(run: RunSetup, k: int) -> str:
    """Member `k` as a reader finds it: its seed, and for a grid its dir and values."""
    if run.grid is None:
        return f"seed {run.seeds[k]}"
    values = ", ".join(f"{f}={v:g}" for f, v in run.member_point(k)["grid_point"].items())
    return f"{run.grid.dirs[k // run.train.num_seeds]}/seed_{run.seeds[k]} ({values})"


class RunClock:
    """The run's training and wall seconds over every process that trained it. Each
    checkpoint saves them (`meta`), so a resumed run, even one resumed at its last step,
    reports the whole run's time and throughput rather than its own process's."""

    def __init__(self, meta: dict[str, Any], start_step: int, t_start: float):
        self.train_sec = float(meta.get("train_time_sec", 0.0))
        self.wall_before = float(meta.get("wall_time_sec", 0.0))
        # A checkpoint saved without the clock: only this process's steps are timed.
        self.timed_from_step = 0 if "train_time_sec" in meta else start_step
        self.t_start, self.t_epoch = t_start, None

    def start_epoch(self) -> None:
        self.t_epoch = time.time()

    def end_epoch(self) -> None:
        self.train_sec += time.time() - self.t_epoch
        self.t_epoch = None

    def wall_sec(self) -> float:
        return self.wall_before + time.time() - self.t_start

    def meta(self) -> dict[str, float]:
        """What a checkpoint saves: the seconds so far, and when (records logged later at the
        checkpoint's step are the final evaluation's, which a resumed run logs again)."""
        running = 0.0 if self.t_epoch is None else time.time() - self.t_epoch
        return {
            "train_time_sec": self.train_sec + running,
            "wall_time_sec": self.wall_sec(),
            "saved_at": time.time(),
        }


def initial_carry(run: RunSetup, early: EarlyStopping | None) -> dict[str, Any]:
    """A fresh checkpoint tree (`checkpoint.training_carry`) for `run`."""
    early_state = None if early is None else early.state
    return training_carry(run.init_state(), run.empty_window(), early_state)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains `config` in `workdir` (resuming if a checkpoint exists); returns results.json."""
    validate_config(config, workdir)  # one clear line for a bad config, before any compile
    workdir = Path(workdir)
    config = extension.resolve(config, workdir)  # an extension's parent, checked
    quiet = TrainSpec.from_config(config.train).quiet or jax.process_index() != 0
    finished = run_results.previous_run(config, workdir)
    if finished is not None:
        if not quiet:
            print(f"Already finished in {workdir}: nothing to do (use a new --workdir to rerun).")
        return finished
    run = build(config)
    main_process = jax.process_index() == 0
    if main_process:
        workdir.mkdir(parents=True, exist_ok=True)
    with WorkdirLock(workdir) if main_process else contextlib.nullcontext():
        # Again, now that no one else can write: only now may train.overwrite clear the run.
        finished = run_results.previous_run(config, workdir, locked=main_process)
        if finished is not None:
            return finished
        with _member_locks(run, workdir) if main_process else contextlib.nullcontext():
            return _train(run, workdir, quiet)


@contextlib.contextmanager
def _member_locks(run: RunSetup, workdir: Path):
    """The locks of the member dirs outside the workdir (a grid's), held while training, and
    a check that none holds another run's results: two runs never write one member's records."""
    outside = [
        d for d in run.member_dirs(workdir) if not d.resolve().is_relative_to(workdir.resolve())
    ]
    run_results.check_members_free(workdir, outside)  # before anything is made there
    with contextlib.ExitStack() as locks:
        for member_dir in outside:
            member_dir.mkdir(parents=True, exist_ok=True)
            locks.enter_context(WorkdirLock(member_dir))
        run_results.check_members_free(workdir, outside)  # and once no one else can write
        yield


def _train(run: RunSetup, workdir: Path, quiet: bool) -> dict[str, Any]:
    """Resumes or starts the run, trains it, evaluates it and writes its record."""
    t_start, main_process = time.time(), jax.process_index() == 0
    model_summary = summary(run.model, run.dataset.image_shape)
    if not quiet:
        print(model_summary)
    early = EarlyStopping.from_config(run.early_stopping, run.num_seeds)
    carry = initial_carry(run, early)
    ckpt = _checkpointer(run, workdir)
    carry, start_step, meta = _restore(run, ckpt, carry, workdir, quiet)
    # Members frozen before a resume: their step count stopped (`steps.frozen_members`).
    frozen = steps.frozen_members(carry["state"], start_step) if run.vmapped else {}
    if early is not None and start_step:
        early.state = {k: np.asarray(v) for k, v in carry["early_stopping"].items()}
    clock = RunClock(meta, start_step, t_start)
    if main_process:
        stored = dict(run.config.to_dict(), **{identity.KEY: run_identity.of(run.config)})
        atomic_write_json(workdir / "config.json", stored)
    dirs = run.member_dirs(workdir)
    writers = [  # process 0 writes; resuming drops lines logged after the checkpoint
        MetricsWriter(
            member_dir,
            tensorboard=run.train.tensorboard,
            resume_from_step=start_step,
            logged_by=meta.get("saved_at"),
        )
        for member_dir in (dirs if main_process else [])
    ]
    try:
        step = _loop(run, carry, ckpt, writers, early, start_step, clock, quiet, frozen)
        diverged = _diverged(run, carry, step)
        final, per_example = _final_evaluation(run, carry, early, writers, step, diverged)
        _write_hparams(run, writers, final, diverged, step)
    finally:
        for writer in writers:
            writer.close()
        ckpt.close()
    shared = run_results.shared_fields(
        run,
        model_summary,
        step=step,
        start_step=start_step,
        timed_from_step=clock.timed_from_step,
        train_time=clock.train_sec,
        wall_time=clock.wall_sec(),
    )
    return _write_record(
        run, workdir, dirs, shared, final=final, per_example=per_example, early=early,
        diverged=diverged,
    )  # fmt: skip


def _checkpointer(run: RunSetup, workdir: Path) -> Checkpointer:
    """The run's checkpoints, fingerprinted and tied to its identity."""
    return Checkpointer(
        workdir / "checkpoints",
        save_every_steps=run.train.checkpoint_every_steps or run.steps_per_epoch,
        max_to_keep=run.train.keep_checkpoints,
        fingerprint=run.fingerprint(),
        identity=run_identity.fields(run.config),
        canonical=run_identity.canonical,
        # Without config.json only the checkpoint itself can prove which run it is.
        require_identity=not (workdir / "config.json").is_file(),
    )


def _write_hparams(
    run: RunSetup, writers: list[MetricsWriter], final: dict, diverged: dict, step: int
) -> None:
    """TensorBoard HParams per member that did not diverge: its settings and final metrics."""
    for k, writer in enumerate(writers):
        if k in diverged:
            continue
        final_k = {split: per_seed[k] for split, per_seed in final.items()}
        hparams = hparams_of(run.member_config(k), run.seeds[k], run_identity.of(run.config))
        writer.write_hparams(hparams, final_k, step)


def _write_record(
    run: RunSetup,
    workdir: Path,
    dirs: list[Path],
    shared: dict[str, Any],
    *,
    final: dict,
    per_example: dict,
    early: EarlyStopping | None,
    diverged: dict[int, int],
) -> dict[str, Any]:
    """Per-member entries, predictions and results.json (written by process 0 only)."""
    parent = extension.parent_of(run.config)
    if parent is not None:
        shared[extension.KEY] = extension.record(parent, run, workdir)
    entries = run_results.seed_entries(run.seeds, final, early)
    for k, entry in enumerate(entries):
        entry.update(run.member_point(k))
        if k in diverged:
            run_results.mark_diverged(entry, diverged[k])
    if jax.process_index() != 0:
        return run_results.assemble(run.seeds, shared, entries)
    labels = {name: getattr(run.dataset, name).labels for name in per_example}
    hashes = run_results.write_predictions(dirs, labels, per_example, skip=set(diverged))
    for k, (entry, member_hashes) in enumerate(zip(entries, hashes)):
        if k not in diverged:
            entry[predictions.HASHES] = member_hashes
    return run_results.write_results(workdir, dirs, run.seeds, shared, entries)


def _restore(
    run: RunSetup, ckpt: Checkpointer, carry: dict[str, Any], workdir: Path, quiet: bool
) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """(carry, step, checkpoint meta) to start from: the workdir's newest checkpoint, else an
    extension's parent's final one, else the fresh `carry` at step 0."""
    restored = ckpt.restore_latest(carry)
    if restored is not None:
        if not quiet:
            print(f"Resuming from the checkpoint at step {restored[1]} in {workdir}.")
        return *restored, ckpt.restored_meta
    parent = extension.parent_of(run.config)
    if parent is None:
        return carry, 0, {}
    carry, meta = extension.restore(parent, run, carry)
    if not quiet:
        print(f"Extending the run in {parent.run_dir} from its step {parent.step}.")
    return carry, parent.step, meta


def _write(
    writers: list[MetricsWriter], step: int, split: str, per_seed: list[dict], skip=()
) -> None:
    """Logs each member's values, but none of a member in `skip` (diverged: frozen)."""
    for k, (writer, values) in enumerate(zip(writers, per_seed)):
        if k not in skip:
            writer.write(step, split, values)


def _diverged(run: RunSetup, carry: dict[str, Any], step: int) -> dict[int, dict[str, Any]]:
    """{member: {'step': N, 'what': 'loss' | 'gradient' | 'parameters'}} of the frozen
    members of a K-member run. Their state is the one step N started from, so step N is
    replayed once (its batch is a function of the step) to tell what became non-finite."""
    at = steps.frozen_members(carry["state"], step) if run.vmapped else {}
    out = {}
    for n in sorted(set(at.values())):
        epoch, position = divmod(n - 1, run.steps_per_epoch)
        train = run.dataset.train
        batches = input_pipeline.seeded_train_batches(
            train.images, train.labels, run.train.batch_size, seeds=run.seeds, epoch=epoch,
            start_batch=position,
        )  # fmt: skip
        batch = parallel.shard_batch(next(batches), run.mesh, True)
        state = jax.tree.map(lambda x: x.copy(), carry["state"])  # the step donates its input
        _, metrics = run.train_step(state, batch)
        per_seed = steps.summarize(metrics)
        for k in (k for k, s in at.items() if s == n):
            values = per_seed[k]
            what = "loss" if not np.isfinite(values["loss"]) else "parameters"
            if what == "parameters" and not np.isfinite(values["grad_norm"]):
                what = "gradient"
            out[k] = {"step": n, "what": what}
    return out


def _loop(run, carry, ckpt, writers, early, start_step, clock: RunClock, quiet, frozen) -> int:
    """The epochs: train steps, logging windows, checkpoints, validation, early stopping."""
    cfg = run.train
    total_steps, log_every = run.steps_per_epoch * run.num_epochs, cfg.log_every_steps
    progress = tqdm(
        total=total_steps,
        initial=start_step,
        disable=quiet,
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
    step, window_start = start_step, time.time()
    with PreemptionGuard() as guard, progress:
        for epoch in range(start_step // run.steps_per_epoch, run.num_epochs):
            if early is not None and early.all_stopped:
                break
            clock.start_epoch()
            for batch in _train_batches(run, epoch, step - epoch * run.steps_per_epoch):
                carry["state"], metrics = run.train_step(carry["state"], batch)
                carry["window"] = steps.accumulate(carry["window"], metrics)
                step += 1
                progress.update(1)
                at_log, at_save = (
                    step % log_every == 0 or step == total_steps,
                    step % ckpt.every == 0,
                )
                if at_log or at_save or guard.requested:
                    _check_finite(run, carry["window"], frozen)
                if at_log:
                    per_seed = steps.summarize(carry["window"])
                    # Every member's images over the window's seconds (the program's throughput,
                    # as results.json's train_images_per_sec).
                    images = float(np.sum(jax.device_get(carry["window"]["count"])))
                    images_per_sec = images / max(time.time() - window_start, 1e-9)
                    for values, learning_rate in zip(per_seed, run.learning_rates(step - 1)):
                        values["learning_rate"] = learning_rate
                        values["images_per_sec"] = images_per_sec
                    _write(writers, step, "train", per_seed, skip=frozen)
                    progress.set_postfix(
                        loss=f"{per_seed[0]['loss']:.3f}", acc=f"{per_seed[0]['accuracy']:.3f}"
                    )
                    carry["window"], window_start = run.empty_window(), time.time()
                if guard.requested:
                    ckpt.maybe_save(step, carry, force=True, meta=clock.meta())
                    ckpt.wait()
                    raise Preempted(
                        f"signal {guard.requested} at step {step}: checkpoint saved in "
                        f"{ckpt.directory.parent}; run the same command again to resume"
                    )
                if step % run.steps_per_epoch:  # epoch ends save after validation below
                    ckpt.maybe_save(step, carry, meta=clock.meta())
            jax.block_until_ready(carry["state"])
            clock.end_epoch()
            if (epoch + 1) % cfg.eval_every_epochs == 0 or step == total_steps:
                _validate(run, carry, early, writers, step, epoch, progress, quiet, frozen)
            ckpt.maybe_save(step, carry, meta=clock.meta())
    ckpt.maybe_save(step, carry, force=True, meta=clock.meta())
    ckpt.wait()
    return step


def _validate(run, carry, early, writers, step, epoch, progress, quiet, frozen=()) -> None:
    """One validation pass: log it (not for `frozen` members), update early stopping and
    the best parameters."""
    val, _ = evaluate(run, carry["state"], run.dataset.validation)
    _write(writers, step, "validation", val, skip=frozen)
    if early is not None:
        improved = early.update([v[early.metric] for v in val], epoch + 1)
        current = {"params": carry["state"].params, "batch_stats": carry["state"].batch_stats}
        mask = improved if run.vmapped else improved[0]
        carry["best"] = select_where(np.asarray(mask), current, carry["best"])
        carry["early_stopping"] = dict(early.state)
    if not quiet:
        progress.write(
            f"epoch {epoch + 1}/{run.num_epochs}: validation "
            f"accuracy {val[0]['accuracy']:.4f}, loss {val[0]['loss']:.4f}"
        )


def _final_evaluation(run, carry, early, writers, step, diverged=()) -> tuple[dict, dict]:
    """Validation, test (and train) metrics of the final (or best) parameters, logged (not
    for `diverged` members), plus per-image outputs of the predicted splits."""
    final_state = carry["state"]
    if early is not None:
        final_state = final_state.replace(**carry["best"])
    splits = {"validation": run.dataset.validation, "test": run.dataset.test}
    if run.train.eval_train_at_end:
        splits["train"] = run.dataset.train
    final, per_example = {}, {}
    for name, split in splits.items():
        wanted = name in run_results.PREDICTED_SPLITS
        final[name], outputs = evaluate(run, final_state, split, per_example=wanted)
        if outputs is not None:
            per_example[name] = outputs
        _write(writers, step, "train_eval" if name == "train" else name, final[name], diverged)
    return final, per_example
