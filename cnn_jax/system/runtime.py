"""Speed defaults for the run path, applied once at process start, before JAX makes its backend.

Measured on the project's 2-core CPU machine (see benchmarks/REPORT.md):

- XLA CPU flags (`DEFAULT_XLA_FLAGS`): YNNPACK's per-convolution fusion is slower than XLA's
  own convolution for the project's small CNNs, so it is removed from the default fusion list.
  Flags only take effect if set before the backend exists, and an XLA that does not know a
  flag aborts the process, so they are added only for the jaxlib versions they were measured
  on (`FLAGS_TESTED_ON`) and never over a flag the user already set in XLA_FLAGS.
- A persistent compilation cache (`jax_compilation_cache_dir`): a re-run of the same config
  loads its compiled steps from disk instead of recompiling them.

- The allocator: tcmalloc (Debian's libtcmalloc-minimal4) keeps freed memory for reuse, where
  glibc maps and unmaps XLA's large per-step buffers every step (page faults every step). It
  must be loaded before the process starts, so `preload_allocator` re-executes the command
  once with LD_PRELOAD when the library is installed and not yet loaded; without it, nothing
  happens and glibc's malloc is used.

Switches (environment variables, "0" turns off): CNN_JAX_FAST (everything),
CNN_JAX_TCMALLOC (the allocator; any other value is taken as the library's path),
CNN_JAX_XLA_DEFAULTS (the XLA flags), CNN_JAX_COMPILATION_CACHE (the cache; any other value
is taken as the cache directory). The oneDNN convolutions (CNN_JAX_ONEDNN) are chosen where
models are built (`cnn_jax.nn.onednn`), under the same CNN_JAX_FAST switch.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path

log = logging.getLogger(__name__)

ENV_ALL = "CNN_JAX_FAST"
ENV_XLA = "CNN_JAX_XLA_DEFAULTS"
ENV_CACHE = "CNN_JAX_COMPILATION_CACHE"
ENV_ALLOCATOR = "CNN_JAX_TCMALLOC"
REEXEC_MARK = "CNN_JAX_PRELOAD_TRIED"  # set in the re-executed process: never loop
TCMALLOC_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib64/libtcmalloc_minimal.so.4",
)
OFF_VALUES = ("0", "false", "no", "off")

DEFAULT_XLA_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=-individual_convolution",)
FLAGS_TESTED_ON = ("0.10.",)  # jaxlib version prefixes that know DEFAULT_XLA_FLAGS
CACHE_MIN_COMPILE_SECS = 0.5  # cache every program that took at least this long to compile


@dataclasses.dataclass(frozen=True)
class Applied:
    """What `apply` did, for logs and results files."""

    xla_flags: tuple[str, ...] = ()
    compilation_cache_dir: str | None = None
    allocator: str = "glibc"
    skipped: tuple[str, ...] = ()


_applied: Applied | None = None


def is_off(value: str | None) -> bool:
    """True for the values that switch a default off ("0", "false", "no", "off")."""
    return value is not None and value.strip().lower() in OFF_VALUES


def flag_name(flag: str) -> str:
    """'--xla_foo=1' -> 'xla_foo'."""
    return flag.lstrip("-").split("=", 1)[0]


def merge_xla_flags(current: str, defaults: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """Appends each default flag the user has not set; returns (new XLA_FLAGS, added flags)."""
    present = {flag_name(f) for f in current.split()}
    added = tuple(f for f in defaults if flag_name(f) not in present)
    return " ".join([*current.split(), *added]), added


def default_cache_dir(environ: MutableMapping[str, str] | None = None) -> Path:
    """$XDG_CACHE_HOME/cnn_jax/jax_compilation_cache (~/.cache/... when unset)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnn_jax" / "jax_compilation_cache"


