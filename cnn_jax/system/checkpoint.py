"""Checkpointing of the training state; every Orbax call of the project lives here.

Orbax's API keeps moving, so the rest of the code only sees `Checkpointer`: save every N
steps, keep the newest few, restore the newest *readable* step into a target pytree
(abstract or concrete, its shardings are used), and refuse checkpoints written by another
model config or run identity (`CheckpointMismatchError`). Each step's metadata carries the
identity fields of the config that trained it (`cnn_jax.config.identity`), so a workdir
whose config.json was lost or replaced still proves what its checkpoints are, and a few
numbers the caller saves with the step (`meta`, e.g. the training time so far). Incomplete
saves never count: Orbax writes each
step into a temporary directory and renames it when complete, and removes leftovers when
the manager opens. A finalised step whose files were later damaged is skipped with a
warning, moved aside as `<step>.corrupt-<time>` and the previous step is used instead;
a `read_only` Checkpointer (for readers of a finished run) changes nothing on disk and
restores exactly the step asked for.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as ocm

from cnn_jax.config import identity as run_identity

log = logging.getLogger(__name__)
PyTree = Any
_STATE, _META = "state", "meta"
_FIELDS = "identity_fields"  # meta key: the identity fields of the config that saved the step
_DISCARD = "a new --workdir, or --config.train.overwrite=True to discard that run"


class CheckpointMismatchError(ValueError):
    """The checkpoint was written for a different model or config than the restoring one."""


class NoReadableCheckpointError(ValueError):
    """Checkpoints exist but none of them could be read (a user-fixable state: one line)."""


class _QuietOrbax(logging.Filter):
    """Drops Orbax's INFO/DEBUG records (several per save, through absl) and its notes that a
    read-only reader is read-only, and asyncio's
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
        if "read only" in record.getMessage() or "read_only=True" in record.getMessage():
            return False  # what a read-only reader asked for
        return record.levelno >= logging.WARNING


for _name in ("absl", "asyncio"):
    if not any(isinstance(f, _QuietOrbax) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_QuietOrbax())


def _abandoned_read(args: Any) -> bool:
    """Whether an unraisable exception is a TensorStore read that finished after the event
    loop of the restore that abandoned it had closed. Orbax closes its loop as soon as one
    read of a damaged step fails; the others finish later in TensorStore's threads, whose
    native code calls `loop.call_soon_threadsafe` on the closed loop: 0 to dozens of
    tracebacks, by timing alone. Recognised by that call being the outermost Python frame."""
    error = args.exc_value
    if not isinstance(error, RuntimeError) or str(error) != "Event loop is closed":
        return False
    frames = traceback.extract_tb(args.exc_traceback)
    return bool(frames) and frames[0].name == "call_soon_threadsafe" and args.object is None


class _QuietUnraisable:
    """sys.unraisablehook that drops `_abandoned_read` exceptions and passes on the rest."""

    def __init__(self, previous: Callable[[Any], Any]):
        self.previous = previous

    def __call__(self, args: Any) -> None:
        if not _abandoned_read(args):
            self.previous(args)


if not isinstance(sys.unraisablehook, _QuietUnraisable):
    sys.unraisablehook = _QuietUnraisable(sys.unraisablehook)


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


