"""How to train K seeds of one config as one compiled program: the fastest way per backend/model.

The stacked state ([K, ...] on every leaf) and the per-seed batches ([K, B, ...]) are the same
for every strategy, so checkpoints, early stopping and `runs.load_run` do not care which ran:

- `vmap`: `jax.vmap(train_step)`. JAX's batching rule folds the seed axis of a convolution whose
  input and kernel both carry it into the feature-group dimension (one grouped convolution of
  K groups) and turns dense layers into batched matmuls: one wide program. This fills an
  accelerator, but XLA's CPU grouped convolution is slow (0.46x of K sequential steps for
  mnist_cnn at K = 8, benchmarks/REPORT_seeds.md).
- `sequential`: `lax.map` over the seed axis: the single-seed step, compiled once, run K times
  in one program's loop (no per-seed dispatch, no grouped convolutions).
- `chunked`: `lax.map(..., batch_size=2)`: vmap over pairs of seeds, pairs in sequence.
- `unrolled`: K copies of the single-seed step side by side in one program (a trace-time loop):
  the single-seed convolutions, no loop and no grouped convolution; compile time grows with K.
- `chained`: `unrolled` with an optimization barrier between consecutive copies, so they run
  one after another as K separate calls would (1.03x K runs vs unrolled 1.00x at K = 8 under
  load 3.7-4, 2026-12-02; not yet measured quiet, so the rule below still picks `unrolled`).
  XLA's CPU backend runs a convolution inside a `lax.map` loop far slower than outside one:
  `python -m benchmarks.loop seeds --seeds 4 --steps 10 --rounds 3` (mnist_cnn, batch 128,
  2 quiet cores, load 1.0) gave unrolled 1.40x K single-seed runs, vmap 0.23x, sequential
  0.11x, chunked 0.07x. At K = 8 (`python -m benchmarks.run --only seeds`, run-path settings:
  tcmalloc and the XLA convolution flag, 2 quiet cores, 2026-12-02, benchmarks/REPORT_seeds.md)
  unrolled ran at 0.86x [0.71, 0.93] of K single-seed runs, vmap 0.46x; without the run-path
  settings (`python -m benchmarks.loop seeds --seeds 8 --strategies unrolled,vmap`) unrolled
  was 1.27x and vmap 0.26x: the flag speeds single-seed steps up more than the unrolled copies.

Which one: `CNN_JAX_SEED_STRATEGY` = `auto` (default: a measurement cached for this
backend/model/shape/batch/K if there is one, else the rule), `measure` (time every strategy
now for a few steps, cache the result), `rule`, or a strategy's name. The documented rule:
`unrolled` on CPU (measured above), `vmap` on GPU/TPU (one wide
program keeps the device busy; not measured in this repo yet, see docs/accelerators.md).
The choice and any measured speeds go into results.json (`seed_strategy`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

STRATEGIES = ("vmap", "sequential", "chunked", "unrolled", "chained")
CHUNK = 2
ENV = "CNN_JAX_SEED_STRATEGY"
MODES = ("auto", "measure", "rule", *STRATEGIES)
CACHE_ENV = "CNN_JAX_SEED_STRATEGY_CACHE"
log = logging.getLogger(__name__)
MEASURE_STEPS, MEASURE_ROUNDS = 2, 3

if TYPE_CHECKING:
    from cnn_jax.config.specs import TrainSpec

StepFn = Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class Problem:
    """What a K-seed run trains: enough to key the cache and to time a few steps."""

    model_repr: str  # repr of the ModelSpec (architecture and compute dtype)
    image_shape: tuple[int, ...]
    batch_size: int
    num_seeds: int
    init_fn: Callable[[jax.Array], Any]  # uint32 seed -> one seed's TrainState
    extra: str = ""  # anything else that changes the step's cost (optimizer, augmentation)

    def key(self) -> str:
        """backend/device | model hash | shape | batch | K: one cache entry."""
        dev = jax.devices()[0]
        model = hashlib.sha256((self.model_repr + self.extra).encode()).hexdigest()[:12]
        shape = "x".join(map(str, self.image_shape))
        return (
            f"{jax.default_backend()}:{dev.device_kind}:{jax.device_count()}|{model}|{shape}"
            f"|b{self.batch_size}|K{self.num_seeds}"
        )


_decisions: dict[str, dict] = {}  # key -> decision, for results.json


def over_seeds(
    train_step: StepFn,
    eval_step: StepFn,
    *,
    train: TrainSpec,
    cost: str,
    model: Any,
    tx: Any,
    image_shape: tuple[int, ...],
) -> tuple[StepFn, StepFn]:
    """(train, eval) steps over a leading seed axis, by the strategy chosen for this run.

    train: (state [K, ...], batch [K, B, ...]) -> (state, metrics [K]); eval: (state [K, ...],
    one shared batch [B, ...]) -> metrics [K]. Both still to be jitted (`compile_steps`).
    `train` is the run's train spec (batch_size, num_seeds), `cost` its `cost_extra`;
    `model` (a `models.CNN`) and `tx` make states to time the strategies with."""
    from cnn_jax import steps

    def init_fn(seed: jax.Array) -> Any:
        return steps.create_train_state(model, tx, jax.random.key(seed), tuple(image_shape))

    problem = Problem(
        repr(model.spec), tuple(image_shape), train.batch_size, train.num_seeds, init_fn, cost
    )
    decision = choose(train_step, problem)
    _decisions[problem.key()] = decision
    return apply(decision["strategy"], train_step, eval_step)


def cost_extra(optim: Any, augment: Any | None) -> str:
    """The config sections besides the model that change a step's cost, as written (the
    given fields only, not the typed specs' defaults: the text keys the measurement cache
    and results.json's `seed_strategy.key`, so it must not change)."""
    augment = augment or {}
    augment = augment.to_dict() if hasattr(augment, "to_dict") else dict(augment)
    optim = optim.to_dict() if hasattr(optim, "to_dict") else dict(optim)
    return json.dumps([optim, augment], default=str, sort_keys=True)


