"""One-line config errors and the typed parsing every config section shares.

Every section's checks raise one ValueError line of the form
`field: value not allowed; allowed: ...`, which the command line prints as is (exit 2).
A section's spec (a frozen dataclass next to the code that uses it) is built by `parse`,
so its defaults live in one place and its fields arrive typed.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

_Spec = TypeVar("_Spec")
_CASTS = {"float": float, "int": int, "bool": bool}


def check_choice(field: str, value: str, allowed: Sequence[str]) -> str:
    """Returns `value` if allowed, else raises one clear line naming field and choices."""
    if value not in allowed:
        raise ValueError(f"{field}: unknown value {value!r}; allowed: {', '.join(allowed)}")
    return value


def check_keys(section: str, values: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Unknown keys (typos) in one section: one line listing them and the allowed ones."""
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        where = unknown[0] if section == "config" else f"{section}.{unknown[0]}"
        raise ValueError(f"{where}: unknown key {unknown}; allowed: {', '.join(allowed)}")


def is_int(value: Any) -> bool:
    """An integer that is not a bool (True is an int to Python, not to a config)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(field: str, value: Any, *, minimum: int) -> None:
    """An integer >= minimum, else one line naming the field."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{field}: {value!r} not allowed; allowed: integers >= {minimum}")


def plain(section: Mapping[str, Any] | Any) -> Any:
    """ConfigDict -> nested dicts (placeholders become None); anything else as it is."""
    return section.to_dict() if hasattr(section, "to_dict") else section


def as_dict(section: Mapping[str, Any] | Any) -> dict[str, Any]:
    """ConfigDict (placeholders become None) or mapping -> a plain dict."""
    return section.to_dict() if hasattr(section, "to_dict") else dict(section)


def plain_or_self(section: Any) -> Any:
    """A plain dict of a section, or the value itself when it is not a mapping (the checks
    then report it as not a config section)."""
    if hasattr(section, "to_dict") or isinstance(section, Mapping):
        return as_dict(section)
    return section


def parse(cls: type[_Spec], values: Any, check: Callable[[Any], None]) -> _Spec:
    """`check(values)` (one ValueError line per bad field), then the spec of the fields given
    (the rest keep their dataclass defaults), each float / int / bool field cast to its type
    (an int learning rate becomes a float; None values: every field at its default)."""
    check(values)
    given = values or {}
    fields = dataclasses.fields(cls)
    spec = cls(**{f.name: given[f.name] for f in fields if f.name in given})
    typed = {f.name: _CASTS[f.type](getattr(spec, f.name)) for f in fields if f.type in _CASTS}
    return dataclasses.replace(spec, **typed)
