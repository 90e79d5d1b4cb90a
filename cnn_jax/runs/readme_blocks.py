"""Regenerates the result blocks of the Markdown files from `results/`, or checks that they agree.

    python -m cnn_jax.runs.readme_blocks            # rewrite the blocks of every Markdown file
    python -m cnn_jax.runs.readme_blocks --check    # exit 1 naming each stale block and its file

A block is everything between `<!-- results:<study> -->` and `<!-- /results:<study> -->`; it is
replaced by `results/<study>/readme.md` (written by the study, published by
`cnn_jax.runs.record`) plus a one-line footer from `results/<study>/provenance.json` (date, git
revision, whether the tree was dirty, wall time, and the command as `python -m ...` without the
producing machine's paths, `command_line`). Every Markdown file of the repository that holds a
marker is covered (README.md, docs/, each study's README under experiments/, benchmarks/): the
files git lists, tracked or untracked but not ignored (without git, every `*.md`), less
`results/`, `runs/`, `data/` and hidden folders (`_SKIPPED`); `--readme FILE` (repeatable)
restricts the run to those files. Relative links in readme.md that name a file of the record are
rewritten to point into `results/<study>/`, relative to the folder of the Markdown file holding
the block. So the tables are never typed by hand: edit the study, rerun it, publish, regenerate.
Bad markers or a missing record stop with one line naming the file (exit 2), before anything is
written; a study of `results/` that no file shows (all files taken together) is a note.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from cnn_jax.outputs.writers import atomic_write_text
from cnn_jax.runs import command_line, record
from cnn_jax.runs.provenance import file_sha256

# A study name is a plain folder name; `<!-- results:<study> -->` (as in docs) is no marker.
_MARKER = re.compile(r"<!-- (/?)results:([A-Za-z0-9_.-]+) -->")
_LINK = re.compile(r"(\]\()([^)\s]+)(\))")
# Folders whose Markdown files are never searched for blocks (hidden folders neither).
_SKIPPED = frozenset({"results", "runs", "data", "node_modules", "build", "dist"})


class BlockError(ValueError):
    """A malformed marker or a block whose record is missing; the message says which."""


def find_blocks(text: str, name: str = "README") -> list[tuple[str, int, int]]:
    """(study, start, end) of each block's content (between its two markers), in order;
    `name` (the file) starts each error message."""
    blocks, open_study, open_end, seen = [], None, 0, set()
    for m in _MARKER.finditer(text):
        closing, study = m.group(1) == "/", m.group(2)
        line = text.count("\n", 0, m.start()) + 1
        if not closing:
            if open_study is not None:
                raise BlockError(f"{name} line {line}: results:{study} opens inside {open_study}")
            if study in seen:
                raise BlockError(f"{name} line {line}: a second block for results:{study}")
            open_study, open_end = study, m.end()
        elif study != open_study:
            raise BlockError(f"{name} line {line}: /results:{study} closes no open block")
        else:
            blocks.append((study, open_end, m.start()))
            seen.add(study)
            open_study = None
    if open_study is not None:
        raise BlockError(f"{name}: results:{open_study} is never closed (<!-- /results:... -->)")
    return blocks


def _shown_command(prov: dict) -> str:
    """The record's command as anyone can rerun it: `python -m <module> <args>`, paths made
    relative to the folder it ran in (`cwd`), none of the producing machine's left."""
    return command_line.portable_text(str(prov.get("command", "?")), prov.get("cwd") or ".")


def _tree(git: dict) -> str:
    """The revision, and how the tree stood: a forced dirty publish says it was forced."""
    revision = (git.get("revision") or "unknown")[:10]
    if not git.get("dirty"):
        return revision
    forced = f", published with {record.ALLOW_DIRTY_FIELD}" if git.get("dirty_allowed") else ""
    return f"{revision} (dirty tree{forced})"


def _wall(seconds: float) -> str:
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def footer(study: str, prov: dict) -> str:
    """The provenance line under a block: date, revision (dirty or not), wall time, command."""
    revision = _tree(prov.get("git") or {})
    load = (prov.get("load_average") or {}).get("at_publish")
    load_text = f", load {load[0]:.1f}" if load else ""
    return (
        f"<sub>Generated from `results/{study}/` (provenance.json): {prov.get('date_utc', '?')}, "
        f"git {revision}, wall {_wall(float(prov.get('wall_time_sec', 0)))}"
        f"{_training(prov)}{load_text}, "
        f"`{_shown_command(prov)}`{_reanalysed(prov)}</sub>"
    )


