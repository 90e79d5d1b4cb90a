"""Flags and error handling shared by every experiment module.

Bad input (a config error, a missing dataset) ends the program with one clear line on
stderr and exit status 2, not a traceback; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from absl import flags
from absl import logging as absl_logging

from cnn_jax import parallel
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
    """Logging and optional multi-process start-up; call first in every main()."""
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
