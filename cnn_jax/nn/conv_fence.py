"""Convolution whose input XLA:CPU cannot re-fuse into the weight gradient's transpose.

Why: for a convolution's weight gradient XLA:CPU transposes the layer input to
[C, H, W, B]. Its fusion pass then copies the input's whole cheap element-wise producer chain
(batch-norm, residual add, ReLU: two full tensors re-read, per output element, at a 64 KiB
stride) into that transpose. In resnet_small at batch 128 one such fusion took 40 of ~120 ms
per step (`jax.profiler` trace, jaxlib 0.10.2; benchmarks/REPORT.md). `optimization_barrier`
does not stop it: the CPU pipeline removes barriers before fusion. Dividing the input by a
scalar 1 that XLA cannot constant-fold does: a divide is "expensive", and XLA never
duplicates an expensive producer into a second consumer, so the input is materialised once
and the transpose reads it plainly (4 ms). x / 1 == x exactly in IEEE arithmetic, so values
and gradients are unchanged.

`models` fences only convolutions whose input is such a chain (after batch norm, no pooling
between: resnet_small, the "Convolution fence" table in benchmarks/REPORT.md; fencing lenet5,
whose inputs come from pooling, measured a small loss), and only on the CPU backend
(`enabled()`); elsewhere this is `lax.conv_general_dilated`.
"""

from __future__ import annotations

from typing import Any

import jax
from jax import lax

ENABLED = True  # benchmarks set False to measure the unfenced graph


def enabled() -> bool:
    """Whether convolutions built now are fenced: on the CPU backend, unless switched off."""
    return ENABLED and jax.default_backend() == "cpu"


def fenced_conv_general_dilated(lhs: jax.Array, rhs: jax.Array, *args: Any, **kwargs: Any):
    """`lax.conv_general_dilated(lhs / one, rhs, ...)`, `one` an exact 1 XLA cannot fold.

    `one = 1 + 0 * rhs[0]` with the gradient stopped: it is 1 for any finite kernel (a NaN or
    infinite kernel makes the output NaN either way)."""
    one = 1 + 0 * lax.stop_gradient(rhs.reshape(-1)[0])
    return lax.conv_general_dilated(lhs / one, rhs, *args, **kwargs)


def conv_general_dilated(fence: bool) -> Any:
    """The convolution function for `nn.Conv(conv_general_dilated=...)`: fenced if asked and
    `enabled()`."""
    return fenced_conv_general_dilated if fence and enabled() else lax.conv_general_dilated
