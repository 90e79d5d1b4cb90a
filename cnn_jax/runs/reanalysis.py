"""Re-analysing a result of record in place: new analysis files, the same trained runs.

When the analysis changes (e.g. the claims engine) but the runs do not, a record is re-judged
from what it stored (`results.json`) instead of retrained. `rewrite_record` replaces the given
files of `results/<study>/` atomically (the folder is rebuilt beside it and swapped in), updates
their sha256 in `provenance.json` and appends a `reanalyses` entry (date, git state, command,
files), so the record says which numbers are from the run and which from a later analysis.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cnn_jax.outputs.markdown import markdown_table
from cnn_jax.runs.provenance import _git_state, file_sha256, repo_root
from cnn_jax.runs.record import PROVENANCE, results_dir


def read_record(study: str, results_root: str | os.PathLike = "results") -> dict:
    """The record's results.json (one line naming the file when it is missing or not JSON)."""
    path = results_dir(results_root) / study / "results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such record; list them with `ls results`") from None
    except ValueError as e:
        raise ValueError(f"{path}: not JSON ({e}); restore it with `git checkout {path}`") from None


def _code_state() -> dict:
    """The git state of the code that re-analysed: records under results/ (this one, others
    re-analysed in the same pass) are the analysis' inputs and outputs, not its code."""
    state = _git_state(repo_root())
    if state.get("dirty") is not None:
        code = [f for f in state["dirty_files"] if not f.startswith("results/")]
        state = {**state, "dirty": bool(code), "dirty_files": code}
    return state


def rewrite_record(
    study: str,
    files: Mapping[str, str],
    *,
    command: str,
    results_root: str | os.PathLike = "results",
) -> Path:
    """Writes `files` (relative name -> text) into the record and records the re-analysis."""
    target = results_dir(results_root) / study
    prov_path = target / PROVENANCE
    if not prov_path.is_file():
        raise FileNotFoundError(f"{prov_path}: no such record; publish the study first")
    prov = json.loads(prov_path.read_text(encoding="utf-8"))
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{study}.", suffix=".tmp"))
    try:
        shutil.copytree(target, tmp, dirs_exist_ok=True)
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text, encoding="utf-8")
            prov.setdefault("files", {})[rel] = {
                "sha256": file_sha256(tmp / rel),
                "bytes": (tmp / rel).stat().st_size,
            }
        prov.setdefault("reanalyses", []).append(
            {
                "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "git": _code_state(),
                "command": command,
                "files": sorted(files),
            }
        )
        (tmp / PROVENANCE).write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")
        old = target.with_name(f".{study}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


Reanalyse = Callable[[str, "str | os.PathLike"], list[list[str]]]


def main(
    reanalyse: Reanalyse, records: Sequence[str], argv: Sequence[str] | None, prog: str
) -> int:
    """The command line every study's `reanalyse` module shares: re-judges each --record
    (default: `records`) and prints its labels old -> new; one line on a bad record."""
    parser = argparse.ArgumentParser(prog=prog, description="Re-judge records of record.")
    parser.add_argument("--record", action="append", help=f"a results/ folder (default: {records})")
    parser.add_argument("--results-root", default="results")
    args = parser.parse_args(argv)
    for study in args.record or records:
        try:
            rows = reanalyse(study, args.results_root)
        except (ValueError, FileNotFoundError, KeyError) as e:
            print(f"error: {study}: {e}", file=sys.stderr)
            return 2
        changed = sum(r[2] != r[3] for r in rows)
        print(f"\n## {study}: {changed} of {len(rows)} labels changed\n")
        print(markdown_table(["claim", "budget", "old", "new", "why"], rows))
    return 0
