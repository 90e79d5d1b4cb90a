"""The options each dataset accepts, their defaults, and their checks.

A typo in an option name must fail at once with the list of allowed names, not be
silently ignored; every error is a ValueError naming the option.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any

from cnn_jax.datasets import digits, redgreen

GENERIC = "<tfds>"  # key for any prepared TFDS dataset that is not one of NAMES


@dataclasses.dataclass(frozen=True)
class Option:
    default: Any
    allowed: str  # what an error message lists as allowed
    valid: Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int_at_least(low: int, default: Any) -> Option:
    return Option(default, f"integers >= {low}", lambda v: _is_int(v) and v >= low)


def _optional_int_at_least(low: int) -> Option:
    return Option(
        None, f"None or integers >= {low}", lambda v: v is None or _is_int(v) and v >= low
    )


def _choice(default: str, choices: tuple[str, ...]) -> Option:
    return Option(default, ", ".join(choices), lambda v: v in choices)


def _text(default: str) -> Option:
    return Option(default, "a non-empty string", lambda v: isinstance(v, str) and bool(v))


_PATH = Option(
    None, "None or a directory path", lambda v: v is None or isinstance(v, str | os.PathLike)
)
_TRAIN_SUBSET = _optional_int_at_least(1)  # the first n training images
# None: the first train_subset images; an integer: a random draw of them (subset draws)
_SUBSET_SEED = Option(None, "None or integers >= 0", lambda v: v is None or _is_int(v) and v >= 0)

OPTIONS: dict[str, dict[str, Option]] = {
    "digits": {
        "canvas_size": _int_at_least(digits.DIGIT_SIZE, 16),
        "digit_scale": _int_at_least(1, 1),
        "position": _choice("center", digits.POSITIONS),
        "train_subset": _TRAIN_SUBSET,
        "subset_seed": _SUBSET_SEED,
    },
    "shapes": {
        "num_train": _int_at_least(1, 2000),
        "num_validation": _int_at_least(1, 500),
        "num_test": _int_at_least(1, 500),
        "image_size": _int_at_least(12, 32),
        "seed": _int_at_least(0, 0),
        "train_subset": _TRAIN_SUBSET,
        "subset_seed": _SUBSET_SEED,
    },
    "red_green": {  # Kayhan & van Gemert 2020: 2000 train, 1000 validation, 1000 test
        "num_train": _int_at_least(2, 2000),
        "num_validation": _int_at_least(2, 1000),
        "num_test": _int_at_least(2, 1000),
        "seed": _int_at_least(0, 0),
        "test_set": _choice("similar", redgreen.TEST_SETS),
        "train_subset": _TRAIN_SUBSET,
        "subset_seed": _SUBSET_SEED,
    },
    "mnist": {
        "validation_size": _int_at_least(1, 5000),
        "raw_dir": _PATH,
        # None: 28x28 as published; n > 28: each image centred on an n x n black canvas
        "canvas_size": _optional_int_at_least(28),
        "train_subset": _TRAIN_SUBSET,
        "subset_seed": _SUBSET_SEED,
    },
    GENERIC: {
        "validation_size": _optional_int_at_least(1),
        "image_key": _text("image"),
        "label_key": _text("label"),
        "train_subset": _TRAIN_SUBSET,
        "subset_seed": _SUBSET_SEED,
    },
}
OPTIONS["fashion_mnist"] = OPTIONS["mnist"]


def parse(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """All options of dataset `name`: the given ones (checked) over the defaults."""
    spec = OPTIONS.get(name, OPTIONS[GENERIC])
    allowed_names = ", ".join(spec)
    for key, value in given.items():
        if key not in spec:
            raise ValueError(
                f"unknown option {key!r} for dataset {name!r}; allowed: {allowed_names}"
            )
        if not spec[key].valid(value):
            raise ValueError(
                f"dataset option {key!r}: {value!r} for {name!r}; allowed: {spec[key].allowed}"
            )
    parsed = {key: given.get(key, option.default) for key, option in spec.items()}
    if name == "digits" and parsed["canvas_size"] < digits.DIGIT_SIZE * parsed["digit_scale"]:
        raise ValueError(
            f"dataset option 'canvas_size': {parsed['canvas_size']} for 'digits'; allowed: "
            f">= 8 * digit_scale = {digits.DIGIT_SIZE * parsed['digit_scale']}"
        )
    return {k: int(v) if _is_int(v) else v for k, v in parsed.items()}