def _training(prov: dict) -> str:
    """' (training: 22 programs, 38 min 10 s summed)', or '' for a record without the field."""
    training = prov.get("training")
    if not isinstance(training, dict) or not training.get("programs"):
        return ""
    n, seconds = training["programs"], float(training["wall_time_sec"])
    return f" (training: {n} program{'s' if n != 1 else ''}, {_wall(seconds)} summed)"


def _reanalysed(prov: dict) -> str:
    """'; re-judged 2026-12-06 (git 77c7451d0e, `python -m ...`)' for the latest re-analysis."""
    entries = prov.get("reanalyses") or []
    if not entries or not isinstance(entries[-1], dict):
        return ""
    last = entries[-1]
    when = str(last.get("date_utc", "?"))[:10]
    return f"; re-judged {when} (git {_tree(last.get('git') or {})}, `{last.get('command', '?')}`)"


def _relink(markdown: str, study: str, folder: Path, results_prefix: str) -> str:
    """Rewrites relative link targets naming a file of the record to `<results>/<study>/...`."""

    def fix(m: re.Match) -> str:
        target = m.group(2)
        if "://" in target or target.startswith(("/", "#")) or not (folder / target).is_file():
            return m.group(0)
        return f"{m.group(1)}{results_prefix}/{study}/{target}{m.group(3)}"

    return _LINK.sub(fix, markdown)


def render(study: str, results: Path, results_prefix: str = "results") -> str:
    """The generated content of one block (with the newlines around it)."""
    folder = results / study
    part, prov_path = folder / record.README_PART, folder / record.PROVENANCE
    for path in (part, prov_path):
        if not path.is_file():
            raise BlockError(
                f"results:{study}: {path} is missing; run and publish the study "
                f"(cnn_jax.runs.record.publish) or remove the marker"
            )
    try:
        prov = json.loads(prov_path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise BlockError(f"{prov_path}: not valid JSON ({e})") from None
    check_record(folder, prov, prov_path)
    body = _relink(part.read_text(encoding="utf-8").strip(), study, folder, results_prefix)
    return f"\n{body}\n\n{footer(study, prov)}\n"


# provenance.json fields a block reads -> the JSON types allowed (None: the field may be null).
_FIELD_TYPES = {
    "files": (dict,),
    "git": (dict, type(None)),
    "load_average": (dict, type(None)),
    "wall_time_sec": (int, float),
    "training": (dict, type(None)),
    "command": (str,),
    "date_utc": (str,),
}
_REPUBLISH = "rerun and publish the study (cnn_jax.runs.record.publish)"


def _check_types(prov: object, prov_path: Path) -> None:
    """Each field a block reads has its type (one line naming the field otherwise)."""
    if not isinstance(prov, dict):
        raise BlockError(f"{prov_path}: holds {type(prov).__name__}, not an object; {_REPUBLISH}")
    for field, types in _FIELD_TYPES.items():
        value = prov.get(field)
        if not isinstance(value, types) or isinstance(value, bool):
            allowed = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise BlockError(
                f"{prov_path}: {field} is {type(value).__name__}, expected {allowed}; {_REPUBLISH}"
            )
    load = (prov.get("load_average") or {}).get("at_publish")
    if load is not None and not (
        isinstance(load, list) and load and all(type(x) in (int, float) for x in load)
    ):
        raise BlockError(f"{prov_path}: load_average.at_publish {load!r} is no list of numbers")
    training = prov.get("training") or {}
    if training and not (
        type(training.get("programs")) is int
        and type(training.get("wall_time_sec")) in (int, float)
    ):
        raise BlockError(
            f"{prov_path}: training {training!r} needs an integer programs and a number "
            f"wall_time_sec; {_REPUBLISH}"
        )


def check_record(folder: Path, prov: object, prov_path: Path) -> None:
    """A record agrees with its provenance.json: the fields a block reads have their types,
    and every file it lists is there, inside the record, with the sha256 it lists."""
    _check_types(prov, prov_path)
    for rel, entry in prov["files"].items():
        path = folder / rel
        expected = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(expected, str) or not _inside(path, folder):
            raise BlockError(f"{prov_path}: files entry {rel!r} is malformed; {_REPUBLISH}")
        if not path.is_file():
            raise BlockError(f"{path}: listed in {prov_path.name} but missing; {_REPUBLISH}")
        if file_sha256(path) != expected:
            raise BlockError(
                f"{path}: sha256 differs from the one {prov_path.name} lists (the file changed "
                f"after it was published); restore it, or {_REPUBLISH}"
            )


def regenerate(
    text: str, results: Path, results_prefix: str = "results", name: str = "README"
) -> tuple[str, list[str]]:
    """The Markdown text with every block regenerated, and the studies whose block changed."""
    out, stale, pos = [], [], 0
    for study, start, end in find_blocks(text, name):
        try:
            new = render(study, results, results_prefix)
        except BlockError as e:
            raise BlockError(f"{name}: {e}") from None
        if text[start:end] != new:
            stale.append(study)
        out += [text[pos:start], new]
        pos = end
    out.append(text[pos:])
    return "".join(out), stale


def unreferenced(texts: str | Iterable[str], results: Path) -> list[str]:
    """Studies with a readme.md in `results` that no block of `texts` (one Markdown text or
    several, taken together) shows: a note, not an error."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    shown = {study for text in texts for study, _, _ in find_blocks(text)}
    found = sorted(p.parent.name for p in results.glob(f"*/{record.README_PART}"))
    return [s for s in found if s not in shown and not s.startswith(".")]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _listed(root: Path) -> list[Path] | None:
    """The Markdown files git knows under `root` (tracked, or untracked and not ignored);
    None when `root` is not in a git work tree or git is missing."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard", "--", "*.md"],
            capture_output=True, check=True, text=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return sorted({root / name for name in out.split("\0") if name})


