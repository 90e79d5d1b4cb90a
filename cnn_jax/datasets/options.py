"""The options each dataset accepts, their defaults, and their checks.

A typo in an option name must fail at once with the list of allowed names, not be
silently ignored; every error is a ValueError naming the option. Each built-in dataset
declares its own options (`DatasetKind.options`); every dataset also takes the load-time
`COMMON` ones, and any other name is a prepared TFDS dataset with the `GENERIC` options.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnn_jax.datasets import corrupt, registry
from cnn_jax.datasets.kind import Option, choice, int_at_least, is_int, optional_int_at_least, text

GENERIC = "<tfds>"  # key for any prepared TFDS dataset that is not one of NAMES

COMMON: dict[str, Option] = {
    "train_subset": optional_int_at_least(1),  # the first n training images
    # None: the first train_subset images; an integer: a random draw of them (subset draws)
    "subset_seed": Option(
        None, "None or integers >= 0", lambda v: v is None or is_int(v) and v >= 0
    ),
    # Zhang et al. 2017: random training labels or one pixel permutation (`corrupt`)
    "corrupt": choice("none", corrupt.KINDS),
    "corrupt_seed": int_at_least(0, 0),
}

OPTIONS: dict[str, dict[str, Option]] = {
    **{kind.name: {**kind.options, **COMMON} for kind in registry.KINDS},
    GENERIC: {
        "validation_size": optional_int_at_least(1),
        "image_key": text("image"),
        "label_key": text("label"),
        **COMMON,
    },
}


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
    kind = registry.BY_NAME.get(name)
    if kind is not None and kind.check_options is not None:
        kind.check_options(parsed)
    return {k: int(v) if is_int(v) else v for k, v in parsed.items()}
