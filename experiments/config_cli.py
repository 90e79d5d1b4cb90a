"""Config files and `--config.<field>=<value>` overrides from the command line, one-line errors.

Replaces ml_collections' `config_flags` on the run path, for three reasons: a missing or
broken config file, and an override of a field the file does not declare, were tracebacks;
documented optional fields (`dataset.options.train_subset`, `optim.b1`, `model.pool_window`,
...) could not be set at all unless the file happened to declare them; and `model.padding`
(documented: a mode name or an int) refused ints. Here:

- `load_file("path.py")` imports the file and calls `get_config()`; every failure is one
  ValueError naming the file (and the line for a syntax error) with a fix.
- `apply_override(config, "a.b.c", text)` parses `text` as the field's type (declared fields:
  the declared value's type; optional fields of a known section: a Python literal, else the
  text), and creates an optional field the file leaves out. An unknown field is one line
  listing the section's fields. `validate_config` then checks the values as for any config.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

# Fields of a section that accept more than their declared value's type.
# The package of the general configs, by its installed name (a checkout answers to it too:
# experiments/packaged_name.py); copied configs import their base from here.
PACKAGED_CONFIGS = "cnn_jax.experiments.configs"
MIXED = {"model.padding": (str, int), "model.pool_padding": (str, int)}
# Optional (undeclared) fields parsed as a type rather than as a Python literal.
OPTIONAL_TYPES = {"experiment.record_allow_dirty": bool}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def optional_fields(config: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Section -> the field names the trainer understands there (settable even if undeclared)."""
    from cnn_jax import augment, early_stopping
    from cnn_jax.config import specs
    from cnn_jax.datasets import options as dataset_options
    from cnn_jax.nn.model_spec import MODEL_KEYS
    from cnn_jax.optim import OPTIM_KEYS

    name = (config.get("dataset") or {}).get("name")
    options = dataset_options.OPTIONS.get(name, dataset_options.OPTIONS[dataset_options.GENERIC])
    return {
        "": ("seed",),
        "dataset": specs.DATASET_KEYS,
        "dataset.options": tuple(options),
        "model": MODEL_KEYS,
        "optim": OPTIM_KEYS,
        "train": specs.TRAIN_KEYS,
        "early_stopping": early_stopping.EARLY_STOPPING_KEYS,
        "augment": augment.AUGMENT_KEYS,
        "experiment": ("record_as", "record_allow_dirty"),  # cnn_jax.runs.record
    }


def load_file(path_arg: str) -> ml_collections.ConfigDict:
    """The ConfigDict returned by `get_config()` of the Python file `path_arg`."""
    path = Path(path_arg)
    if not path.is_file():
        raise ValueError(
            f"--config: no file {path_arg!r}; allowed: a Python file defining get_config(), "
            "e.g. --config=my_config.py, or a packaged config, e.g. --config=smoke"
        )
    try:
        name = _module_name(path)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        if not callable(getattr(module, "get_config", None)):
            raise ValueError(
                f"--config: {path} defines no get_config(); add one returning a ConfigDict"
            )
        config = module.get_config()
    except SyntaxError as e:
        raise ValueError(
            f"--config: {path}:{e.lineno}: syntax error ({e.msg}); fix the file"
        ) from None
    except ValueError:
        raise
    except ImportError as e:
        if e.name is None and "no known parent package" in str(e):  # a copied packaged config
            raise ValueError(
                f"--config: {path}{_line_in(e, path)}: a relative import outside a package; "
                f"import absolutely, e.g. `from {PACKAGED_CONFIGS} import base`"
            ) from None
        raise _load_error(e, path) from None
    except Exception as e:  # anything the file's code raises
        raise _load_error(e, path) from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise ValueError(
            f"--config: get_config() of {path} returned {type(config).__name__}; "
            "allowed: an ml_collections.ConfigDict"
        )
    return config


def _module_name(path: Path) -> str:
    """The file's dotted name inside its package (so `from . import base` works), its
    package imported first; a file outside any package gets a private name."""
    parts, folder = [path.stem], path.resolve().parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    if len(parts) == 1:
        return f"_cnn_jax_config_{abs(hash(str(path.resolve())))}"
    if str(folder) not in sys.path and not any(
        Path(p or ".").resolve() == folder for p in sys.path
    ):
        sys.path.insert(0, str(folder))
    importlib.import_module(".".join(parts[:-1]))
    return ".".join(parts)


def _load_error(error: BaseException, path: Path) -> ValueError:
    """One line: the file (and line) whose code raised `error`, and the error's first line."""
    text = str(error).splitlines()[0] if str(error) else ""
    return ValueError(
        f"--config: {path}{_line_in(error, path)} failed to load "
        f"({type(error).__name__}: {text}); fix the file"
    )


