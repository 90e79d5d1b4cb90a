"""`train_and_evaluate(config, workdir)`: the one training loop every experiment composes.

It builds the run from the config (`run_setup.build`), resumes from the latest checkpoint
in `workdir`, trains data-parallel over all devices (K seeds at once when
`config.train.num_seeds > 1`), evaluates on the validation split every epoch (with optional
early stopping), evaluates on the test split at the end, and writes config.json,
metrics.jsonl, TensorBoard events, checkpoints and results.json.

Robustness: SIGTERM/SIGINT save a checkpoint and raise `Preempted`; a NaN/Inf loss or
gradient raises `NonFiniteError` before any non-finite state reaches a checkpoint.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from cnn_jax import input_pipeline, steps
from cnn_jax.checkpoint import Checkpointer
from cnn_jax.config_validation import validate_config
from cnn_jax.datasets import Split
from cnn_jax.early_stopping import EarlyStopping, select_where
from cnn_jax.preemption import NonFiniteError, Preempted, PreemptionGuard
from cnn_jax.results import MetricsWriter, atomic_write_json, git_revision
from cnn_jax.run_setup import RunSetup, build
from cnn_jax.summary import summary

log = logging.getLogger(__name__)


def seed_dir(workdir: Path, run: RunSetup, k: int) -> Path:
    """Where seed k's metrics and results go: the workdir itself for a single-seed run."""
    return workdir / f"seed_{run.seeds[k]}" if run.vmapped else workdir


def evaluate(run: RunSetup, params_state: steps.TrainState, split: Split) -> list[dict]:
    """Mean loss and accuracy per seed on a whole split (eval mode)."""
    batch_size = run.config.train.get("eval_batch_size", 0) or max(run.config.train.batch_size, 256)
    batch_size -= batch_size % run.mesh.devices.size
    total = None
    batches = input_pipeline.eval_batches(split.images, split.labels, batch_size)
    for batch in input_pipeline.prefetch_to_device(batches, run.mesh):
        total = steps.accumulate(total, run.eval_step(params_state, batch))
    return steps.summarize(total)


def _train_batches(run: RunSetup, epoch: int, start_batch: int):
    train, bs = run.dataset.train, run.config.train.batch_size
    if run.vmapped:
        batches = input_pipeline.seeded_train_batches(
            train.images, train.labels, bs, seeds=run.seeds, epoch=epoch, start_batch=start_batch
        )
    else:
        batches = input_pipeline.train_batches(
            train.images, train.labels, bs, seed=run.seeds[0], epoch=epoch, start_batch=start_batch
        )
    return input_pipeline.prefetch_to_device(batches, run.mesh, seed_axis=run.vmapped)


def _check_finite(window: steps.Metrics | None) -> None:
    bad = steps.first_nonfinite_step(window)
    if bad is not None:
        raise NonFiniteError(
            f"non-finite loss, gradient or parameters at step {bad}; stopped before saving "
            "it. The last good checkpoint is kept: lower optim.learning_rate or set "
            "optim.grad_clip_norm"
        )


