"""Training-loop figures measured in one process, printed as one JSON object.

    python -m benchmarks.loop pipeline --steps 50 --rounds 5
    python -m benchmarks.loop seeds --seeds 8 --steps 10 --rounds 5
    python -m benchmarks.loop seeds --seeds 8 --strategies unrolled,vmap   # skip the slow lax.maps
    python -m benchmarks.loop pool --batch 128 --steps 10 --rounds 5

`pipeline`: the project's real input path (shuffled uint8 rows of MNIST, gathered on the host,
sharded onto the device by `prefetch_to_device`) against the same number of steps on one
device-resident batch; overhead = 1 - loader rate / resident rate. Both run the trainer's
compiled step and accumulate metrics on device, as `cnn_jax.train` does.
`seeds`: K seeds as the trainer runs them (`num_seeds = K`) with each `cnn_jax.seed_strategy`
(vmap, lax.map, chunked, unrolled) against K single-seed steps, each on its own
device-resident batch (synthetic images, digits config: no `make data` needed).
`pool`: 2x2 max pooling, forward + gradient, of mnist_cnn's first pooled activation
[B, 28, 28, 32]: `pooling.tile_max_pool` against `nn.max_pool` (XLA's reduce_window and
select-and-scatter).
Modes alternate round by round, so load from other processes hits both alike.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections.abc import Callable, Iterator

import jax

from benchmarks import common


def mnist_config(preset: str, batch: int, num_seeds: int = 1, dataset: str = "mnist"):
    """The MNIST config with `preset`, `batch` and `num_seeds` (dataset "digits": the embedded
    digits on a 28x28 canvas, same image shape, no `make data` needed); no files written."""
    from experiments.configs import mnist

    config = mnist.get_config()
    config.model.preset = preset
    config.train.batch_size = batch
    config.train.num_seeds = num_seeds
    if dataset == "digits":
        config.dataset.name = "digits"
        config.dataset.options = {"canvas_size": 28}
    return config


def mnist_prepared() -> bool:
    """Whether MNIST is prepared (`make data`)."""
    from cnn_jax import run_setup

    try:
        run_setup.load_dataset(mnist_config("mnist_cnn", 128))
    except (FileNotFoundError, ValueError, RuntimeError, OSError):
        return False
    return True


def timed_loop(step: Callable, state, batches: Iterator, n: int) -> tuple[float, object]:
    """Seconds for n trainer steps (metrics summed on device, one sync at the end)."""
    from cnn_jax import steps

    total = None
    t0 = time.perf_counter()
    for batch in itertools.islice(batches, n):
        state, metrics = step(state, batch)
        total = steps.accumulate(total, metrics)
    jax.block_until_ready((state, total))
    return time.perf_counter() - t0, state


def alternate(modes: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Runs each mode once per round (rotating the order); seconds per mode per round."""
    names = list(modes)
    secs: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds + 1):  # round 0 warms up
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            sec = modes[name]()
            if r:
                secs[name].append(sec)
    return secs


def pipeline(preset: str, batch: int, steps: int, rounds: int) -> dict:
    """Loader (with and without prefetch) vs device-resident batch, img/s and overhead."""
    from cnn_jax import input_pipeline, run_setup

    dataset = "mnist" if mnist_prepared() else "digits"
    run = run_setup.build(mnist_config(preset, batch, dataset=dataset))
    train = run.dataset.train
    box = {"state": run.init_state(), "epoch": 0}

    def loader(prefetch: int) -> Iterator:
        while True:  # a fresh permutation per pass, as epochs do
            box["epoch"] += 1
            rows = input_pipeline.train_batches(
                train.images, train.labels, batch, seed=0, epoch=box["epoch"]
            )
            yield from input_pipeline.prefetch_to_device(rows, run.mesh, size=prefetch)

    resident = next(loader(0))

    def mode(batches_fn: Callable[[], Iterator]) -> Callable[[], float]:
        def go() -> float:
            sec, box["state"] = timed_loop(run.train_step, box["state"], batches_fn(), steps)
            return sec

        return go

    secs = alternate(
        {
            "resident": mode(lambda: itertools.repeat(resident)),
            "loader": mode(lambda: loader(2)),
            "loader_no_prefetch": mode(lambda: loader(0)),
        },
        rounds,
    )
    rates = {k: [steps * batch / s for s in v] for k, v in secs.items()}
    out = {k: statistics.median(v) for k, v in rates.items()}
    for k in ("loader", "loader_no_prefetch"):
        per_round = [a / b for a, b in zip(rates[k], rates["resident"])]
        out[f"{k}_overhead_pct"] = 100 * (1 - statistics.median(per_round))
    info = {"preset": preset, "batch": batch, "steps": steps, "rounds": rounds}
    return {**info, "dataset": dataset, **out}


