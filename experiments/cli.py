"""Flags and error handling shared by every experiment module.

Bad input (a config error, a missing dataset, a read-only or full disk, a busy workdir)
ends the program with one clear line on stderr and exit status 2, not a traceback;
`--debug` shows the traceback instead. `--config=FILE` and `--config.<field>=<value>` are
read by `experiments.config_cli` (one-line errors, optional fields settable), `--help` lists
the flags and the config's fields.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import textwrap
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import ml_collections
from absl import app, flags
from absl import logging as absl_logging

from cnn_jax.config_validation import check_workdir
from cnn_jax.runs import progress, record
from cnn_jax.runs.launch import UnitsFailed
from cnn_jax.system import parallel, runtime
from cnn_jax.system.preemption import NonFiniteError, Preempted

from . import config_cli, config_files

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
flags.DEFINE_bool("debug", False, "Show full tracebacks for configuration errors.")
flags.DEFINE_bool(
    "verbose", False, "One line per finished run (stdout) besides the progress bar (stderr)."
)
flags.DEFINE_bool(
    "overwrite", False, "Discard a run trained with other settings in --workdir (train.overwrite)."
)
flags.DEFINE_string(
    "extend",
    None,
    "Continue the finished run in this workdir to more epochs, as a new run in --workdir "
    "(train.extend_from).",
)
flags.DEFINE_bool(
    "distributed",
    False,
    "Call jax.distributed.initialize() before anything else (multi-host / multi-process).",
)
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process).")
flags.DEFINE_integer("num_processes", None, "Total number of processes (multi-process).")
flags.DEFINE_integer("process_id", None, "This process's index (multi-process).")

# The installed console script that runs this process (set by `commands`), else None.
installed_command: str | None = None

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, FileExistsError, KeyError)
_DISK_FIXES = {
    errno.EACCES: "make it writable or choose another directory (--workdir, dataset.data_dir)",
    errno.EPERM: "make it writable or choose another directory (--workdir, dataset.data_dir)",
    errno.EROFS: "the file system is read-only: choose another directory",
    errno.ENOSPC: "the disk is full: free space or choose another --workdir; rerun to resume",
    errno.EDQUOT: "the disk quota is exhausted: free space; rerun to resume",
}


def os_error_line(e: OSError) -> str | None:
    """One line for a permission / read-only / full-disk error, naming the file and a fix."""
    fix = _DISK_FIXES.get(e.errno)
    if fix is None:
        return None
    workdir = FLAGS["workdir"].value if FLAGS.is_parsed() else None
    where = e.filename or (f"{workdir} (a file of the run)" if workdir else "a file of the run")
    return f"{where}: {e.strerror or os.strerror(e.errno)}; {fix}"


def setup() -> None:
    """Speed defaults, logging and optional multi-process start-up; call first in every main().

    Re-executes the command once with tcmalloc preloaded when it is installed, then sets the
    XLA CPU flags and the persistent compilation cache (`cnn_jax.system.runtime`; CNN_JAX_FAST=0
    turns all of it off).
    """
    runtime.preload_allocator()
    runtime.apply()
    threading.excepthook = _quiet_disk_errors
    if not FLAGS["verbosity"].present:  # absl logs INFO by default: JAX's and TFDS's chatter
        absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("cnn_jax").setLevel(logging.INFO)
    if FLAGS.distributed:
        parallel.initialize_distributed(
            FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id
        )


def _quiet_disk_errors(args: threading.ExceptHookArgs) -> None:
    """A background thread's full-disk / read-only error is not printed: the main thread
    meets the same error and reports it in one line (`os_error_line`)."""
    if isinstance(args.exc_value, OSError) and args.exc_value.errno in _DISK_FIXES:
        return
    threading.__excepthook__(args)


def run_guarded(fn: Callable[[], None]) -> None:
    """Runs fn; a user error becomes one line on stderr and exit status 2, a preemption
    (checkpoint saved) exit status 3, a diverged run (NaN/Inf) or failed SLURM units exit
    status 1."""
    try:
        fn()
    except (Preempted, NonFiniteError, UnitsFailed) as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except (*USER_ERRORS, OSError) as e:
        if _debug():
            raise
        if isinstance(e, OSError) and not isinstance(e, USER_ERRORS):
            message = os_error_line(e)
            if message is None:
                raise
        else:
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {message}", file=sys.stderr)
        _silence_background_noise()
        sys.exit(2)


def _silence_background_noise() -> None:
    """After the one-line error nothing else is printed: Orbax's background writer threads and
    asyncio tasks meet the same full disk and would log their own tracebacks at shutdown
    ("Task exception was never retrieved", "Event loop is closed")."""
    sys.stderr.flush()
    logging.disable(logging.CRITICAL)
    threading.excepthook = lambda args: None
    sys.unraisablehook = lambda args: None


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _debug() -> bool:
    parsed = FLAGS.is_parsed() and FLAGS.debug
    return bool(parsed or os.environ.get("CNN_JAX_DEBUG"))


def resolve_config(name: str) -> str:
    """The config file for `--config=name`: a path, or a packaged config's name (digits)."""
    return str(config_files.resolve(name))