def _line_in(error: BaseException, path: Path) -> str:
    tb, line = error.__traceback__, ""
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == path.resolve():
            line = f":{tb.tb_lineno}"
        tb = tb.tb_next
    return line


def _literal(text: str) -> Any:
    if text.lower() in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: a string


def _parse(field: str, text: str, current: Any, declared_type: type | None) -> Any:
    """`text` as the value of `field`, whose declared value is `current` (type `declared_type`)."""
    kind = declared_type if declared_type is not None else type(current)
    if field in MIXED:
        value = _literal(text)
        return value if isinstance(value, MIXED[field]) and not isinstance(value, bool) else text
    if kind is bool:
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{field}: {text!r} not allowed; allowed: True, False")
    if kind in (int, float):
        value = _literal(text)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if kind is int and ok and not isinstance(value, int):
            ok = False
        if not ok:
            allowed = "an integer" if kind is int else "a number"
            raise ValueError(f"{field}: {text!r} not allowed; allowed: {allowed}")
        return kind(value)
    if kind is str:
        return text
    value = _literal(text)  # None (unset), tuples, lists, dicts: a Python literal
    if isinstance(current, tuple | list) and isinstance(value, str):
        # bare words for a sequence field: `zhang` or `max,gap` mean ('zhang',), ('max', 'gap')
        return tuple(word.strip() for word in value.split(",") if word.strip())
    return value


def apply_override(config: ml_collections.ConfigDict, field: str, text: str) -> None:
    """Sets `field` (dotted path) of `config` from the command-line text `text`."""
    *parents, key = field.split(".")
    section = config
    for depth, name in enumerate(parents):
        child = section.get(name) if isinstance(section, ml_collections.ConfigDict) else None
        if child is None and ".".join(parents[: depth + 1]) in optional_fields(config):
            section[name] = ml_collections.ConfigDict()
            child = section[name]
        if not isinstance(child, ml_collections.ConfigDict):
            raise _unknown(config, field, ".".join(parents[: depth + 1]))
        section = child
    where = ".".join(parents)
    if key in section:
        current = section[key]
        declared = section.get_type(key) if current is None else None
        value = _parse(field, text, current, declared)
        try:
            section[key] = value
        except TypeError:  # a MIXED field declared as one of its types
            del section[key]
            section[key] = value
    elif key in optional_fields(config).get(where, ()):
        kind = OPTIONAL_TYPES.get(field)
        section[key] = _parse(field, text, None, kind) if kind else _literal(text)
    else:
        raise _unknown(config, field, where)


def _unknown(config: Mapping[str, Any], field: str, where: str) -> ValueError:
    known = optional_fields(config).get(where)
    allowed = ", ".join(known) if known else "the fields the config file declares (see --help)"
    if where == "experiment":  # a study's own fields, plus the record's
        allowed = f"the fields the config file declares (see --help), {allowed}"
    return ValueError(f"--config.{field}: no such config field; allowed: {allowed}")


def split_argv(argv: Sequence[str]) -> tuple[str | None, list[tuple[str, str]], list[str]]:
    """(the --config value, the --config.<field>=<value> overrides, the other arguments)."""
    config_arg, overrides, rest = None, [], [argv[0]]
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg == "--config" and args:
            config_arg = args.pop(0)
        elif arg.startswith("--config="):
            config_arg = arg.split("=", 1)[1]
        elif arg.startswith("--config."):
            field, sep, text = arg[len("--config.") :].partition("=")
            if not sep:
                if not args:
                    raise ValueError(f"{arg}: no value; allowed: --config.<field>=<value>")
                text = args.pop(0)
            overrides.append((field, text))
        else:
            rest.append(arg)
    return config_arg, overrides, rest


def load(config_arg: str, overrides: Sequence[tuple[str, str]]) -> ml_collections.ConfigDict:
    """The config file with the overrides applied, in order."""
    config = load_file(config_arg)
    for field, text in overrides:
        apply_override(config, field, text)
    return config


def leaf_fields(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted field, value) of every leaf of a config, in declaration order."""
    out = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping | ml_collections.ConfigDict) and len(value):
            out += leaf_fields(value, path + ".")
        else:
            out.append((path, value))
    return out


def with_dotted(
    config: ml_collections.ConfigDict, dotted: Mapping[str, Any], field: str = "overrides"
) -> ml_collections.ConfigDict:
    """A copy of `config` with each dotted path ('optim.l2') set, the leaf added if missing;
    a path whose parent section does not exist is a one-line error naming `field`."""
    out = config.copy_and_resolve_references()
    with out.unlocked():
        for path, value in dotted.items():
            *parents, leaf = path.split(".")
            node = out
            for p in parents:
                if p not in node:
                    raise ValueError(f"{field}: {path!r} is no config path")
                node = node[p]
            node[leaf] = value
    return out
