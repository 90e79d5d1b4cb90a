"""TrainState and the pure train / eval step functions (jit them with `compile_steps`).

Every random number a step uses comes from `fold_in(state.rng, state.step)`, so a step's
result depends only on (state, batch): resuming from a checkpoint replays exactly.
Metrics are returned as the accumulators declared in `cnn_jax.metrics` (sums, a last value,
a minimum) so they accumulate on device without a host sync per step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh

from cnn_jax import metrics as declared_metrics
from cnn_jax.nn.models import init_variables
from cnn_jax.optim import weight_penalty
from cnn_jax.system import parallel

Metrics = dict[str, jax.Array]
NO_STEP = declared_metrics.NO_STEP  # "no non-finite step seen"
AugmentFn = Callable[[jax.Array, jax.Array], jax.Array]  # (rng, x_bhwc) -> x_bhwc


class TrainState(struct.PyTreeNode):
    """Everything that changes during training; a pytree, so it jits, shards and checkpoints."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array


def create_train_state(
    model: nn.Module, tx: optax.GradientTransformation, rng: jax.Array, input_shape: Sequence[int]
) -> TrainState:
    """Initialises parameters, batch-norm statistics and optimizer state from `rng`."""
    init_rng, train_rng = jax.random.split(rng)
    variables = init_variables(model, init_rng, tuple(input_shape))
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        rng=train_rng,
    )