def _skipped(path: Path, root: Path) -> bool:
    """Whether `path` lies in a folder of `_SKIPPED` or a hidden folder under `root`."""
    folders = path.relative_to(root).parts[:-1]
    return any(part in _SKIPPED or part.startswith(".") for part in folders)


def markdown_files(root: Path, results: Path) -> list[Path]:
    """Every Markdown file under `root` that holds a results marker: the files git lists (else,
    without git, every `*.md`), less `results` and the folders `_skipped` names."""
    listed = _listed(root)
    if listed is None:
        listed = sorted(root.rglob("*.md"))
    found = []
    for path in listed:
        if not path.is_file() or _skipped(path, root) or _inside(path, results):
            continue
        if _MARKER.search(path.read_text(encoding="utf-8")):
            found.append(path)
    return found


def _shown(path: Path, root: Path) -> str:
    """`path` relative to `root` when it is inside, for messages."""
    return (
        path.resolve().relative_to(root.resolve()).as_posix() if _inside(path, root) else str(path)
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: rewrite (default) or `--check`; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m cnn_jax.runs.readme_blocks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a block is stale")
    parser.add_argument(
        "--root", type=Path, default=None,
        help="the tree whose Markdown files are searched for markers (default: the repository)",
    )  # fmt: skip
    parser.add_argument(
        "--readme", type=Path, action="append", default=None,
        help="only this Markdown file (repeatable) instead of every file with markers",
    )  # fmt: skip
    parser.add_argument(
        "--results", type=Path, default=None, help="the records (default: <root>/results)"
    )
    args = parser.parse_args(argv)
    root = args.root if args.root is not None else record.repo_root()
    results = args.results if args.results is not None else root / "results"
    try:
        files = args.readme if args.readme else markdown_files(root, results)
        texts, updates = [], []
        for path in files:
            name = _shown(path, root)
            text = path.read_text(encoding="utf-8")
            new, stale = regenerate(text, results, _prefix(path, results), name)
            texts.append(text)
            updates.append((path, name, text, new, stale))
    except (OSError, BlockError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for study in unreferenced(texts, results):
        print(f"note: {results / study} has no README block; add <!-- results:{study} -->")
    if not files:
        print(f"note: no Markdown file under {root} has a results block")
    if args.check:
        for _, name, _, _, stale in updates:
            for study in stale:
                print(
                    f"stale: README block results:{study} in {name} differs from "
                    f"{results / study}; run python -m cnn_jax.runs.readme_blocks",
                    file=sys.stderr,
                )
        return 1 if any(stale for *_, stale in updates) else 0
    for path, name, text, new, stale in updates:
        if new != text:
            atomic_write_text(path, new)
        print(
            f"{name}: {len(stale)} block(s) regenerated"
            + (f" ({', '.join(stale)})" if stale else "")
        )
    return 0


def _prefix(markdown: Path, results: Path) -> str:
    """The results folder as a link path relative to the Markdown file's folder."""
    try:
        return Path(os.path.relpath(results.resolve(), markdown.resolve().parent)).as_posix()
    except ValueError:  # another drive
        return results.resolve().as_posix()


if __name__ == "__main__":
    sys.exit(main())