def describe(run: Any) -> dict | None:
    """The decision recorded for a built `RunSetup` with K > 1 seeds (None for one seed), for
    results.json: strategy, source, images/s per strategy when measured, cache key."""
    if len(run.seeds) < 2:
        return None
    problem = Problem(
        repr(run.model.spec),
        tuple(run.dataset.image_shape),
        run.train.batch_size,
        len(run.seeds),
        lambda s: None,
        run.cost_extra,
    )
    return _decisions.get(problem.key())


def apply(strategy: str, train_step: StepFn, eval_step: StepFn) -> tuple[StepFn, StepFn]:
    """The two steps mapped over the seed axis by `strategy` (one of STRATEGIES)."""
    if strategy == "vmap":
        return jax.vmap(train_step), jax.vmap(eval_step, in_axes=(0, None))
    if strategy in ("unrolled", "chained"):
        chained = strategy == "chained"
        return (
            _unrolled(train_step, chained=chained),
            _unrolled(eval_step, shared_batch=True, chained=chained),
        )
    chunk = CHUNK if strategy == "chunked" else None
    if strategy not in STRATEGIES:
        raise ValueError(f"{ENV}: {strategy!r} not allowed; allowed: {', '.join(MODES)}")

    def train(state, batch):
        return jax.lax.map(lambda sb: train_step(*sb), (state, batch), batch_size=chunk)

    def evaluate(state, batch):
        return jax.lax.map(lambda s: eval_step(s, batch), state, batch_size=chunk)

    return train, evaluate


def _unrolled(step: StepFn, shared_batch: bool = False, chained: bool = False) -> StepFn:
    """K copies of the single-seed step in one program (a Python loop at trace time): each
    copy keeps the single-seed convolutions, with no loop around them. `chained`: copy i + 1's
    inputs pass through an optimization barrier with copy i's outputs, so the copies run one
    after another, as K separate calls would, instead of competing for the cores."""

    def mapped(state, batch):
        k = jax.tree.leaves(state)[0].shape[0]
        pick = lambda tree, i: jax.tree.map(lambda x: x[i], tree)
        outs: list[Any] = []
        for i in range(k):
            inputs = (pick(state, i), batch if shared_batch else pick(batch, i))
            if chained and outs:
                inputs, _ = jax.lax.optimization_barrier((inputs, outs[-1]))
            outs.append(step(*inputs))
        return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

    return mapped