def normalize(images_uint8: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
    """uint8 [B, H, W, C] -> float32 x / 255 / std per channel: scale-only, no mean subtracted.

    Scale-only so the raw background (0) stays 0 after normalisation: a SAME conv's zero
    padding then pads with the background and the first conv is shift-equivariant up to the
    border (with the mean subtracted first, the padded zeros were brighter than the
    black canvas, and a frame showed in the feature maps). `mean` is accepted and unused so
    callers keep one signature; batch norm and the first layer's bias absorb the offset.
    """
    del mean  # scale-only by design (see above)
    x = images_uint8.astype(jnp.float32) / 255.0
    std = jnp.asarray(std, jnp.float32)
    return x / jnp.where(std > 0, std, 1.0)  # a constant channel (std 0) is left unscaled


def _sums(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> Metrics:
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    mask = mask.astype(jnp.float32)
    sums = {
        "loss_sum": jnp.sum(losses * mask),
        "correct": jnp.sum((jnp.argmax(logits, -1) == labels) * mask),
        "count": jnp.sum(mask),
    }
    return declared_metrics.declared(sums, declared_metrics.EVAL)


def _all_finite(tree: Any) -> jax.Array:
    """True when no leaf holds NaN/Inf: a finite loss and gradient can still step to Inf."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _keep_where(applied: jax.Array, new: TrainState, old: TrainState) -> TrainState:
    """`new` where the update is `applied`, else `old` unchanged (step count included), leaf
    by leaf: a select, so an applied update keeps its values. (Under the vmap and chunked
    strategies XLA's CPU fusion around the select can move the batch-norm running averages by a
    float32 ulp against the program without it; the others are bit for bit the same.)"""
    keep = lambda a, b: jnp.where(applied, a, b)  # noqa: E731
    return new.replace(
        step=keep(new.step, old.step),
        params=jax.tree.map(keep, new.params, old.params),
        batch_stats=jax.tree.map(keep, new.batch_stats, old.batch_stats),
        opt_state=jax.tree.map(keep, new.opt_state, old.opt_state),
    )


def freeze_diverged(train_fn: Callable) -> Callable:
    """The K-member train step in which a member whose update is non-finite (NaN/Inf loss,
    gradient or parameters) is frozen: it keeps its last finite state, while the others train
    on unchanged. A frozen member's step count stops, so it is the one behind the others
    (`frozen_members`), which survives a checkpoint without any extra state; its
    `first_nonfinite_step` then reports its divergence in every later window."""

    def train(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, Metrics]:
        frozen = state.step < jnp.max(state.step)
        return train_fn(state, {**batch, "frozen": frozen})

    return train


def frozen_members(state: TrainState, step: int) -> dict[int, int]:
    """{member: the step at which it diverged} of a K-member `state` at host step `step`:
    the members whose step count stopped behind it (`freeze_diverged`)."""
    counts = np.atleast_1d(np.asarray(jax.device_get(state.step)))
    return {k: int(c) + 1 for k, c in enumerate(counts) if c < step}


def make_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    l1: float = 0.0,
    l2: float = 0.0,
    augment_fn: AugmentFn | None = None,
    member_tx: Callable[[Mapping[str, jax.Array]], optax.GradientTransformation] | None = None,
) -> Callable[[TrainState, dict[str, jax.Array]], tuple[TrainState, Metrics]]:
    """Returns the pure function (state, batch) -> (new state, metric sums).

    A grid member's batch carries its values under `hparams` (`cnn_jax.config.grid`): its `l1` and
    `l2` replace the configured ones, and `member_tx(hparams)` is its optimizer."""

    def train_step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, Metrics]:
        hparams = batch.get("hparams") or {}
        step_tx = member_tx(hparams) if hparams and member_tx is not None else tx
        l1_now, l2_now = hparams.get("l1", l1), hparams.get("l2", l2)
        rng = jax.random.fold_in(state.rng, state.step)
        aug_rng, dropout_rng, noise_rng = jax.random.split(rng, 3)
        x_bhwc = normalize(batch["image"], mean, std)
        if augment_fn is not None:
            x_bhwc = augment_fn(aug_rng, x_bhwc)
        labels = batch["label"]
        has_bn = bool(jax.tree.leaves(state.batch_stats))

        def loss_fn(params):
            variables = {"params": params, "batch_stats": state.batch_stats}
            (logits, _), updates = model.apply(
                variables,
                x_bhwc,
                train=True,
                rngs={"dropout": dropout_rng, "noise": noise_rng},
                mutable=["batch_stats"] if has_bn else [],
            )
            data_loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return data_loss + weight_penalty(params, l1_now, l2_now), (logits, updates)

        (loss, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        opt_updates, opt_state = step_tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, opt_updates),
            batch_stats=updates.get("batch_stats", state.batch_stats),
            opt_state=opt_state,
        )
        grad_norm = optax.global_norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & _all_finite(new_state.params)
        if "frozen" in batch:  # a member of a K-member run (`freeze_diverged`)
            finite = finite & ~batch["frozen"]
            new_state = _keep_where(finite, new_state, state)
        metrics = _sums(logits, labels, jnp.ones_like(labels))
        metrics["objective_sum"] = loss * metrics["count"]
        metrics["grad_norm"] = grad_norm
        metrics["first_nonfinite_step"] = jnp.where(finite, NO_STEP, state.step + 1)
        return new_state, declared_metrics.declared(metrics, declared_metrics.TRAIN)

    return train_step


def make_eval_step(
    model: nn.Module, *, mean: Sequence[float], std: Sequence[float]
) -> Callable[[TrainState, dict[str, jax.Array]], tuple[Metrics, Metrics]]:
    """Returns the pure function (state, batch with 'mask') -> (metric sums, per-example
    outputs), in eval mode. Per example: `top1` [B] int32, `p_correct` [B] float32 (softmax
    probability of the true class) and `logits` [B, classes] float32, for
    `cnn_jax.outputs.predictions`; they stay on the device until the whole split is done, so no
    extra host sync per batch."""

    def eval_step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[Metrics, Metrics]:
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        logits, _ = model.apply(variables, normalize(batch["image"], mean, std), train=False)
        logits = logits.astype(jnp.float32)
        probs = jax.nn.softmax(logits, axis=-1)
        per_example = {
            "top1": jnp.argmax(logits, -1).astype(jnp.int32),
            "p_correct": jnp.take_along_axis(probs, batch["label"][:, None], axis=-1)[:, 0],
            "logits": logits,
        }
        return _sums(logits, batch["label"], batch["mask"]), per_example

    return eval_step


def compile_steps(
    train_step: Callable, eval_step: Callable, mesh: Mesh
) -> tuple[Callable, Callable]:
    """jit both steps for data parallelism: state replicated (and donated), batch sharded."""
    rep = parallel.replicated(mesh)
    train = jax.jit(train_step, donate_argnums=0, out_shardings=(rep, rep))
    evaluate = jax.jit(eval_step, out_shardings=rep)
    return train, evaluate


@jax.jit
def accumulate(total: Metrics | None, metrics: Metrics) -> Metrics:
    """Reduces one more step's metrics into `total` on device (one fused op), each by its
    declared reduction (`cnn_jax.metrics`: sums add, grad_norm keeps the last value,
    first_nonfinite_step the minimum)."""
    if total is None:
        return dict(metrics)
    return declared_metrics.reduce(total, metrics)


def summarize(sums: Metrics) -> list[dict[str, float]]:
    """Metric sums -> the logged values per seed (one host transfer, `metrics.report`):
    loss, accuracy, [objective, grad_norm]. One dict per seed: a single seed gives a list of one.
    """
    return declared_metrics.report(jax.device_get(sums))


def nonfinite_members(sums: Metrics | None) -> dict[int, int]:
    """{member: its first step with a NaN/Inf loss, gradient or parameters} in these sums
    (member 0 alone for a single run); empty when every member stayed finite."""
    if sums is None or "first_nonfinite_step" not in sums:
        return {}
    steps = np.atleast_1d(np.asarray(jax.device_get(sums["first_nonfinite_step"])))
    return {k: int(step) for k, step in enumerate(steps.reshape(-1)) if step != NO_STEP}


def first_nonfinite_step(sums: Metrics | None) -> int | None:
    """The first step whose loss or gradient was NaN/Inf in these sums, if any."""
    if sums is None or "first_nonfinite_step" not in sums:
        return None
    step = int(np.min(jax.device_get(sums["first_nonfinite_step"])))
    return None if step == NO_STEP else step
