"""Checkpointing of the training state; every Orbax call of the project lives here.

Orbax's API keeps moving, so the rest of the code only sees `Checkpointer`: save every N
steps, keep the newest few, restore the newest *readable* step into a target pytree
(abstract or concrete, its shardings are used), and refuse checkpoints written by another
model config (`CheckpointMismatchError`). Incomplete saves never count: Orbax writes each
step into a temporary directory and renames it when complete, and removes leftovers when
the manager opens. A finalised step whose files were later damaged is skipped with a
warning, moved aside as `<step>.corrupt-<time>` and the previous step is used instead.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, NoReturn

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as ocm

log = logging.getLogger(__name__)
PyTree = Any
_STATE, _META = "state", "meta"


class CheckpointMismatchError(ValueError):
    """The checkpoint was written for a different model or config than the restoring one."""


class NoReadableCheckpointError(ValueError):
    """Checkpoints exist but none of them could be read (a user-fixable state: one line)."""


class _QuietOrbax(logging.Filter):
    """Drops Orbax's INFO/DEBUG records (several per save, through absl), and asyncio's
    'exception was never retrieved' errors for the TensorStore reads that a restore of a
    damaged checkpoint abandons (each dumps kilobytes of spec; we log one warning)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "asyncio":
            message = record.getMessage()
            return "never retrieved" not in message or "tensorstore" not in message.lower()
        if f"{os.sep}orbax{os.sep}" not in record.pathname:
            return True
        if record.exc_info and "raised an exception" in record.getMessage():
            return False  # a save thread's traceback: the same error is raised in the caller
        return record.levelno >= logging.WARNING


for _name in ("absl", "asyncio"):
    if not any(isinstance(f, _QuietOrbax) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_QuietOrbax())


def _abstract(leaf: Any) -> Any:
    """A leaf's ShapeDtypeStruct with a sharding (default: the first local device)."""
    if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
        return leaf  # Python scalars: Orbax restores them as they were saved.
    sharding = getattr(leaf, "sharding", None)
    if sharding is None:
        sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _match_key_type(restored: Any, target: Any) -> Any:
    """Orbax restores PRNG keys typed or raw as they were saved; this follows the target."""
    if _is_key(restored) and not _is_key(target):
        return jax.random.key_data(restored)
    if _is_key(target) and not _is_key(restored):
        return jax.random.wrap_key_data(restored, impl=target.dtype._impl)
    return restored


def _stored_shape(leaf: Any) -> tuple[int, ...]:
    """The shape Orbax writes for a target leaf (typed PRNG keys are stored as key data)."""
    if _is_key(leaf):
        return tuple(jax.eval_shape(jax.random.key_data, leaf).shape)
    return tuple(getattr(leaf, "shape", ()))


def _first_difference(stored: PyTree, target: PyTree) -> str | None:
    """Describes the first leaf whose presence or shape differs, or None if all agree."""
    have = ocp.tree.to_flat_dict(stored, sep=".")
    want = ocp.tree.to_flat_dict(target, sep=".")
    for name, leaf in want.items():
        if name not in have:
            return f"leaf '{name}' {_stored_shape(leaf)} of the target is not in the checkpoint"
        stored_shape, target_shape = tuple(have[name].shape), _stored_shape(leaf)
        if stored_shape != target_shape:
            return (
                f"leaf '{name}' has shape {stored_shape} in the checkpoint but "
                f"{target_shape} in the target"
            )
    extra = [name for name in have if name not in want]
    if extra:
        return f"leaf '{extra[0]}' of the checkpoint is not in the target"
    return None


_OS_ERRORS = {  # what TensorStore's messages say -> errno
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES,
}


def _reraise(error: Exception, directory: Path) -> NoReturn:
    """Raises a save's disk-full / read-only / permission failure as an OSError naming the
    checkpoint directory (the CLI prints one line for it); anything else unchanged."""
    if not isinstance(error, OSError):
        for phrase, code in _OS_ERRORS.items():
            if phrase in str(error):
                raise OSError(code, os.strerror(code), str(directory)) from error
    raise error


def training_carry(state: Any, window: Any, early_state: dict | None) -> dict[str, Any]:
    """What a training checkpoint holds, so every reader restores the same tree: the train
    state, the open logging window's metric sums (a resumed run logs the same first window),
    and with early stopping (`early_state` = the tracker's state) the best parameters and the
    tracker."""
    carry: dict[str, Any] = {"state": state, "window": window, "best": {}, "early_stopping": {}}
    if early_state is not None:
        best = {"params": state.params, "batch_stats": state.batch_stats}
        carry["best"] = jax.tree.map(lambda x: x.copy(), best)
        carry["early_stopping"] = dict(early_state)
    return carry