def rule(backend: str | None = None) -> str:
    """The documented default: unrolled on CPU, vmap on accelerators."""
    return "unrolled" if (backend or jax.default_backend()) == "cpu" else "vmap"


def choose(train_step: StepFn, problem: Problem) -> dict:
    """{'strategy', 'source': forced|cached|measured|rule, 'images_per_sec': {...} | None}."""
    mode = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{ENV}: {mode!r} not allowed; allowed: {', '.join(MODES)}")
    if mode in STRATEGIES:
        return {"strategy": mode, "source": "forced", "images_per_sec": None, "key": problem.key()}
    cache = _load_cache()
    if mode == "auto" and problem.key() in cache:
        return {**cache[problem.key()], "source": "cached", "key": problem.key()}
    if mode == "measure":
        decision = measure(train_step, problem)
        cache[problem.key()] = {k: v for k, v in decision.items() if k not in ("source", "key")}
        _save_cache(cache)
        return decision
    return {"strategy": rule(), "source": "rule", "images_per_sec": None, "key": problem.key()}


def measure(train_step: StepFn, problem: Problem, strategies=STRATEGIES) -> dict:
    """Times each strategy's compiled train step on a synthetic batch (rounds in turns, median);
    returns the decision with images/s per strategy and compile seconds."""
    k, b = problem.num_seeds, problem.batch_size
    seeds = jnp.arange(k, dtype=jnp.uint32)
    init = jax.jit(jax.vmap(problem.init_fn)).lower(seeds)
    state0 = init.compile(compiler_options={"xla_backend_optimization_level": 0})(seeds)
    rng = np.random.default_rng(0)
    batch = {
        "image": jnp.asarray(rng.integers(0, 256, (k, b, *problem.image_shape), dtype=np.uint8)),
        "label": jnp.asarray(rng.integers(0, 2, (k, b)).astype(np.int32)),
    }
    compiled, compile_sec = {}, {}
    for name in strategies:
        fn = apply(name, train_step, lambda s, x: x)[0]
        t0 = time.perf_counter()
        compiled[name] = jax.jit(fn).lower(state0, batch).compile()
        compile_sec[name] = time.perf_counter() - t0
    secs: dict[str, list[float]] = {n: [] for n in strategies}
    for r in range(MEASURE_ROUNDS + 1):  # round 0 warms up; the order rotates
        for i in range(len(strategies)):
            name = strategies[(r + i) % len(strategies)]
            state, t0 = state0, time.perf_counter()
            for _ in range(MEASURE_STEPS):
                state, _ = compiled[name](state, batch)
            jax.block_until_ready(state)
            if r:
                secs[name].append(time.perf_counter() - t0)
    rates = {n: MEASURE_STEPS * k * b / statistics.median(s) for n, s in secs.items()}
    return {
        "strategy": max(rates, key=rates.get),
        "source": "measured",
        "images_per_sec": {n: round(v, 1) for n, v in rates.items()},
        "compile_sec": {n: round(v, 2) for n, v in compile_sec.items()},
        "key": problem.key(),
    }


def recorded(key: str | None = None) -> dict | None:
    """The decision made for `key` in this process (the last one when None), for results.json."""
    if key is not None:
        return _decisions.get(key)
    return next(reversed(_decisions.values()), None)


def cache_path() -> Path:
    """$CNN_JAX_SEED_STRATEGY_CACHE, else $XDG_CACHE_HOME/cnn_jax/seed_strategy.json."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnn_jax" / "seed_strategy.json"


def _load_cache() -> dict:
    try:
        return json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(cache: dict) -> None:
    """Stores the measured decisions; an unwritable cache only costs a measurement next time."""
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError as e:
        log.warning("seed strategy cache %s not written (%s); set %s", path, e.strerror, CACHE_ENV)
