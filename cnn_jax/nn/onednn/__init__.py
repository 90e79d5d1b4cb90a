"""An optional CPU fast path: 2-D convolutions (forward and both gradients) on oneDNN.

XLA:CPU's own convolutions are slow for the project's small CNNs (few channels; the weight
gradient transposes its input to [C, H, W, B]); oneDNN's direct convolutions are what PyTorch
runs on CPU. Here they run inside the jitted step as XLA FFI custom calls:

- `conv_handlers.cc`: the FFI handlers on oneDNN (C++).
- `build`: compiles them at install time (`make install`) against the `onednn-cpu-gomp` wheel.
- `loader`: loads the library once and registers the handlers for the CPU platform only.
- `conv`: the JAX side (custom_vjp, custom_vmap, fallback for what the handlers do not cover).

`select(fallback)` gives `nn.Conv` its convolution function: oneDNN's when `enabled()` (the
CPU backend, one device, the library built), else `fallback`. Off switches: CNN_JAX_ONEDNN=0
(this path) or CNN_JAX_FAST=0 (every run-path default, see cnn_jax.system.runtime); benchmarks
set `ENABLED`. Where the library is missing or stale, one log line says so and XLA's
convolutions are used. Not supported through this path: forward-mode autodiff (`jax.jvp`,
`jax.jacfwd`) and derivatives of the gradient (`jax.custom_vjp`); switch it off for those.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable

import jax

log = logging.getLogger(__name__)

ENV = "CNN_JAX_ONEDNN"
ENV_ALL = "CNN_JAX_FAST"
OFF_VALUES = ("0", "false", "no", "off")
ENABLED: bool | None = None  # None: follow the environment; benchmarks set True or False


def wanted() -> bool:
    """Whether the fast path is asked for: `ENABLED` if set, else unless an off switch is set."""
    if ENABLED is not None:
        return ENABLED
    switches = (os.environ.get(ENV, ""), os.environ.get(ENV_ALL, ""))
    return not any(v.strip().lower() in OFF_VALUES for v in switches)


@functools.cache
def _report_unavailable(detail: str) -> None:
    log.warning(
        "oneDNN convolutions unavailable: %s; using XLA's (%s=0 silences this)", detail, ENV
    )


@functools.cache
def _report_devices(count: int) -> None:
    log.info("oneDNN convolutions off: %d devices (the FFI calls have no sharding rule)", count)


def enabled() -> bool:
    """Wanted, on the CPU backend with one device, and the library loaded (else one log line).

    With several devices (a data-parallel mesh) XLA would gather every sharded batch onto each
    device before an FFI call, which has no sharding rule: XLA's convolutions are used."""
    if not wanted() or jax.default_backend() != "cpu":
        return False
    if jax.device_count() > 1:
        _report_devices(jax.device_count())
        return False
    from cnn_jax.nn.onednn import loader  # not at import: `python -m ...build` imports this

    status = loader.load()
    if not status.ok:
        _report_unavailable(status.detail)
    return status.ok


def available() -> bool:
    """Whether the library is built, current and registered (whatever the switches say)."""
    from cnn_jax.nn.onednn import loader

    return loader.load().ok


@functools.cache
def _fast(fallback: Callable) -> Callable:
    from cnn_jax.nn.onednn import conv

    return functools.partial(conv.conv_general_dilated, fallback=fallback)


def select(fallback: Callable) -> Callable:
    """The convolution for `nn.Conv(conv_general_dilated=...)`: oneDNN's (calls it does not
    cover go to `fallback`) when `enabled()`, else `fallback` itself."""
    return _fast(fallback) if enabled() else fallback
