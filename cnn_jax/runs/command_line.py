"""A command line as anyone can rerun it: `python -m <module> <args>`, no machine paths.

A study records how it was started, but `sys.argv` holds the module's file path
(`/home/me/repo/experiments/anatomy/hyperparameters.py`, or a site-packages path under a
console script) and arguments may name absolute folders. `portable` rewrites such a command:
the interpreter becomes `python`, a module file becomes `-m <its dotted name>` (from its
package folders, else from its path below the working directory), and an absolute path in an
argument becomes relative to the working directory, `~/...` under the home folder, or else
`.../<its last two parts>`.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

_INSTALLED = ("site-packages", "dist-packages")
_FLAGS = {"-u", "-B", "-O", "-OO", "-s", "-S", "-E", "-I", "-b", "-bb", "-q", "-P", "-d", "-v"}
_WITH_VALUE = {"-X", "-W"}
_PLAIN = re.compile(r"[\w@%+=:,./~-]+")  # needs no quoting (`~/` stays readable)


def _quote(arg: str) -> str:
    return arg if _PLAIN.fullmatch(arg) else shlex.quote(arg)


def _is_python(arg: str) -> bool:
    return Path(arg).name.startswith("python")


def _dotted(parts: Sequence[str]) -> str | None:
    names = [*parts[:-1], Path(parts[-1]).stem] if parts else []
    if names and names[-1] == "__main__":
        names.pop()
    return ".".join(names) if names and all(n.isidentifier() for n in names) else None


def module_of(path: str, cwd: Path) -> str | None:
    """The dotted module name of the Python file `path`, or None when it has none."""
    file = Path(path) if Path(path).is_absolute() else cwd / path
    installed = [i for i, part in enumerate(file.parts) if part in _INSTALLED]
    if installed:  # an installed package's file
        return _dotted(file.parts[installed[-1] + 1 :])
    if file.is_file():  # from its package folders
        parts, folder = [file.name], file.resolve().parent
        while (folder / "__init__.py").is_file():
            parts.insert(0, folder.name)
            folder = folder.parent
        if len(parts) > 1:
            return _dotted(parts)
    try:
        return _dotted(file.relative_to(cwd).parts)
    except ValueError:
        return None


def portable_path(value: str, cwd: Path) -> str:
    """`value` without this machine's folders when it is an absolute path."""
    path = Path(value)
    if not path.is_absolute():
        return value
    for base, prefix in ((cwd, ""), (Path.home(), "~/")):
        try:
            rel = path.relative_to(base)
        except ValueError:
            continue
        return prefix + (rel.as_posix() if rel.parts else ".")
    return ".../" + "/".join(path.parts[-2:])


def _argument(arg: str, cwd: Path) -> str:
    flag, sep, value = arg.partition("=")
    if sep and flag.startswith("-"):
        return f"{flag}={portable_path(value, cwd)}"
    return portable_path(arg, cwd)


def portable(argv: Sequence[str], cwd: str | Path) -> str:
    """The command `argv`, run in `cwd`, as `python -m <module> <args>` without machine paths
    (a console script keeps its name; see the module docstring)."""
    cwd, args = Path(cwd), list(argv)
    interpreter = bool(args) and _is_python(args[0])
    if interpreter:
        args.pop(0)
        while args and args[0] in _FLAGS | _WITH_VALUE:  # -u, -X dev, ...: not the command
            args = args[2:] if args[0] in _WITH_VALUE else args[1:]
    if len(args) >= 2 and args[0] == "-c":
        head, args = ["python", "-c", args[1]], args[2:]
    elif len(args) >= 2 and args[0] == "-m":
        head, args = ["python", "-m", args[1]], args[2:]
    elif args and args[0].endswith(".py"):
        module = module_of(args[0], cwd)
        head = ["python", "-m", module] if module else ["python", portable_path(args[0], cwd)]
        args = args[1:]
    elif args:
        head, args = [Path(args[0]).name], args[1:]
    else:
        head = ["python"]
    return " ".join(_quote(a) for a in [*head, *(_argument(a, cwd) for a in args)])


def portable_text(command: str, cwd: str | Path) -> str:
    """`portable` of a command given as one string (unparsable text is returned as is)."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return command
    return portable(argv, cwd)


def this_process() -> list[str]:
    """This process's command: `python -m <module>` when it runs a module, else its argv."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return ["python", "-m", spec.name.removesuffix(".__main__"), *sys.argv[1:]]
    return list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