def _reason(error: Exception) -> str:
    """A restore failure on one line: its type and the first line of its message."""
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}"


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

    `fingerprint` (e.g. a hash of the model config) and `identity` (the run's identity
    fields) are stored with every step; restoring a step stored under another fingerprint
    or identity raises `CheckpointMismatchError` (no check when they are None), and with
    `require_identity` so does a step that carries no identity (nothing else proves it).
    `canonical` maps a step's stored identity fields to the form `identity` is in before they
    are compared (a step saved with a default set explicitly is the same run).
    `read_only` never writes, cleans or renames anything. Use as a context manager, or call
    `close()`.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        save_every_steps: int,
        max_to_keep: int = 3,
        async_save: bool = False,
        fingerprint: str | None = None,
        identity: Mapping[str, Any] | None = None,
        require_identity: bool = False,
        read_only: bool = False,
        canonical: Callable[[Mapping[str, Any]], Mapping[str, Any]] = dict,
    ):
        if save_every_steps < 1:
            raise ValueError(f"save_every_steps: {save_every_steps}; allowed: >= 1")
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep: {max_to_keep}; allowed: >= 1")
        self.directory = Path(directory).absolute()
        self.fingerprint = fingerprint
        self.identity = None if identity is None else dict(identity)
        self.require_identity = require_identity
        self.canonical = canonical
        self.read_only = read_only
        self.restored_meta: dict[str, Any] = {}  # the meta saved with the step last restored
        self.every = save_every_steps
        options = ocp.CheckpointManagerOptions(
            # Explicit policies: Orbax's default one also saves the very first step.
            save_decision_policy=ocm.AnySavePolicy(
                [ocm.FixedIntervalPolicy(save_every_steps), ocm.PreemptionCheckpointingPolicy()]
            ),
            preservation_policy=ocm.LatestN(max_to_keep),
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=not read_only,
            create=not read_only,
            read_only=read_only,
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

    def maybe_save(
        self, step: int, state: PyTree, *, force: bool = False, meta: Mapping | None = None
    ) -> bool:
        """Saves `state` as `step` if step % save_every_steps == 0 (or `force`); True if saved.

        `meta` (JSON values) is stored beside it and comes back as `restored_meta`. A step
        that is already on disk is never overwritten (returns False).
        """
        step = int(step)
        due = force or step % self.every == 0 or self._mngr.reached_preemption(step)
        if not due or step in self._mngr.all_steps():  # Cheap exit: called every step.
            return False
        self._check_space(state)
        args = ocp.args.Composite(
            **{
                _STATE: ocp.args.StandardSave(state),
                _META: ocp.args.JsonSave(self._meta(meta)),
            }
        )
        try:
            return bool(self._mngr.save(step, args=args, force=force))
        except Exception as e:  # Orbax/TensorStore wrap OS errors in many types
            _reraise(e, self.directory)

    def _meta(self, extra: Mapping | None) -> dict[str, Any]:
        """What a step's metadata holds: the fingerprint, the identity and `extra`."""
        meta = dict(extra or {}, config_fingerprint=self.fingerprint)
        if self.identity is not None:
            meta[run_identity.KEY] = run_identity.digest(self.identity)
            meta[_FIELDS] = self.identity
        return meta

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
        aside (a `read_only` Checkpointer raises instead); a different fingerprint,
        identity or tree raises `CheckpointMismatchError`.
        """
        abstract = jax.tree.map(_abstract, target)
        failed: dict[int, str] = {}
        for step in sorted(self._mngr.all_steps(), reverse=True):
            try:
                state = self._restore_step(step, abstract)
            except CheckpointMismatchError:
                raise
            except Exception as e:  # Orbax/TensorStore raise many types for damaged files.
                failed[step] = _reason(e)
                if self.read_only:
                    break
                continue
            moved = self._move_aside(list(failed)) if failed else {}
            msg = "Checkpoint step %d in %s is unreadable (%s); using step %d (moved it to %s)."
            for bad, reason in failed.items():  # warned only when there is a fallback
                where = moved.get(bad, f"{bad}.corrupt-*")  # process 0 renames it
                log.warning(msg, bad, self.directory, reason, step, where)
            return state, step
        if failed:
            newest = max(failed)
            raise NoReadableCheckpointError(
                f"no readable checkpoint in {self.directory} (steps {sorted(failed)}; step "
                f"{newest}: {failed[newest][:120]}); move that directory away to train afresh, "
                "or use another --workdir"
            )
        return None

    def restore_step(self, target: PyTree, step: int) -> PyTree:
        """The state saved as exactly `step` (no fallback to another step): a missing or
        unreadable step raises NoReadableCheckpointError naming it."""
        if step not in self._mngr.all_steps():
            raise NoReadableCheckpointError(
                f"checkpoint step {step} is not in {self.directory} (steps "
                f"{self.all_steps()}); retrain the run to get it back"
            )
        try:
            return self._restore_step(step, jax.tree.map(_abstract, target))
        except CheckpointMismatchError:
            raise
        except Exception as e:
            raise NoReadableCheckpointError(
                f"checkpoint step {step} in {self.directory} is unreadable ({_reason(e)[:120]}); "
                "retrain the run to get it back"
            ) from None

    def read_meta(self, step: int) -> dict[str, Any]:
        """The metadata saved with `step` (fingerprint, identity, the caller's `meta`)."""
        meta = self._mngr.restore(step, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()}))
        return dict(meta[_META] or {})

    def _restore_step(self, step: int, abstract: PyTree) -> PyTree:
        meta = self.read_meta(step)
        stored = meta.get("config_fingerprint")
        if self.fingerprint is not None and stored != self.fingerprint:
            raise CheckpointMismatchError(
                f"checkpoint step {step} in {self.directory} was written by another model "
                f"config (fingerprint {stored!r}, expected {self.fingerprint!r}); allowed: "
                f"{_DISCARD}"
            )
        self._check_identity(step, meta)
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
        self.restored_meta = meta
        return jax.tree.map(_match_key_type, restored, abstract)

    def _check_identity(self, step: int, meta: Mapping[str, Any]) -> None:
        """Refuses a step saved by a run of other settings, or (with `require_identity`)
        one that carries no identity at all."""
        if self.identity is None:
            return
        stored = meta.get(_FIELDS)
        where = f"checkpoint step {step} in {self.directory}"
        if not isinstance(stored, dict):
            if self.require_identity:
                raise CheckpointMismatchError(
                    f"{where} carries no run identity and nothing else proves which settings "
                    f"trained it; allowed: {_DISCARD}"
                )
            return
        diffs = run_identity.differences(self.canonical(stored), self.identity)
        if diffs:
            raise CheckpointMismatchError(
                f"{where} was trained with other settings ({run_identity.describe(diffs)}); "
                f"allowed: {_DISCARD}"
            )

    def _move_aside(self, steps: list[int]) -> dict[int, str]:
        """Renames unreadable step dirs so they neither shadow nor block later saves; returns
        where each went (by process 0, which alone renames)."""
        moved = {}
        if jax.process_index() == 0:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for step in steps:
                path = self.directory / str(step)
                if path.is_dir():
                    dest = path.with_name(f"{path.name}.corrupt-{stamp}")
                    path.rename(dest)
                    moved[step] = dest.name
        ocp.multihost.sync_global_processes("cnn_jax_checkpoint_move_aside")
        self._mngr.reload()
        return moved

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


def newest_identity(directory: str | os.PathLike) -> tuple[int, dict[str, Any] | None] | None:
    """(step, identity fields) of the newest finalised checkpoint in `directory`, read without
    changing anything; the fields are None when that step carries none (saved by an older
    version, or its metadata is unreadable). None when there is no checkpoint."""
    directory = Path(directory).absolute()
    if not directory.is_dir():
        return None
    with Checkpointer(directory, save_every_steps=1, read_only=True) as ckpt:
        steps = ckpt.all_steps()
        if not steps:
            return None
        try:
            fields = ckpt.read_meta(steps[-1]).get(_FIELDS)
        except Exception:  # damaged metadata proves nothing
            fields = None
    return steps[-1], fields if isinstance(fields, dict) else None
