"""Regenerates the README's result blocks from `results/`, or checks that they agree.

    python -m cnn_jax.runs.readme_blocks            # rewrite the blocks in README.md
    python -m cnn_jax.runs.readme_blocks --check    # exit 1 naming each stale block

A block is everything between `<!-- results:<study> -->` and `<!-- /results:<study> -->`; it is
replaced by `results/<study>/readme.md` (written by the study, published by `cnn_jax.runs.record`)
plus a one-line footer from `results/<study>/provenance.json` (date, git revision, wall time,
command). Relative links in readme.md that name a file of the record are rewritten to point
into `results/<study>/`. So the README's tables are never typed by hand: edit the study, rerun
it, publish, regenerate. Bad markers or a missing record stop with one line (exit 2).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

from cnn_jax.runs import record
from cnn_jax.outputs.writers import atomic_write_text

# A study name is a plain folder name; `<!-- results:<study> -->` (as in docs) is no marker.
_MARKER = re.compile(r"<!-- (/?)results:([A-Za-z0-9_.-]+) -->")
_LINK = re.compile(r"(\]\()([^)\s]+)(\))")


class BlockError(ValueError):
    """A malformed marker or a block whose record is missing; the message says which."""


def find_blocks(text: str) -> list[tuple[str, int, int]]:
    """(study, start, end) of each block's content (between its two markers), in order."""
    blocks, open_study, open_end, seen = [], None, 0, set()
    for m in _MARKER.finditer(text):
        closing, study = m.group(1) == "/", m.group(2)
        line = text.count("\n", 0, m.start()) + 1
        if not closing:
            if open_study is not None:
                raise BlockError(f"README line {line}: results:{study} opens inside {open_study}")
            if study in seen:
                raise BlockError(f"README line {line}: a second block for results:{study}")
            open_study, open_end = study, m.end()
        elif study != open_study:
            raise BlockError(f"README line {line}: /results:{study} closes no open block")
        else:
            blocks.append((study, open_end, m.start()))
            seen.add(study)
            open_study = None
    if open_study is not None:
        raise BlockError(f"README: results:{open_study} is never closed (<!-- /results:... -->)")
    return blocks


def _shown_command(command: str) -> str:
    """The command with the interpreter's path shortened to `python`."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return command
    if argv and Path(argv[0]).name.startswith("python"):
        argv[0] = "python"
    return shlex.join(argv)


def _wall(seconds: float) -> str:
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def footer(study: str, prov: dict) -> str:
    """The provenance line under a block: date, revision (dirty or not), wall time, command."""
    git = prov.get("git") or {}
    revision = (git.get("revision") or "unknown")[:10] + (
        " (dirty tree)" if git.get("dirty") else ""
    )
    load = (prov.get("load_average") or {}).get("at_publish")
    load_text = f", load {load[0]:.1f}" if load else ""
    return (
        f"<sub>Generated from `results/{study}/` (provenance.json): {prov.get('date_utc', '?')}, "
        f"git {revision}, wall {_wall(float(prov.get('wall_time_sec', 0)))}{load_text}, "
        f"`{_shown_command(str(prov.get('command', '?')))}`</sub>"
    )


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
                f"(cnn_jax.runs.record.publish) or remove the README marker"
            )
    try:
        prov = json.loads(prov_path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise BlockError(f"{prov_path}: not valid JSON ({e})") from None
    body = _relink(part.read_text(encoding="utf-8").strip(), study, folder, results_prefix)
    return f"\n{body}\n\n{footer(study, prov)}\n"


def regenerate(text: str, results: Path, results_prefix: str = "results") -> tuple[str, list[str]]:
    """The README text with every block regenerated, and the studies whose block changed."""
    out, stale, pos = [], [], 0
    for study, start, end in find_blocks(text):
        new = render(study, results, results_prefix)
        if text[start:end] != new:
            stale.append(study)
        out += [text[pos:start], new]
        pos = end
    out.append(text[pos:])
    return "".join(out), stale


def unreferenced(text: str, results: Path) -> list[str]:
    """Studies with a readme.md in `results` that no README block shows (a note, not an error)."""
    shown = {study for study, _, _ in find_blocks(text)}
    found = sorted(p.parent.name for p in results.glob(f"*/{record.README_PART}"))
    return [s for s in found if s not in shown and not s.startswith(".")]


def main(argv: list[str] | None = None) -> int:
    """Command line: rewrite (default) or `--check`; returns the exit status."""
    root = record.repo_root()
    parser = argparse.ArgumentParser(
        prog="python -m cnn_jax.runs.readme_blocks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a block is stale")
    parser.add_argument("--readme", type=Path, default=root / "README.md")
    parser.add_argument("--results", type=Path, default=root / "results")
    args = parser.parse_args(argv)
    try:
        text = args.readme.read_text(encoding="utf-8")
        prefix = _prefix(args.readme, args.results)
        new, stale = regenerate(text, args.results, prefix)
    except (OSError, BlockError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for study in unreferenced(text, args.results):
        print(f"note: {args.results / study} has no README block; add <!-- results:{study} -->")
    if args.check:
        for study in stale:
            print(
                f"stale: README block results:{study} differs from {args.results / study}; "
                f"run python -m cnn_jax.runs.readme_blocks",
                file=sys.stderr,
            )
        return 1 if stale else 0
    if new != text:
        atomic_write_text(args.readme, new)
    print(
        f"{args.readme}: {len(stale)} block(s) regenerated"
        + (f" ({', '.join(stale)})" if stale else "")
    )
    return 0


def _prefix(readme: Path, results: Path) -> str:
    """The results folder as a link path relative to the README's folder."""
    try:
        return results.resolve().relative_to(readme.resolve().parent).as_posix()
    except ValueError:
        return results.resolve().as_posix()


if __name__ == "__main__":
    sys.exit(main())
