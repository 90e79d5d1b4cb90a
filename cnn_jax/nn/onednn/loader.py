"""Loads the built library once and registers its handlers as XLA:CPU FFI targets.

Registration is for the "cpu" platform only (`jax.ffi.register_ffi_target`,
https://docs.jax.dev/en/latest/ffi.html), so nothing changes on GPU/TPU. A missing library, a
stale one (built for another jaxlib or source) or one that fails to load is reported as one
line (`Status.detail`) and never raises.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import json

from cnn_jax.nn.onednn import build

# FFI target name -> symbol exported by conv_handlers.cc (XLA_FFI_DEFINE_HANDLER_SYMBOL).
TARGETS = {
    "cnn_jax_onednn_conv_forward": "CnnJaxOnednnConvForward",
    "cnn_jax_onednn_conv_backward_data": "CnnJaxOnednnConvBackwardData",
    "cnn_jax_onednn_conv_backward_weights": "CnnJaxOnednnConvBackwardWeights",
}
FORWARD, BACKWARD_DATA, BACKWARD_WEIGHTS = TARGETS


@dataclasses.dataclass(frozen=True)
class Status:
    """Whether the FFI targets are registered; `detail`: the oneDNN version, or why not."""

    ok: bool
    detail: str


def _stale_reason(library_stamp: dict) -> str | None:
    expected = build.expected_stamp()
    for key, want in expected.items():
        if library_stamp.get(key) != want:
            return f"built for {key} {library_stamp.get(key)}, this is {want}"
    return None


@functools.cache
def load() -> Status:
    """Loads and registers the library (once per process); never raises."""
    import jax

    path = build.library_path()
    rebuild = "run `python -m cnn_jax.nn.onednn.build`"
    if not path.exists():
        return Status(False, f"not built ({rebuild})")
    try:
        stale = _stale_reason(json.loads(build.stamp_path(path).read_text()))
    except (OSError, ValueError):
        stale = "no build stamp"
    if stale:
        return Status(False, f"{path.name} is stale: {stale} ({rebuild})")
    try:
        lib = ctypes.CDLL(str(path))
        for target, symbol in TARGETS.items():
            capsule = jax.ffi.pycapsule(getattr(lib, symbol))
            jax.ffi.register_ffi_target(target, capsule, platform="cpu")
        lib.CnnJaxOnednnVersion.restype = ctypes.c_char_p
        version = lib.CnnJaxOnednnVersion().decode()
    except (OSError, AttributeError, ValueError) as e:
        return Status(False, f"{path.name} failed to load: {e}")
    return Status(True, f"oneDNN {version}")
