"""Flags and error handling shared by every experiment module.

Bad input (a config error, a missing dataset) ends the program with one clear line on
stderr and exit status 2, not a traceback; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ml_collections
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from cnn_jax import parallel, runtime
from cnn_jax.preemption import NonFiniteError, Preempted

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
flags.DEFINE_bool("debug", False, "Show full tracebacks for configuration errors.")
flags.DEFINE_bool(
    "distributed",
    False,
    "Call jax.distributed.initialize() before anything else (multi-host / multi-process).",
)
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process).")
flags.DEFINE_integer("num_processes", None, "Total number of processes (multi-process).")
flags.DEFINE_integer("process_id", None, "This process's index (multi-process).")

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, FileExistsError, KeyError)


def setup() -> None:
    """Speed defaults, logging and optional multi-process start-up; call first in every main().

    Re-executes the command once with tcmalloc preloaded when it is installed, then sets the
    XLA CPU flags and the persistent compilation cache (`cnn_jax.runtime`; CNN_JAX_FAST=0
    turns all of it off).
    """
    runtime.preload_allocator()
    runtime.apply()
    if not FLAGS["verbosity"].present:  # absl logs INFO by default: JAX's and TFDS's chatter
        absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("cnn_jax").setLevel(logging.INFO)
    if FLAGS.distributed:
        parallel.initialize_distributed(
            FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id
        )


def run_guarded(fn: Callable[[], None]) -> None:
    """Runs fn; a user error becomes one line on stderr and exit status 2, a preemption
    (checkpoint saved) exit status 3, a diverged run (NaN/Inf) exit status 1."""
    try:
        fn()
    except (Preempted, NonFiniteError) as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except USER_ERRORS as e:
        if FLAGS.debug or os.environ.get("CNN_JAX_DEBUG"):
            raise
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def main(
    run: Callable[[ml_collections.ConfigDict, str | Path], Any],
    *,
    default_config: str,
    default_workdir: str,
) -> None:
    """The whole `if __name__ == "__main__":` of an experiment module.

    Defines --config (here, not at import, so notebooks and tests can import several
    experiment modules), then runs `run(config, workdir)` with `run_guarded`'s exit codes.
    """
    config_flag = config_flags.DEFINE_config_file(
        "config", default_config, "Experiment config: a Python file with get_config()."
    )

    def _main(argv: Sequence[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {list(argv[1:])}")
        setup()
        workdir = FLAGS.workdir or default_workdir
        run_guarded(lambda: run(config_flag.value, workdir))

    app.run(_main)