class Checkpointer:
    """Saves a training state every `save_every_steps` steps and restores the newest one.

    `fingerprint` (e.g. a hash of the model config) is stored with every step; restoring
    a step stored under another fingerprint raises `CheckpointMismatchError` (no check
    when `fingerprint` is None). Use as a context manager, or call `close()`.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        save_every_steps: int,
        max_to_keep: int = 3,
        async_save: bool = False,
        fingerprint: str | None = None,
    ):
        if save_every_steps < 1:
            raise ValueError(f"save_every_steps: {save_every_steps}; allowed: >= 1")
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep: {max_to_keep}; allowed: >= 1")
        self.directory = Path(directory).absolute()
        self.fingerprint = fingerprint
        self.every = save_every_steps
        options = ocp.CheckpointManagerOptions(
            # Explicit policies: Orbax's default one also saves the very first step.
            save_decision_policy=ocm.AnySavePolicy(
                [ocm.FixedIntervalPolicy(save_every_steps), ocm.PreemptionCheckpointingPolicy()]
            ),
            preservation_policy=ocm.LatestN(max_to_keep),
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,
        )
        self._mngr = ocp.CheckpointManager(
            self.directory,
            item_handlers={
                _STATE: ocp.StandardCheckpointHandler(),
                _META: ocp.JsonCheckpointHandler(),
            },
            options=options,
        )

    def latest_step(self) -> int | None:
        """The newest finalised step on disk (None when there is none)."""
        return self._mngr.latest_step()

    def all_steps(self) -> list[int]:
        """All finalised steps on disk, oldest first."""
        return sorted(self._mngr.all_steps())

    def maybe_save(self, step: int, state: PyTree, *, force: bool = False) -> bool:
        """Saves `state` as `step` if step % save_every_steps == 0 (or `force`); True if saved.

        A step that is already on disk is never overwritten (returns False).
        """
        step = int(step)
        due = force or step % self.every == 0 or self._mngr.reached_preemption(step)
        if not due or step in self._mngr.all_steps():  # Cheap exit: called every step.
            return False
        self._check_space(state)
        args = ocp.args.Composite(
            **{
                _STATE: ocp.args.StandardSave(state),
                _META: ocp.args.JsonSave({"config_fingerprint": self.fingerprint}),
            }
        )
        try:
            return bool(self._mngr.save(step, args=args, force=force))
        except Exception as e:  # Orbax/TensorStore wrap OS errors in many types
            _reraise(e, self.directory)

    def _check_space(self, state: PyTree) -> None:
        """Refuses a save that cannot fit (ENOSPC naming the directory) before Orbax starts
        its background writes: a write failing halfway prints tracebacks from TensorStore's
        threads that no handler of ours can catch. Margin: 2x the state plus 256 KiB."""
        need = 2 * sum(getattr(x, "nbytes", 0) for x in jax.tree.leaves(state)) + (256 << 10)
        existing = next(p for p in (self.directory, *self.directory.parents) if p.exists())
        if shutil.disk_usage(existing).free < need:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.directory))

    def restore_latest(self, target: PyTree) -> tuple[PyTree, int] | None:
        """(state, step) of the newest readable checkpoint, or None when there is none.

        `target` gives structure, shapes, dtypes and shardings (arrays or
        ShapeDtypeStructs). Unreadable newer steps are skipped with a warning and moved
        aside; a different fingerprint or tree raises `CheckpointMismatchError`.
        """
        abstract = jax.tree.map(_abstract, target)
        failed: dict[int, str] = {}
        for step in sorted(self._mngr.all_steps(), reverse=True):
            try:
                state = self._restore_step(step, abstract)
            except CheckpointMismatchError:
                raise
            except Exception as e:  # Orbax/TensorStore raise many types for damaged files.
                failed[step] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
                continue
            msg = "Checkpoint step %d in %s is unreadable (%s); using step %d."
            for bad, reason in failed.items():  # warned only when there is a fallback
                log.warning(msg, bad, self.directory, reason, step)
            if failed:
                self._move_aside(list(failed))
            return state, step
        if failed:
            newest = max(failed)
            raise NoReadableCheckpointError(
                f"no readable checkpoint in {self.directory} (steps {sorted(failed)}; step "
                f"{newest}: {failed[newest][:120]}); move that directory away to train afresh, "
                "or use another --workdir"
            )
        return None

    def _restore_step(self, step: int, abstract: PyTree) -> PyTree:
        meta = self._mngr.restore(step, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()}))
        stored = meta[_META].get("config_fingerprint")
        if self.fingerprint is not None and stored != self.fingerprint:
            raise CheckpointMismatchError(
                f"checkpoint step {step} in {self.directory} was written by another model "
                f"config (fingerprint {stored!r}, expected {self.fingerprint!r}); use a new "
                "workdir or delete its checkpoints"
            )
        tree_metadata = self._mngr.item_metadata(step)[_STATE]
        if tree_metadata is not None:  # None when _METADATA is missing: restore will tell.
            difference = _first_difference(tree_metadata, abstract)
            if difference:
                raise CheckpointMismatchError(
                    f"checkpoint step {step} in {self.directory} does not fit the state "
                    f"being restored: {difference}"
                )
        args = ocp.args.Composite(**{_STATE: ocp.args.StandardRestore(abstract)})
        restored = self._mngr.restore(step, args=args)[_STATE]
        return jax.tree.map(_match_key_type, restored, abstract)

    def _move_aside(self, steps: list[int]) -> None:
        """Renames unreadable step dirs so they neither shadow nor block later saves."""
        if jax.process_index() == 0:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for step in steps:
                path = self.directory / str(step)
                if path.is_dir():
                    dest = path.with_name(f"{path.name}.corrupt-{stamp}")
                    path.rename(dest)
                    log.warning("Moved unreadable checkpoint %s to %s.", path, dest)
        ocp.multihost.sync_global_processes("cnn_jax_checkpoint_move_aside")
        self._mngr.reload()

    def wait(self) -> None:
        """Blocks until an asynchronous save has finished writing."""
        try:
            self._mngr.wait_until_finished()
        except Exception as e:
            _reraise(e, self.directory)

    def close(self) -> None:
        """Finishes pending saves and releases Orbax's resources."""
        self._mngr.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
