"""K-seed strategies (cnn_jax.seed_strategy): same numbers whichever runs, choice and cache."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from cnn_jax import seed_strategy, steps
from cnn_jax.config.specs import TrainSpec
from cnn_jax.nn.model_spec import BlockSpec, HeadSpec, ModelSpec
from cnn_jax.nn.models import CNN

SHAPE = (8, 8, 1)
K, B = 3, 4


def _tiny():
    spec = ModelSpec((BlockSpec(4, 3, pool="max", batch_norm=True),), HeadSpec(), 10)
    model, tx = CNN(spec), optax.adam(1e-2)
    train = steps.make_train_step(model, tx, mean=[0.5], std=[0.25])
    evaluate = steps.make_eval_step(model, mean=[0.5], std=[0.25])
    init = jax.jit(
        jax.vmap(lambda s: steps.create_train_state(model, tx, jax.random.key(s), SHAPE))
    )
    seeds = jnp.arange(K, dtype=jnp.uint32)
    fast = {"xla_backend_optimization_level": 0}  # threefry init compiles ~10x faster
    return model, tx, train, evaluate, init.lower(seeds).compile(compiler_options=fast)(seeds)


def _batches(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    return [
        {
            "image": jnp.asarray(rng.integers(0, 256, (K, B, *SHAPE), dtype=np.uint8)),
            "label": jnp.asarray(rng.integers(0, 10, (K, B)).astype(np.int32)),
        }
        for _ in range(n)
    ]


def _seed(tree, k: int):
    return jax.tree.map(lambda x: x[k], tree)


@pytest.mark.slow
def test_strategies_match_vmap() -> None:
    """Two steps and an eval give the same states and metrics as jax.vmap (float tolerance:
    the grouped convolution of vmap adds in another order)."""
    _, _, train, evaluate, state0 = _tiny()
    out = {}
    for name in seed_strategy.STRATEGIES:
        t, e = (jax.jit(f) for f in seed_strategy.apply(name, train, evaluate))
        state, metrics = state0, None
        for batch in _batches(2):
            state, metrics = t(state, batch)
        eval_batch = {k: v[0] for k, v in _batches(1)[0].items()} | {"mask": jnp.ones(B)}
        out[name] = (state.params, state.batch_stats, metrics["loss_sum"], e(state, eval_batch))
    for strategy in ("sequential", "chunked", "unrolled", "chained"):
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
            out["vmap"],
            out[strategy],
        )
        assert out[strategy][2].shape == (K,)  # per-seed metrics


@pytest.mark.slow
def test_seeds_differ_and_match_single_seed_runs() -> None:
    """Seed k of the mapped program equals seed k trained alone (no mixing across seeds)."""
    _, _, train, evaluate, state0 = _tiny()
    t = jax.jit(seed_strategy.apply("sequential", train, evaluate)[0])
    batch = _batches(1)[0]
    state, _ = t(state0, batch)
    for k in range(K):
        alone, _ = jax.jit(train)(_seed(state0, k), _seed(batch, k))
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
            _seed(state.params, k),
            alone.params,
        )
    assert not np.allclose(state.params["logits"]["bias"][0], state.params["logits"]["bias"][1])


def _kw(model, tx) -> dict:
    train = TrainSpec(batch_size=B, num_epochs=1, num_seeds=K)
    cost = seed_strategy.cost_extra({"name": "adam", "learning_rate": 1e-2}, None)
    return {"train": train, "cost": cost, "model": model, "tx": tx, "image_shape": SHAPE}


def test_cost_extra_is_the_sections_as_written() -> None:
    """The text keys the measurement cache: the given fields only, in sorted JSON."""
    optim = ml_collections.ConfigDict({"name": "adam", "learning_rate": 1e-2, "l2": 0})
    augment = ml_collections.ConfigDict({"flip": True})
    text = '[{"l2": 0, "learning_rate": 0.01, "name": "adam"}, {"flip": true}]'
    assert seed_strategy.cost_extra(optim, augment) == text
    assert seed_strategy.cost_extra(optim.to_dict(), None).endswith(", {}]")


def test_rule_forced_and_bad_value(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(seed_strategy.CACHE_ENV, str(tmp_path / "cache.json"))
    model, tx, train, evaluate, _ = _tiny()
    kw = _kw(model, tx)
    monkeypatch.delenv(seed_strategy.ENV, raising=False)
    seed_strategy.over_seeds(train, evaluate, **kw)
    decision = seed_strategy.recorded()
    expected = seed_strategy.rule(jax.default_backend())  # the rule of the backend it runs on
    assert decision["source"] == "rule" and decision["strategy"] == expected
    assert seed_strategy.rule("gpu") == "vmap" and seed_strategy.rule("tpu") == "vmap"
    assert seed_strategy.rule("cpu") == "unrolled"
    monkeypatch.setenv(seed_strategy.ENV, "vmap")
    seed_strategy.over_seeds(train, evaluate, **kw)
    assert seed_strategy.recorded()["source"] == "forced"
    monkeypatch.setenv(seed_strategy.ENV, "fastest")
    with pytest.raises(ValueError, match="CNN_JAX_SEED_STRATEGY: 'fastest' not allowed"):
        seed_strategy.over_seeds(train, evaluate, **kw)


@pytest.mark.slow
def test_measure_caches_the_fastest(monkeypatch, tmp_path) -> None:
    """`measure` times every strategy, picks the fastest and caches it; `auto` reuses it."""
    monkeypatch.setenv(seed_strategy.CACHE_ENV, str(tmp_path / "cache.json"))
    model, tx, train, evaluate, _ = _tiny()
    kw = _kw(model, tx)
    monkeypatch.setenv(seed_strategy.ENV, "measure")
    seed_strategy.over_seeds(train, evaluate, **kw)
    measured = seed_strategy.recorded()
    speeds = measured["images_per_sec"]
    assert set(speeds) == set(seed_strategy.STRATEGIES) and all(v > 0 for v in speeds.values())
    assert measured["strategy"] == max(speeds, key=speeds.get)
    monkeypatch.setenv(seed_strategy.ENV, "auto")
    seed_strategy.over_seeds(train, evaluate, **kw)
    cached = seed_strategy.recorded()
    assert cached["source"] == "cached" and cached["strategy"] == measured["strategy"]
    assert cached["images_per_sec"] == speeds


def test_chained_orders_the_copies_with_barriers() -> None:
    """`chained` puts an optimization barrier between consecutive copies (K - 1 of them in
    the train step), `unrolled` none: the only difference between the two programs."""
    _, _, train, evaluate, state0 = _tiny()
    batch = _batches(1)[0]
    count = {}
    for name in ("unrolled", "chained"):
        jaxpr = jax.make_jaxpr(seed_strategy.apply(name, train, evaluate)[0])(state0, batch)
        count[name] = str(jaxpr).count("optimization_barrier")
    assert count == {"unrolled": 0, "chained": K - 1}


def _with_member_rates():
    """(train step taking each member's `lr` from its batch's hparams, K fresh states)."""
    spec = ModelSpec((BlockSpec(4, 3, pool="max", batch_norm=True),), HeadSpec(), 10)
    model, tx = CNN(spec), optax.sgd(0.05)
    train = steps.make_train_step(
        model, tx, mean=[0.5], std=[0.25], member_tx=lambda h: optax.sgd(h["lr"])
    )
    init = jax.vmap(lambda s: steps.create_train_state(model, tx, jax.random.key(s), SHAPE))
    return train, jax.jit(init)(jnp.arange(K, dtype=jnp.uint32))


@pytest.mark.parametrize(
    "strategy",
    [
        "unrolled",
        "vmap",
        pytest.param("sequential", marks=pytest.mark.slow),
        pytest.param("chunked", marks=pytest.mark.slow),
        pytest.param("chained", marks=pytest.mark.slow),
    ],
)
def test_a_diverging_member_is_frozen_and_the_others_are_untouched(strategy: str) -> None:
    """Member 1's Inf learning rate makes its first update non-finite: it keeps its initial
    state and reports step 1 in every later step, while members 0 and 2 come out bit for bit
    as the program without the freeze computes them."""
    from cnn_jax.config.grid import with_hparams

    train, state0 = _with_member_rates()
    rates = {"lr": np.array([0.05, np.inf, 0.1], np.float32)}
    mapped = seed_strategy.apply(strategy, train, lambda s, b: b)[0]
    plain = jax.jit(with_hparams(mapped, rates))  # as before the freeze existed
    frozen = jax.jit(with_hparams(steps.freeze_diverged(mapped), rates))
    a = b = state0
    for batch in _batches(3):
        a, _ = plain(a, batch)
        b, metrics = frozen(b, batch)
        expected = [steps.NO_STEP, 1, steps.NO_STEP]  # member 1: step 1, again and again
        np.testing.assert_array_equal(metrics["first_nonfinite_step"], expected)
    same = lambda x, y: jax.tree.map(np.testing.assert_array_equal, x, y)  # noqa: E731
    ulp = lambda x, y: jax.tree.map(lambda u, v: np.testing.assert_array_max_ulp(u, v, 1), x, y)  # noqa: E731
    for name in ("step", "params", "batch_stats", "opt_state"):
        for k in (0, 2):  # vmapped: the BN averages may move by an ulp (_keep_where)
            close = ulp if strategy in ("vmap", "chunked") and name == "batch_stats" else same
            close(getattr(_seed(b, k), name), getattr(_seed(a, k), name))
        same(getattr(_seed(b, 1), name), getattr(_seed(state0, 1), name))
    assert steps.frozen_members(b, 3) == {1: 1}
    assert not all(np.all(np.isfinite(x)) for x in jax.tree.leaves(_seed(a, 1).params))