def initial_carry(run: RunSetup, early: EarlyStopping | None) -> dict[str, Any]:
    """What a checkpoint holds: train state, plus best params and tracker for early stopping."""
    state = run.init_state()
    carry: dict[str, Any] = {"state": state, "best": {}, "early_stopping": {}}
    if early is not None:
        best = {"params": state.params, "batch_stats": state.batch_stats}
        carry["best"] = jax.tree.map(lambda x: x.copy(), best)
        carry["early_stopping"] = dict(early.state)
    return carry


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains `config` in `workdir` (resuming if a checkpoint exists); returns results.json."""
    validate_config(config, workdir)  # one clear line for a bad config, before any compile
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    run = build(config)
    cfg = config.train
    main_process = jax.process_index() == 0
    quiet = cfg.get("quiet", False) or not main_process
    model_summary = summary(run.model, run.dataset.image_shape)
    if not quiet:
        print(model_summary)
    early = EarlyStopping.from_config(config.get("early_stopping"), run.num_seeds)
    carry = initial_carry(run, early)
    every = cfg.get("checkpoint_every_steps", 0) or run.steps_per_epoch
    ckpt = Checkpointer(
        workdir / "checkpoints",
        save_every_steps=every,
        max_to_keep=cfg.get("keep_checkpoints", 3),
        fingerprint=run.fingerprint(),
    )
    start_step = 0
    restored = ckpt.restore_latest(carry)
    if restored is not None:
        carry, start_step = restored
        if early is not None:
            early.state = {k: np.asarray(v) for k, v in carry["early_stopping"].items()}
        if not quiet:
            print(f"Resuming from the checkpoint at step {start_step} in {workdir}.")
    if main_process:
        atomic_write_json(workdir / "config.json", config.to_dict())
    writers = [  # process 0 writes; resuming drops lines logged after the checkpoint
        MetricsWriter(
            seed_dir(workdir, run, k),
            tensorboard=cfg.get("tensorboard", True),
            resume_from_step=start_step,
        )
        for k in range(run.num_seeds if main_process else 0)
    ]

    def write(step: int, split: str, per_seed: list[dict]) -> None:
        for writer, values in zip(writers, per_seed):
            writer.write(step, split, values)

    total_steps = run.steps_per_epoch * cfg.num_epochs
    log_every = cfg.get("log_every_steps", 50)
    progress = tqdm(
        total=total_steps,
        initial=start_step,
        disable=quiet,
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
    step, train_time, window, window_start = start_step, 0.0, None, time.time()
    with PreemptionGuard() as guard:
        for epoch in range(start_step // run.steps_per_epoch, cfg.num_epochs):
            if early is not None and early.all_stopped:
                break
            t_epoch = time.time()
            for batch in _train_batches(run, epoch, step - epoch * run.steps_per_epoch):
                carry["state"], metrics = run.train_step(carry["state"], batch)
                window = steps.accumulate(window, metrics)
                step += 1
                progress.update(1)
                at_log, at_save = step % log_every == 0 or step == total_steps, step % every == 0
                if at_log or at_save or guard.requested:
                    _check_finite(window)
                if at_log:
                    per_seed = steps.summarize(window)
                    rate = float(np.sum(jax.device_get(window["count"])))
                    for values in per_seed:
                        values["learning_rate"] = float(run.schedule(step - 1))
                        values["images_per_sec"] = rate / max(time.time() - window_start, 1e-9)
                    write(step, "train", per_seed)
                    progress.set_postfix(
                        loss=f"{per_seed[0]['loss']:.3f}", acc=f"{per_seed[0]['accuracy']:.3f}"
                    )
                    window, window_start = None, time.time()
                if guard.requested:
                    ckpt.maybe_save(step, carry, force=True)
                    ckpt.wait()
                    raise Preempted(
                        f"signal {guard.requested} at step {step}: checkpoint saved in "
                        f"{workdir}; run the same command again to resume"
                    )
                if step % run.steps_per_epoch:  # epoch ends save after validation below
                    ckpt.maybe_save(step, carry)
            jax.block_until_ready(carry["state"])
            train_time += time.time() - t_epoch
            if (epoch + 1) % cfg.get("eval_every_epochs", 1) == 0 or step == total_steps:
                val = evaluate(run, carry["state"], run.dataset.validation)
                write(step, "validation", val)
                if early is not None:
                    improved = early.update([v[early.metric] for v in val], epoch + 1)
                    current = {
                        "params": carry["state"].params,
                        "batch_stats": carry["state"].batch_stats,
                    }
                    mask = improved if run.vmapped else improved[0]
                    carry["best"] = select_where(np.asarray(mask), current, carry["best"])
                    carry["early_stopping"] = dict(early.state)
                if not quiet:
                    progress.write(
                        f"epoch {epoch + 1}/{cfg.num_epochs}: validation "
                        f"accuracy {val[0]['accuracy']:.4f}, loss {val[0]['loss']:.4f}"
                    )
            ckpt.maybe_save(step, carry)
    progress.close()
    ckpt.maybe_save(step, carry, force=True)
    ckpt.wait()
    ckpt.close()

    final_state = carry["state"]
    if early is not None:
        final_state = final_state.replace(**carry["best"])
    splits = {"validation": run.dataset.validation, "test": run.dataset.test}
    if cfg.get("eval_train_at_end", True):
        splits["train"] = run.dataset.train
    final = {name: evaluate(run, final_state, split) for name, split in splits.items()}
    for name, per_seed in final.items():
        write(step, "train_eval" if name == "train" else name, per_seed)
    for writer in writers:
        writer.close()

    shared = {
        "steps": step,
        "epochs": cfg.num_epochs,
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
        "train_images_per_sec": (step - start_step)
        * cfg.batch_size
        * run.num_seeds
        / max(train_time, 1e-9),
        "wall_time_sec": time.time() - t_start,
        "resumed_from_step": start_step,
        "git_revision": git_revision(),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
    }
    per_seed_results = []
    for k, seed in enumerate(run.seeds):
        seed_final = {name: per_seed[k] for name, per_seed in final.items()}
        entry = {"seed": seed, "final": seed_final, "test_accuracy": seed_final["test"]["accuracy"]}
        if early is not None:
            entry["best_epoch"] = int(early.state["best_epoch"][k])
            entry["stopped_early"] = bool(early.stopped[k])
        per_seed_results.append(entry)
    if run.vmapped:
        results = dict(shared, per_seed=per_seed_results, seeds=list(run.seeds))
        results["test_accuracy"] = float(np.mean([r["test_accuracy"] for r in per_seed_results]))
        if main_process:
            for k, entry in enumerate(per_seed_results):
                seed_results = dict(shared, **entry, vmapped_parent="..", seed_index=k)
                atomic_write_json(seed_dir(workdir, run, k) / "results.json", seed_results)
    else:
        results = dict(shared, **per_seed_results[0])
    if main_process:
        atomic_write_json(workdir / "results.json", results)
    return results
