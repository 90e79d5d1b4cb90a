"""Checkpointer: bitwise round trips (typed keys, optax state, shardings), save schedule and
retention, refusing other configs, and falling back past damaged checkpoints."""

from __future__ import annotations

import asyncio
import logging
import types
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import struct

from cnn_jax.system import checkpoint
from cnn_jax.system.checkpoint import (
    Checkpointer,
    CheckpointMismatchError,
    NoReadableCheckpointError,
)
from tests.conftest import run_python

# A restore that fails on damaged files leaves TensorStore callbacks that hit Orbax's
# closed event loop; Python reports them as unraisable exceptions. Harmless noise.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class State(struct.PyTreeNode):
    """Shaped like the trainer's TrainState."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array


def make_state(seed: int = 0, *, width: int = 4, raw_key: bool = False) -> State:
    """A state with distinct values per seed; built from numpy so that no XLA compiles."""
    rng = np.random.default_rng(seed)

    def fill(x: jax.ShapeDtypeStruct) -> jax.Array:
        if jnp.issubdtype(x.dtype, jnp.integer):
            return jnp.asarray(rng.integers(0, 1000, x.shape), x.dtype)
        return jnp.asarray(rng.standard_normal(x.shape), x.dtype)

    params = {
        "conv": {"kernel": np.zeros((3, 3, 1, width), np.float32), "bias": np.zeros(width)},
        "dense": {"kernel": np.zeros((width, 10), np.float32)},
    }
    params = jax.tree.map(fill, jax.eval_shape(lambda: params))
    opt_state = jax.tree.map(fill, jax.eval_shape(optax.adam(1e-3).init, params))
    key_data = jnp.asarray(rng.integers(0, 2**32, 2, dtype=np.uint32))
    return State(
        step=jnp.asarray(seed, jnp.int32),
        params=params,
        batch_stats={"bn": {"mean": fill(params["conv"]["bias"]), "var": jnp.ones(width)}},
        opt_state=opt_state,
        rng=key_data if raw_key else jax.random.wrap_key_data(key_data),
    )


def assert_bitwise_equal(a: Any, b: Any) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_restore_latest_on_empty_dir_returns_none(tmp_path: Path):
    with Checkpointer(tmp_path / "ckpt", save_every_steps=1) as ckpt:
        assert ckpt.latest_step() is None
        assert ckpt.restore_latest(make_state()) is None


def test_round_trip_is_bitwise_into_concrete_and_abstract_targets(tmp_path: Path):
    saved = make_state(1)
    with Checkpointer(tmp_path, save_every_steps=2, fingerprint="f") as ckpt:
        assert ckpt.maybe_save(2, saved)
    with Checkpointer(tmp_path, save_every_steps=2, fingerprint="f") as ckpt:
        restored, step = ckpt.restore_latest(make_state(7))
        assert step == 2 and isinstance(restored, State)
        assert_bitwise_equal(restored, saved)
        assert jax.random.key_impl(restored.rng) == jax.random.key_impl(saved.rng)
        restored, _ = ckpt.restore_latest(jax.eval_shape(lambda: make_state(7)))
        assert_bitwise_equal(restored, saved)


def test_raw_and_typed_keys_follow_the_target(tmp_path: Path):
    with Checkpointer(tmp_path, save_every_steps=1) as ckpt:
        ckpt.maybe_save(1, make_state(3, raw_key=True))
        raw, _ = ckpt.restore_latest(make_state(0, raw_key=True))
        assert_bitwise_equal(raw, make_state(3, raw_key=True))
        typed, _ = ckpt.restore_latest(make_state(0))
        assert_bitwise_equal(typed, make_state(3))
        ckpt.maybe_save(2, make_state(4))
        raw, _ = ckpt.restore_latest(make_state(0, raw_key=True))
        assert_bitwise_equal(raw, make_state(4, raw_key=True))


def test_async_save_then_wait(tmp_path: Path):
    with Checkpointer(tmp_path, save_every_steps=1, async_save=True) as ckpt:
        assert ckpt.maybe_save(1, make_state(1))
        ckpt.wait()
        assert_bitwise_equal(ckpt.restore_latest(make_state())[0], make_state(1))


def test_save_every_steps_and_max_to_keep(tmp_path: Path):
    state = make_state()
    with Checkpointer(tmp_path, save_every_steps=3, max_to_keep=2) as ckpt:
        saved = [step for step in range(1, 11) if ckpt.maybe_save(step, state)]
        assert saved == [3, 6, 9]
        assert ckpt.all_steps() == [6, 9]
        assert ckpt.maybe_save(10, state, force=True)
        assert not ckpt.maybe_save(10, state, force=True)  # Never overwrites a step.
        assert ckpt.all_steps() == [9, 10] and ckpt.latest_step() == 10
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["10", "9"]


def test_other_fingerprint_is_refused(tmp_path: Path):
    with Checkpointer(tmp_path, save_every_steps=1, fingerprint="model-a") as ckpt:
        ckpt.maybe_save(1, make_state())
    with (
        Checkpointer(tmp_path, save_every_steps=1, fingerprint="model-b") as ckpt,
        pytest.raises(CheckpointMismatchError, match="'model-a', expected 'model-b'"),
    ):
        ckpt.restore_latest(make_state())


def test_shape_mismatch_names_the_leaf_and_shapes(tmp_path: Path):
    with Checkpointer(tmp_path, save_every_steps=1) as ckpt:
        ckpt.maybe_save(1, make_state(width=4))
        with pytest.raises(CheckpointMismatchError) as info:
            ckpt.restore_latest(make_state(width=5))
    message = str(info.value)
    assert "\n" not in message
    assert (
        "leaf 'params.conv.bias' has shape (4,) in the checkpoint but (5,) in the target" in message
    )


def test_structure_mismatch_names_the_leaf(tmp_path: Path):
    with Checkpointer(tmp_path, save_every_steps=1) as ckpt:
        ckpt.maybe_save(1, make_state())
        target = make_state().replace(batch_stats={})
        with pytest.raises(
            CheckpointMismatchError, match="'batch_stats.bn.mean' of the checkpoint"
        ):
            ckpt.restore_latest(target)


def _damage(step_dir: Path, how: str) -> None:
    data = [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]
    assert data
    for path in data:
        if how == "delete":
            path.unlink()
        else:
            with open(path, "r+b") as f:
                f.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize("how", ["delete", "truncate"])
def test_damaged_latest_step_falls_back_to_previous(tmp_path: Path, caplog, how: str):
    with Checkpointer(tmp_path, save_every_steps=2, max_to_keep=3) as ckpt:
        ckpt.maybe_save(2, make_state(2))
        ckpt.maybe_save(4, make_state(4))
    _damage(tmp_path / "4", how)
    with Checkpointer(tmp_path, save_every_steps=2, max_to_keep=3) as ckpt:
        with caplog.at_level(logging.WARNING, logger="cnn_jax.system.checkpoint"):
            restored, step = ckpt.restore_latest(make_state())
        assert step == 2
        assert_bitwise_equal(restored, make_state(2))
        assert any("step 4" in r.getMessage() for r in caplog.records)
        # The damaged step is moved aside, so training can save step 4 again.
        assert ckpt.all_steps() == [2]
        assert [p.name for p in tmp_path.glob("4.corrupt-*")]
        assert ckpt.maybe_save(4, make_state(4))
        assert_bitwise_equal(ckpt.restore_latest(make_state())[0], make_state(4))


def test_no_readable_step_raises(tmp_path: Path):
    with Checkpointer(tmp_path, save_every_steps=1) as ckpt:
        ckpt.maybe_save(1, make_state())
    _damage(tmp_path / "1", "delete")
    with (
        Checkpointer(tmp_path, save_every_steps=1) as ckpt,
        pytest.raises(NoReadableCheckpointError, match=r"steps \[1\]"),
    ):
        ckpt.restore_latest(make_state())
    assert (tmp_path / "1").is_dir()  # Nothing is moved when there is nothing to fall back on.


def test_unfinished_save_is_ignored(tmp_path: Path):
    with Checkpointer(tmp_path, save_every_steps=1) as ckpt:
        ckpt.maybe_save(1, make_state(1))
    # What a save killed half-way leaves behind: Orbax's temporary step directory.
    (tmp_path / "2.orbax-checkpoint-tmp-1234567890" / "state").mkdir(parents=True)
    with Checkpointer(tmp_path, save_every_steps=1) as ckpt:
        assert ckpt.latest_step() == 1
        assert ckpt.restore_latest(make_state())[1] == 1
        assert ckpt.maybe_save(2, make_state(2))


def sharded_round_trip(directory: str) -> None:
    """Saves a replicated + batch-sharded state over a 1-axis mesh and restores it with
    other shardings; run in-process when >1 device exists, else in a subprocess."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.asarray(jax.devices()), ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    split = NamedSharding(mesh, PartitionSpec("data"))
    n = mesh.devices.size
    state = jax.device_put(make_state(5, width=2 * n), replicated)
    state = state.replace(batch_stats={"rows": jax.device_put(jnp.arange(4.0 * n), split)})
    with Checkpointer(directory, save_every_steps=1) as ckpt:
        ckpt.maybe_save(1, state)
    # Restore with the batch-sharded leaf replicated and one kernel sharded instead.
    kernel = state.params["dense"]["kernel"]
    target = state.replace(
        batch_stats={"rows": jax.ShapeDtypeStruct((4 * n,), jnp.float32, sharding=replicated)},
        params={**state.params, "dense": {"kernel": jax.device_put(kernel, split)}},
    )
    with Checkpointer(directory, save_every_steps=1) as ckpt:
        restored, _ = ckpt.restore_latest(target)
    assert_bitwise_equal(restored, state)
    assert restored.batch_stats["rows"].sharding == replicated
    assert restored.params["dense"]["kernel"].sharding == split
    assert restored.rng.sharding == replicated
    assert restored.opt_state[0].mu["conv"]["kernel"].sharding == replicated