def seeds(
    preset: str, batch: int, num_seeds: int, steps: int, rounds: int, strategies=None
) -> dict:
    """K seeds: each `seed_strategy` (vmap, lax.map, chunked, unrolled; or `strategies`) as the
    trainer builds it, against K sequential single-seed steps (img/s over all seeds, per-round
    ratios, and each strategy's first-step seconds: compile included)."""
    import os

    import numpy as np

    from cnn_jax import run_setup, seed_strategy
    from cnn_jax.system import parallel

    single = run_setup.build(mnist_config(preset, batch, dataset="digits"))
    multi, first_step_sec = {}, {}
    for name in strategies or seed_strategy.STRATEGIES:
        os.environ[seed_strategy.ENV] = name
        config = mnist_config(preset, batch, num_seeds, dataset="digits")
        multi[name] = run_setup.build(config, dataset=single.dataset)
    host = common.synthetic_batch(batch, single.dataset.image_shape)
    one = parallel.shard_batch(host, single.mesh)
    stacked = {k: np.stack([v] * num_seeds) for k, v in host.items()}
    many = parallel.shard_batch(stacked, single.mesh, seed_axis=True)
    box = {n: r.init_state() for n, r in multi.items()}
    box["single"] = [single.init_state() for _ in range(num_seeds)]
    for name, run in multi.items():  # compile here, so that round 0 only warms caches
        t0 = time.perf_counter()
        box[name] = jax.block_until_ready(run.train_step(box[name], many)[0])
        first_step_sec[name] = round(time.perf_counter() - t0, 1)

    def mapped(name: str) -> Callable[[], float]:
        def go() -> float:
            step = multi[name].train_step
            sec, box[name] = timed_loop(step, box[name], itertools.repeat(many), steps)
            return sec

        return go

    def sequential() -> float:
        total = 0.0
        for k in range(num_seeds):
            sec, box["single"][k] = timed_loop(
                single.train_step, box["single"][k], itertools.repeat(one), steps
            )
            total += sec
        return total

    modes = {name: mapped(name) for name in multi} | {"K runs": sequential}
    secs = alternate(modes, rounds)
    images = steps * batch * num_seeds
    out = {"preset": preset, "batch": batch, "num_seeds": num_seeds, "rounds": rounds}
    for name, v in secs.items():
        out[name] = images / statistics.median(v)
        per = [s / m for m, s in zip(v, secs["K runs"])]
        out[f"{name}_over_K_runs"] = [statistics.median(per), min(per), max(per)]
    out["rule"] = seed_strategy.rule()
    return out | {"first_step_sec": first_step_sec}


def pool(batch: int, steps: int, rounds: int) -> dict:
    """ms per forward + gradient of 2x2 max pooling: tiles vs reduce_window."""
    import flax.linen as nn
    import jax.numpy as jnp
    import numpy as np

    from cnn_jax.nn import pooling

    x_bhwc = jnp.asarray(np.random.default_rng(0).normal(size=(batch, 28, 28, 32)), jnp.float32)

    def grad_of(pool_fn: Callable) -> Callable:
        return jax.jit(jax.grad(lambda v: (pool_fn(v) ** 2).sum()))

    fns = {
        "tile": grad_of(lambda v: pooling.tile_max_pool(v, 2)),
        "reduce_window": grad_of(lambda v: nn.max_pool(v, (2, 2), (2, 2), "VALID")),
    }

    def mode(fn: Callable) -> Callable[[], float]:
        def go() -> float:
            t0 = time.perf_counter()
            for _ in range(steps):
                fn(x_bhwc).block_until_ready()
            return time.perf_counter() - t0

        return go

    secs = alternate({k: mode(f) for k, f in fns.items()}, rounds)
    out = {f"{k}_ms": 1000 * statistics.median(v) / steps for k, v in secs.items()}
    ratios = [r / t for t, r in zip(secs["tile"], secs["reduce_window"])]
    return {"batch": batch, **out, "speedup": statistics.median(ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("pipeline", "seeds", "pool"))
    parser.add_argument("--preset", default="mnist_cnn")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--strategies", help="seeds: comma-separated subset of the strategies")
    args = parser.parse_args()
    if args.what == "pipeline":
        out = pipeline(args.preset, args.batch, args.steps, args.rounds)
    elif args.what == "pool":
        out = pool(args.batch, args.steps, args.rounds)
    else:
        from cnn_jax.seed_strategy import STRATEGIES

        names = args.strategies.split(",") if args.strategies else None
        bad = set(names or ()) - set(STRATEGIES)
        if bad:
            parser.error(f"--strategies: {', '.join(sorted(bad))} unknown")
        out = seeds(args.preset, args.batch, args.seeds, args.steps, args.rounds, names)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