def loaded_allocator() -> str:
    """'tcmalloc', 'jemalloc' or 'glibc': the malloc mapped into this process."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "unknown"
    for name in ("tcmalloc", "jemalloc"):
        if name in maps:
            return name
    return "glibc"


def tcmalloc_path() -> str | None:
    """Where Debian's (or Fedora's) libtcmalloc_minimal.so.4 is installed, or None."""
    return next((p for p in TCMALLOC_CANDIDATES if os.path.exists(p)), None)


def allocator_env(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The environment to re-execute with so tcmalloc is preloaded, or None when switched off,
    already preloaded, already tried once, or not installed."""
    setting = environ.get(ENV_ALLOCATOR)
    if is_off(environ.get(ENV_ALL)) or is_off(setting) or environ.get(REEXEC_MARK):
        return None
    path = setting if setting else tcmalloc_path()
    preload = environ.get("LD_PRELOAD", "")
    if not path or not os.path.exists(path) or "tcmalloc" in preload:
        return None
    return {**environ, "LD_PRELOAD": ":".join(filter(None, [path, preload])), REEXEC_MARK: "1"}


def preload_allocator() -> None:
    """Re-executes this very command with tcmalloc preloaded (see `allocator_env`); returns
    when nothing is to be done. Call first thing in a command-line main(), never in a library
    or notebook: the process is replaced."""
    env = allocator_env(os.environ)
    argv = getattr(sys, "orig_argv", None)  # the interpreter's own argv, `-m module` included
    if env is None or not argv or loaded_allocator() != "glibc":
        return
    log.debug(
        "re-executing with LD_PRELOAD=%s (%s=0 turns this off)", env["LD_PRELOAD"], ENV_ALLOCATOR
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv[1:]], env)


def backend_initialized() -> bool:
    """True once JAX has created a backend (XLA flags set after that are ignored)."""
    try:
        from jax._src import xla_bridge

        return bool(getattr(xla_bridge, "_backends", {}))
    except ImportError:  # a JAX without this private module: assume the worst
        return True


def _jaxlib_version() -> str:
    try:
        import jaxlib

        return str(jaxlib.__version__)
    except (ImportError, AttributeError):
        return "unknown"


def apply(environ: MutableMapping[str, str] | None = None) -> Applied:
    """Applies the speed defaults (idempotent); call first thing in a main()."""
    global _applied
    if _applied is not None and environ is None:
        return _applied
    env = os.environ if environ is None else environ
    skipped: list[str] = []
    flags: tuple[str, ...] = ()
    cache_dir: str | None = None
    if is_off(env.get(ENV_ALL)):
        result = Applied(allocator=loaded_allocator(), skipped=(f"{ENV_ALL}=0",))
    else:
        if is_off(env.get(ENV_XLA)):
            skipped.append(f"{ENV_XLA}=0")
        elif not _jaxlib_version().startswith(FLAGS_TESTED_ON):
            skipped.append(f"XLA flags untested on jaxlib {_jaxlib_version()}")
        elif backend_initialized():
            skipped.append("XLA flags: backend already initialised")
        else:
            merged, flags = merge_xla_flags(env.get("XLA_FLAGS", ""), DEFAULT_XLA_FLAGS)
            env["XLA_FLAGS"] = merged
        cache_setting = env.get(ENV_CACHE)
        if is_off(cache_setting):
            skipped.append(f"{ENV_CACHE}=0")
        else:
            cache_dir = str(Path(cache_setting) if cache_setting else default_cache_dir(env))
            unusable = enable_compilation_cache(cache_dir)
            if unusable:
                skipped.append(unusable)
                cache_dir = None
        result = Applied(flags, cache_dir, loaded_allocator(), tuple(skipped))
    log.debug("runtime defaults: %s", result)
    if environ is None:
        _applied = result
    return result


def enable_compilation_cache(cache_dir: str | Path) -> str | None:
    """Turns on JAX's persistent compilation cache in `cache_dir` (created if missing); a
    directory that cannot be created or written leaves the cache off (a run only compiles
    more), and the one-line reason, also logged as a warning, is returned."""
    import jax

    try:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=cache_dir).close()  # writable, as root too on a RO mount
    except OSError as e:
        reason = (
            f"compilation cache {cache_dir} is unusable ({e.strerror or e}): compiling without "
            f"it; set {ENV_CACHE} to a writable directory, or to 0"
        )
        log.warning(reason)
        return reason
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECS)
    return None