def main(
    run: Callable[[ml_collections.ConfigDict, str | Path], Any],
    *,
    default_config: str,
    default_workdir: str,
    argv: Sequence[str] | None = None,
) -> None:
    """The whole `if __name__ == "__main__":` of an experiment module.

    Reads `--config=FILE` (default `default_config`) and its `--config.<field>=<value>`
    overrides (`experiments.config_cli`), then runs `run(config, workdir)` with `run_guarded`'s
    exit codes. `--help` prints the flags and the config's fields.
    """
    argv = list(sys.argv if argv is None else argv)
    if any(a in ("-h", "--help", "-help", "--helpshort") for a in argv[1:]):
        print(help_text(argv[0], default_config, default_workdir))
        sys.exit(0)
    split: list[Any] = []
    run_guarded(lambda: split.extend(config_cli.split_argv(argv)))
    config_arg, overrides, rest = split
    try:
        extra = FLAGS(rest, known_only=False)[1:]
    except flags.Error as e:
        _fail(f"{str(e).splitlines()[0]}; see --help")
    if extra:
        _fail(f"unexpected arguments {extra}; allowed: flags only (see --help)")

    def _main(args: Sequence[str]) -> None:
        if len(args) > 1:
            raise app.UsageError(f"Unexpected arguments: {list(args[1:])}")
        setup()
        workdir = FLAGS.workdir or default_workdir

        def go() -> None:
            check_workdir(workdir)  # a path no file can have: one line, before any mkdir
            config = config_cli.load(resolve_config(config_arg or default_config), overrides)
            if FLAGS.overwrite:
                config.train.overwrite = True
            if FLAGS.extend:
                config.train.extend_from = FLAGS.extend
            record.check_publishable(config)  # a record from a dirty tree: refused up front
            name = installed_command or _module(argv[0])
            with progress.study(name, verbose=FLAGS.verbose):  # the sweeps report into it
                run(config, workdir)

        run_guarded(go)

    app.run(_main, argv=rest)


def help_text(program: str, default_config: str, default_workdir: str) -> str:
    """Usage, the flags, and every field of the default config with its value."""
    command = installed_command or f"python -m {_module(program)}"
    shown = config_files.name_of(default_config)
    lines = [
        f"usage: {command} [--config=FILE] [--workdir=DIR] [--debug] [--verbose] "
        "[--overwrite] [--extend=DIR] [--config.<field>=<value> ...]",
        "",
        "flags:",
        "  --config=FILE   experiment config, a Python file with get_config(), or a packaged",
        *textwrap.wrap(
            f"config (default: {shown}): {', '.join(config_files.names())}",
            96,
            initial_indent=" " * 18,
            subsequent_indent=" " * 18,
        ),
        "  --workdir=DIR   checkpoints, metrics, results; rerun to resume "
        f"(default: {default_workdir})",
        "  --debug         full tracebacks instead of one-line errors",
        "  --verbose       one line per finished run (stdout) besides the progress bar (stderr)",
        "  --overwrite     discard a run trained with other settings in --workdir",
        "  --extend=DIR    continue the finished run in DIR to more epochs (a new --workdir)",
        "  --config.<field>=<value>   set any field below, e.g. --config.train.num_epochs=3",
        "  --distributed --coordinator_address --num_processes --process_id   multi-process",
        "",
        f"config fields ({shown}):",
    ]
    try:
        config = config_cli.load_file(resolve_config(default_config))
    except ValueError as e:
        return "\n".join([*lines, f"  (cannot load: {e})"])
    declared = config_cli.leaf_fields(config)
    lines += [f"  {field} = {value!r}" for field, value in declared]
    optional = config_cli.optional_fields(config)
    names = {field for field, _ in declared}
    extra = [
        f"{section}.{key}" if section else key
        for section, keys in optional.items()
        for key in keys
        if (f"{section}.{key}" if section else key) not in names
        and not any(n.startswith(f"{section}.{key}.") for n in names)
    ]
    lines += ["", "also settable (optional, validated when set):"]
    lines += textwrap.wrap(", ".join(extra), 96, initial_indent="  ", subsequent_indent="  ")
    return "\n".join(lines)


def _module(program: str) -> str:
    path = Path(program)
    if path.name == "__main__.py" or path.suffix != ".py":
        return path.stem
    return ".".join(path.with_suffix("").parts[-2:])
