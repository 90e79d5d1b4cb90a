"""Pooling kinds that describe themselves: one entry per kind, used everywhere a kind matters.

Each entry says which sliding windows the kind applies, in order (for receptive fields,
`cnn_jax.receptive_field`), whether its window must fit the feature map and whether it
uses the binomial blur (config validation). `layers.Pool` applies the kinds named here
(`POOLINGS` is this registry's keys), and any other name is an error everywhere, instead of
being treated as the identity by one module and refused by another.

Kinds: max / avg pooling; BlurPool (Zhang 2019, "Making Convolutional Networks
Shift-Invariant Again": binomial blur then subsample); MaxBlurPool (the same paper: dense
stride-1 max, then BlurPool); none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

Padding = object  # canonical padding: 'SAME' | 'VALID' | 'CIRCULAR' | ((t, b), (l, r))
Window = tuple[int, int, Padding]  # (kernel, stride, padding) of one sliding window


@dataclasses.dataclass(frozen=True)
class PoolKind:
    """What one pooling kind does, for the modules that need to know."""

    name: str
    windows: Callable[[int, int, int, Padding], list[Window]]  # (window, stride, blur, pad)
    window_must_fit: bool  # pool_window <= the feature map entering the pool
    uses_blur: bool  # blur_size matters (1..7)


def _blur_padding(padding: Padding) -> Padding:
    return "CIRCULAR" if padding == "CIRCULAR" else "SAME"


POOL_KINDS: dict[str, PoolKind] = {
    kind.name: kind
    for kind in (
        PoolKind("max", lambda w, s, b, p: [(w, s, p)], True, False),
        PoolKind("avg", lambda w, s, b, p: [(w, s, p)], True, False),
        PoolKind("blur", lambda w, s, b, p: [(b, s, p)], False, True),
        PoolKind("max_blur", lambda w, s, b, p: [(w, 1, p), (b, s, _blur_padding(p))], True, True),
        PoolKind("none", lambda w, s, b, p: [], False, False),
    )
}


def get(name: str, field: str = "pool") -> PoolKind:
    """The registry entry of `name`; ValueError naming the field for an unknown kind."""
    if name not in POOL_KINDS:
        raise ValueError(f"{field}: unknown value {name!r}; allowed: {', '.join(POOL_KINDS)}")
    return POOL_KINDS[name]
