"""What a built-in dataset declares about itself: one `DatasetKind` record per dataset.

Each dataset module ends with its record (name, classes, options, how its splits are made,
image shape); `registry.KINDS` lists them, and the names, the options table, the TFDS
builders and `load` / `check` all derive from that list, so a new dataset is one module
plus one registry line. Options are described by `Option`: default, check, and what an
error lists as allowed.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (uint8 images, int32 labels)


@dataclasses.dataclass(frozen=True)
class Option:
    """One dataset option: its default, its check, and what an error lists as allowed."""

    default: Any
    allowed: str  # what an error message lists as allowed
    valid: Callable[[Any], bool]


def is_int(value: Any) -> bool:
    """An integer, and not a bool (True is not a size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def int_at_least(low: int, default: Any) -> Option:
    """An integer option >= `low`."""
    return Option(default, f"integers >= {low}", lambda v: is_int(v) and v >= low)


def optional_int_at_least(low: int) -> Option:
    """None (the default) or an integer >= `low`."""
    return Option(None, f"None or integers >= {low}", lambda v: v is None or is_int(v) and v >= low)


def choice(default: str, choices: tuple[str, ...]) -> Option:
    """One of `choices`."""
    return Option(default, ", ".join(choices), lambda v: v in choices)


def text(default: str) -> Option:
    """A non-empty string."""
    return Option(default, "a non-empty string", lambda v: isinstance(v, str) and bool(v))


PATH = Option(
    None, "None or a directory path", lambda v: v is None or isinstance(v, str | os.PathLike)
)


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetKind:
    """One built-in dataset, described once: everything `load`, `check`, the options table
    and its TFDS builder need to know about it.

    A dataset is drawn by code (`manual_download` None): its options are the generator's
    arguments, all of them change the images and name the prepared variant. Or it is read
    from raw files in TFDS's manual dir (`manual_download` says how to get them): one
    prepared copy, its options apply at load time.
    """

    name: str  # what `load` takes; prepared as the TFDS dataset 'cnn_jax_<name>'
    description: str  # the TFDS builder's description
    class_names: tuple[str, ...]
    options: Mapping[str, Option]  # its own, in the order errors list them
    # drawn: (**options) -> splits; raw files: (manual dir) -> splits
    make_splits: Callable[..., Arrays]
    side: str | int  # the option giving the image side, or the fixed side
    channels: int = 1
    variant_name: Callable[..., str] | None = None  # drawn: (**options) -> the variant's name
    check_options: Callable[[Mapping[str, Any]], None] | None = None  # checks across options
    manual_download: str | None = None  # raw files: how to get them

    @property
    def drawn(self) -> bool:
        """Whether the images are drawn by code (else read from raw files)."""
        return self.manual_download is None

    def image_shape(self, options: Mapping[str, Any]) -> tuple[int, int, int]:
        """[H, W, C] of every image (before any load-time canvas), given its options."""
        side = self.side if isinstance(self.side, int) else options[self.side]
        return (side, side, self.channels)
