"""`train_and_evaluate(config, workdir)`: the one training loop every experiment composes.

It loads the dataset, builds model and optimizer from the config, resumes from the latest
checkpoint in `workdir`, trains data-parallel over all devices, evaluates on the
validation split every epoch and on the test split at the end, and writes
config.json, metrics.jsonl, TensorBoard events, checkpoints and results.json.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import jax
import ml_collections
from tqdm.auto import tqdm

from cnn_jax import datasets, input_pipeline, parallel, steps
from cnn_jax.checkpoint import Checkpointer
from cnn_jax.model_spec import ModelSpec, spec_from_config
from cnn_jax.models import CNN
from cnn_jax.optim import make_optimizer
from cnn_jax.results import MetricsWriter, atomic_write_json, git_revision
from cnn_jax.summary import summary

log = logging.getLogger(__name__)


def load_dataset(config: ml_collections.ConfigDict) -> datasets.Dataset:
    """The dataset named by `config.dataset` (name, data_dir, options)."""
    data = config.dataset
    options = dict(data.get("options", {}) or {})
    return datasets.load(data.name, data_dir=data.get("data_dir"), **options)


def build_model(config: ml_collections.ConfigDict, num_classes: int) -> tuple[CNN, ModelSpec]:
    """The CNN described by `config.model`."""
    spec = spec_from_config(config.model.to_dict(), num_classes)
    return CNN(spec), spec


def model_fingerprint(spec: ModelSpec, input_shape: tuple[int, ...]) -> str:
    """A short hash of architecture + input shape: checkpoints of other models are refused."""
    text = json.dumps([repr(spec), list(input_shape)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def evaluate(eval_step, state: steps.TrainState, split: datasets.Split, batch_size: int, mesh):
    """Mean loss and accuracy of `state` on a whole split (eval mode)."""
    total = None
    batches = input_pipeline.eval_batches(split.images, split.labels, batch_size)
    for batch in input_pipeline.prefetch_to_device(batches, mesh):
        total = steps.accumulate(total, eval_step(state, batch))
    return steps.summarize(total)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains `config` in `workdir` (resuming if a checkpoint exists); returns results.json."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    cfg_train = config.train
    mesh = parallel.make_mesh()
    parallel.check_batch_size(cfg_train.batch_size, mesh)
    eval_batch_size = cfg_train.get("eval_batch_size", 0) or max(cfg_train.batch_size, 256)
    eval_batch_size -= eval_batch_size % mesh.devices.size

    ds = load_dataset(config)
    model, spec = build_model(config, ds.num_classes)
    model_summary = summary(model, ds.image_shape)
    quiet = cfg_train.get("quiet", False)
    if not quiet and jax.process_index() == 0:
        print(model_summary)
    n_steps_epoch = input_pipeline.steps_per_epoch(len(ds.train), cfg_train.batch_size)
    if n_steps_epoch == 0:
        raise ValueError(
            f"train.batch_size: {cfg_train.batch_size} exceeds the {len(ds.train)} training "
            "images; allowed: at most the training set size"
        )
    total_steps = n_steps_epoch * cfg_train.num_epochs
    tx, schedule = make_optimizer(config.optim.to_dict(), n_steps_epoch, cfg_train.num_epochs)
    optim = config.optim
    train_step = steps.make_train_step(
        model, tx, mean=ds.mean, std=ds.std, l1=optim.get("l1", 0.0), l2=optim.get("l2", 0.0)
    )
    eval_step = steps.make_eval_step(model, mean=ds.mean, std=ds.std)
    train_step, eval_step = steps.compile_steps(train_step, eval_step, mesh)

    state = steps.create_train_state(model, tx, jax.random.key(config.seed), ds.image_shape)
    state = parallel.replicate(state, mesh)
    every = cfg_train.get("checkpoint_every_steps", 0) or n_steps_epoch
    ckpt = Checkpointer(
        workdir / "checkpoints",
        save_every_steps=every,
        max_to_keep=cfg_train.get("keep_checkpoints", 3),
        fingerprint=model_fingerprint(spec, ds.image_shape),
    )
    restored = ckpt.restore_latest(state)
    start_step = 0
    if restored is not None:
        state, start_step = restored
        log.info("Resumed from step %d in %s", start_step, workdir)
        if not quiet:
            print(f"Resuming from checkpoint at step {start_step}.")
    if jax.process_index() == 0:
        atomic_write_json(workdir / "config.json", config.to_dict())
    writer = MetricsWriter(
        workdir,
        tensorboard=cfg_train.get("tensorboard", True),
        resume_from_step=start_step if restored else None,
    )

    log_every = cfg_train.get("log_every_steps", 50)
    progress = tqdm(
        total=total_steps,
        initial=start_step,
        disable=quiet or jax.process_index() != 0,
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
    step = start_step
    train_time = 0.0
    window, window_start = None, time.time()
    for epoch in range(start_step // n_steps_epoch, cfg_train.num_epochs):
        batches = input_pipeline.train_batches(
            ds.train.images,
            ds.train.labels,
            cfg_train.batch_size,
            seed=config.seed,
            epoch=epoch,
            start_batch=step - epoch * n_steps_epoch,
        )
        t_epoch = time.time()
        for batch in input_pipeline.prefetch_to_device(batches, mesh):
            state, metrics = train_step(state, batch)
            window = steps.accumulate(window, metrics)
            step += 1
            progress.update(1)
            if step % log_every == 0 or step == total_steps:
                summary_metrics = steps.summarize(window)
                elapsed = time.time() - window_start
                summary_metrics["learning_rate"] = float(schedule(step - 1))
                summary_metrics["images_per_sec"] = float(window["count"]) / max(elapsed, 1e-9)
                writer.write(step, "train", summary_metrics)
                progress.set_postfix(
                    loss=f"{summary_metrics['loss']:.3f}", acc=f"{summary_metrics['accuracy']:.3f}"
                )
                window, window_start = None, time.time()
            ckpt.maybe_save(step, state)
        jax.block_until_ready(state)
        train_time += time.time() - t_epoch
        if (epoch + 1) % cfg_train.get("eval_every_epochs", 1) == 0 or step == total_steps:
            val = evaluate(eval_step, state, ds.validation, eval_batch_size, mesh)
            writer.write(step, "validation", val)
            if not quiet and jax.process_index() == 0:
                progress.write(
                    f"epoch {epoch + 1}/{cfg_train.num_epochs}: "
                    f"validation accuracy {val['accuracy']:.4f}, loss {val['loss']:.4f}"
                )
    progress.close()
    ckpt.maybe_save(step, state, force=True)
    ckpt.wait()

    final = {
        "validation": evaluate(eval_step, state, ds.validation, eval_batch_size, mesh),
        "test": evaluate(eval_step, state, ds.test, eval_batch_size, mesh),
    }
    if cfg_train.get("eval_train_at_end", True):
        final["train"] = evaluate(eval_step, state, ds.train, eval_batch_size, mesh)
    for split, values in final.items():
        writer.write(step, split if split != "train" else "train_eval", values)
    writer.close()
    ckpt.close()
    results = {
        "final": final,
        "test_accuracy": final["test"]["accuracy"],
        "steps": step,
        "epochs": cfg_train.num_epochs,
        "num_params": model_summary.total_params,
        "forward_flops_per_example": model_summary.total_flops,
        "model": spec.name,
        "dataset": ds.name,
        "image_shape": list(ds.image_shape),
        "train_examples": len(ds.train),
        "devices": mesh.devices.size,
        "processes": jax.process_count(),
        "train_time_sec": train_time,
        "train_images_per_sec": (step - start_step) * cfg_train.batch_size / max(train_time, 1e-9),
        "wall_time_sec": time.time() - t_start,
        "resumed_from_step": start_step,
        "git_revision": git_revision(),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
    }
    if jax.process_index() == 0:
        atomic_write_json(workdir / "results.json", results)
    return results