def test_sharded_round_trip(tmp_path: Path):
    if jax.device_count() > 1:
        sharded_round_trip(str(tmp_path))
        return
    code = (
        "import jax; assert jax.device_count() == 8\n"
        "from tests.system.test_checkpoint import sharded_round_trip\n"
        f"sharded_round_trip({str(tmp_path)!r})\n"
    )
    result = run_python(code, devices=8, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_step_of_other_settings_or_of_no_proven_identity_is_refused(tmp_path: Path):
    with Checkpointer(tmp_path / "a", save_every_steps=1, identity={"optim.lr": 0.1}) as ckpt:
        ckpt.maybe_save(1, make_state(), meta={"train_time_sec": 2.5})
    with Checkpointer(tmp_path / "a", save_every_steps=1, identity={"optim.lr": 0.1}) as ckpt:
        assert ckpt.restore_latest(make_state())[1] == 1
        assert ckpt.restored_meta["train_time_sec"] == 2.5
    with (
        Checkpointer(tmp_path / "a", save_every_steps=1, identity={"optim.lr": 0.2}) as ckpt,
        pytest.raises(CheckpointMismatchError, match=r"optim.lr: 0.1 -> 0.2") as refused,
    ):
        ckpt.restore_latest(make_state())
    assert "\n" not in str(refused.value) and "delete" not in str(refused.value)
    with Checkpointer(tmp_path / "b", save_every_steps=1) as ckpt:  # saved with no identity
        ckpt.maybe_save(1, make_state())

    def restore(required: bool):
        with Checkpointer(
            tmp_path / "b", save_every_steps=1, identity={"x": 1}, require_identity=required
        ) as reader:
            return reader.restore_latest(make_state())

    assert restore(False)[1] == 1  # something else (config.json) proves it: accepted
    with pytest.raises(CheckpointMismatchError, match="carries no run identity"):
        restore(True)


def test_a_read_only_reader_restores_exactly_its_step_and_changes_nothing(tmp_path: Path):
    with Checkpointer(tmp_path, save_every_steps=2, max_to_keep=3) as ckpt:
        ckpt.maybe_save(2, make_state(2))
        ckpt.maybe_save(4, make_state(4))
    _damage(tmp_path / "4", "delete")
    (tmp_path / "6.orbax-checkpoint-tmp-1234567890").mkdir()  # a save in progress
    listing = sorted(str(p) for p in tmp_path.rglob("*"))
    with Checkpointer(tmp_path, save_every_steps=1, read_only=True) as ckpt:
        with pytest.raises(NoReadableCheckpointError, match=r"step 4 in .* is unreadable"):
            ckpt.restore_step(make_state(), 4)
        with pytest.raises(NoReadableCheckpointError, match="step 4"):
            ckpt.restore_latest(make_state())  # no quiet fallback to step 2
        assert_bitwise_equal(ckpt.restore_step(make_state(), 2), make_state(2))
    assert sorted(str(p) for p in tmp_path.rglob("*")) == listing


def _closed_loop_error() -> BaseException:
    """The error TensorStore's native threads meet when they call `call_soon_threadsafe` on
    the closed event loop of a restore that gave up, with the traceback they leave (its
    outermost Python frame is that call: no Python code called it)."""
    loop = asyncio.new_event_loop()
    loop.close()
    try:
        loop.call_soon_threadsafe(print)
    except RuntimeError as e:
        return e.with_traceback(e.__traceback__.tb_next)
    raise AssertionError("a closed loop accepted a callback")


def test_only_the_abandoned_reads_closed_loop_errors_are_kept_off_stderr():
    seen: list[BaseException] = []
    hook = checkpoint._QuietUnraisable(lambda args: seen.append(args.exc_value))
    abandoned = _closed_loop_error()

    def unraisable(error: BaseException, obj: Any = None) -> Any:
        return types.SimpleNamespace(
            exc_type=type(error), exc_value=error, exc_traceback=error.__traceback__,
            err_msg=None, object=obj,
        )  # fmt: skip

    hook(unraisable(abandoned))
    assert seen == []
    others = [
        unraisable(abandoned, obj=print),  # a Python object's finaliser: not TensorStore's
        unraisable(RuntimeError("Event loop is closed")),  # raised by other code
        unraisable(ValueError("boom")),
    ]
    for args in others:
        hook(args)
    assert seen == [args.exc_value for args in others]


@pytest.mark.slow
def test_a_fallback_past_a_damaged_step_prints_one_warning_and_no_traceback(tmp_path: Path):
    # Orbax abandons the other reads of a damaged step; how many then hit its closed event
    # loop depends on timing (0 to dozens per restore): ten restores made 4 to 48 before.
    code = (
        "import logging, tempfile\nfrom pathlib import Path\n"
        "from tests.system.test_checkpoint import Checkpointer, _damage, make_state\n"
        "for i in range(10):\n"
        f"    d = Path({str(tmp_path)!r}) / str(i)\n"
        "    with Checkpointer(d, save_every_steps=2) as ckpt:\n"
        "        ckpt.maybe_save(2, make_state(2)); ckpt.maybe_save(4, make_state(4))\n"
        "    _damage(d / '4', 'truncate')\n"
        "    with Checkpointer(d, save_every_steps=2) as ckpt:\n"
        "        assert ckpt.restore_latest(make_state())[1] == 2\n"
        "import time; time.sleep(0.5)  # the abandoned reads finish\n"
    )
    result = run_python(code, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 10, lines[:5]
    assert all("is unreadable" in line and "4.corrupt-" in line for line in lines)
