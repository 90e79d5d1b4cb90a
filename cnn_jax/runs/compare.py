r"""Compare runs across workdirs: one row per run, only the settings that differ.

    cnn-jax-compare runs/sweep_a runs/sweep_b 'runs/digits/*' --sort=-test_accuracy \
        --where model.activation=relu --markdown=compare.md --csv=compare.csv
    python -m cnn_jax.runs.compare runs/...          (the same)

A run is a directory with the trainer's results.json (a seed directory of a vmapped unit
counts as its own run; the unit's summary results.json is skipped, and so is a study's own
results.json, so a study folder compares its runs). Each row: the run's path, the config
fields whose values differ between the runs (the run-identity fields of
`cnn_jax.config.identity`, i.e. what changes the result, seed included; an unset field shows
the value the trainer used, `effective`), the final metrics, the wall time and the run
identity hash (results.json's, else config.json's, else computed); a member that diverged
shows "diverged at step N" as its test accuracy (and sorts after every number). The printed
table fits `--width` columns (longer cells cut, columns continued in further blocks); the
Markdown and CSV files hold every cell in full.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cnn_jax import run_identity, run_results
from cnn_jax.config import grid, identity
from cnn_jax.outputs.writers import read_json
from cnn_jax.runs import effective

# (column, dotted path in results.json)
METRICS = (
    ("test_accuracy", "test_accuracy"),
    ("val_accuracy", "final.validation.accuracy"),
    ("test_loss", "final.test.loss"),
    ("train_accuracy", "final.train.accuracy"),
    ("best_epoch", "best_epoch"),
    ("steps", "steps"),
    ("wall_time_sec", "wall_time_sec"),
)


def _get(data: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


# What a one-line error about a damaged results.json or config.json says to do.
_RERUN = "the file is damaged: rerun that run, or leave it out of the runs compared"

# Keys only the trainer's results.json has (a run, a vmapped member, a grid member).
RUN_KEYS = (identity.KEY, "final", "vmapped_parent")


def is_run(results: Any) -> bool:
    """Whether a results.json is one run's: not a K-seed unit's summary (`per_seed`), not a
    study's summary (none of the trainer's keys)."""
    if not isinstance(results, dict) or "per_seed" in results:
        return False
    return any(key in results for key in RUN_KEYS)


def find_runs(patterns: Iterable[str], skipped: list[Path] | None = None) -> list[Path]:
    """Run directories under the given workdirs or globs (sorted, without duplicates); the
    study summaries passed over are appended to `skipped`."""
    runs: set[Path] = set()
    for pattern in patterns:
        roots = [Path(p) for p in sorted(glob.glob(pattern))]
        if not roots:
            raise ValueError(f"runs: {pattern!r} matches nothing; allowed: workdirs or globs")
        for root in roots:
            found = [root] if root.name == "results.json" else list(root.rglob("results.json"))
            for path in filter(Path.is_file, found):
                results = read_json(path)
                if not isinstance(results, dict):
                    raise ValueError(f"{path}: {_not_an_object(results)}; {_RERUN}")
                if is_run(results):
                    runs.add(path.parent)
                elif skipped is not None and "per_seed" not in results:
                    skipped.append(path)
    if not runs:
        raise ValueError(
            f"runs: no run's results.json under {list(patterns)} (a study's own summary is "
            "not a run); allowed: run workdirs or a study folder holding runs"
        )
    return sorted(runs)


def load_run(run_dir: Path) -> dict[str, Any]:
    """{'run', 'results', 'config', 'identity'} of one run directory; a results.json or
    config.json of the wrong shape is one ValueError line naming the file."""
    results = read_json(run_dir / "results.json")
    check_results(run_dir / "results.json", results)
    try:
        return _load_run(run_dir, results)
    except (TypeError, AttributeError, KeyError, IndexError) as e:  # a field of the wrong type
        raise ValueError(
            f"{run_dir}: its results.json or config.json is malformed ({type(e).__name__}: "
            f"{e}); {_RERUN}"
        ) from None


def check_results(path: Path, results: Any) -> None:
    """Refuses, in one line naming `path` and the field, a results.json whose values compare
    shows or sorts by are not of the trainer's types (numbers, an integer seed)."""
    if not isinstance(results, dict):
        raise ValueError(f"{path}: {_not_an_object(results)}; {_RERUN}")
    seed = results.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"{path}: seed is {seed!r}; expected an integer; {_RERUN}")
    for _, dotted in METRICS:
        value = _get(results, dotted)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{path}: {dotted} is {value!r:.60}; expected a number; {_RERUN}")
    if not isinstance(results.get(identity.KEY, ""), str):
        raise ValueError(f"{path}: {identity.KEY} is not a string; {_RERUN}")


def _not_an_object(value: Any) -> str:
    return f"holds a JSON {type(value).__name__}, not the trainer's JSON object"


def _load_run(run_dir: Path, results: dict[str, Any]) -> dict[str, Any]:
    parent = run_results.member_parent(run_dir, results)
    config_path = parent / "config.json"
    config = read_json(config_path) if config_path.exists() else {}
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: {_not_an_object(config)}; {_RERUN}")
    if parent != run_dir and config:  # a member: its own seed and grid point, not the unit's
        member = grid.member_config(config, results["seed_index"])
        fields = identity.seed_fields(member, member["seed"])
        return {"run": str(run_dir), "results": results, "fields": fields,
                "identity": run_identity.of(member)}  # fmt: skip
    seed = results.get("seed", config.get("seed", 0))
    fields = identity.seed_fields(config, seed) if config else {"seed": seed}
    run_id = results.get(identity.KEY) or config.get(identity.KEY)
    if run_id is None and config:
        run_id = run_identity.of(config)
    return {"run": str(run_dir), "results": results, "fields": fields, "identity": run_id}


def _text(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return value


class Diverged(str):
    """The test-accuracy cell of a diverged run ('diverged at step N'): sorted as missing."""


def table(runs: Sequence[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows): the run, the fields that differ, the metrics, the identity hash."""
    keys = sorted({k for r in runs for k in r["fields"]})
    differing = [
        k for k in keys if len({json.dumps(r["fields"].get(k), sort_keys=True) for r in runs}) > 1
    ]
    diverged = [run_results.diverged_text(r["results"]) for r in runs]
    metrics = [(c, p) for c, p in METRICS if any(_get(r["results"], p) is not None for r in runs)
               or (c == "test_accuracy" and any(diverged))]  # fmt: skip
    columns = ["run", *differing, *(c for c, _ in metrics), "identity"]
    rows = []
    for r, outcome in zip(runs, diverged):
        row = {"run": r["run"], **{k: _text(r["fields"].get(k)) for k in differing}}
        row.update({c: _get(r["results"], p) for c, p in metrics})
        if outcome:
            row["test_accuracy"] = Diverged(outcome)
        row["identity"] = r["identity"]
        rows.append(row)
    return columns, rows


def _matches(value: Any, wanted: str) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value).lower() == wanted.lower()
    try:
        return float(wanted) == float(value)
    except ValueError:
        return False


def parse_where(where: Sequence[str], known: set[str]) -> list[tuple[str, str]]:
    """`field=value` conditions as pairs; one ValueError line for a malformed or unknown one."""
    out = []
    for condition in where:
        field, sep, wanted = condition.partition("=")
        if not sep:
            raise ValueError(f"--where: {condition!r}; allowed: field=value")
        if field not in known:
            raise ValueError(f"--where: no field {field!r}; allowed: {', '.join(sorted(known))}")
        out.append((field, wanted))
    return out


def sort_rows(rows: list[dict], columns: list[str], key: str | None) -> list[dict]:
    """Rows sorted by column `key` ('-key': descending); missing values last."""
    if not key:
        return rows
    name, reverse = key.lstrip("-"), key.startswith("-")
    if name not in columns:
        raise ValueError(f"--sort: no column {name!r}; allowed: {', '.join(columns)}")
    present = [r for r in rows if r.get(name) is not None and not isinstance(r[name], Diverged)]
    missing = [r for r in rows if r.get(name) is None or isinstance(r[name], Diverged)]
    present.sort(key=lambda r: (isinstance(r[name], str), r[name]), reverse=reverse)
    return present + missing


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


DEFAULT_WIDTH = 120  # when stdout is no terminal
MAX_RUN, MAX_CELL = 44, 28  # characters shown of a run's path (its end) and of another cell


def _clip(text: str, limit: int, *, keep_end: bool = False) -> str:
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1) :] if keep_end else text[: limit - 1] + "…"


def _blocks(widths: list[int], width: int) -> list[list[int]]:
    """Column indices per block: the run column first in each, as many others as fit."""
    blocks, current, used = [], [0], widths[0]
    for i in range(1, len(widths)):
        if len(current) > 1 and used + 2 + widths[i] > width:
            blocks.append(current)
            current, used = [0], widths[0]
        current.append(i)
        used += 2 + widths[i]
    return [*blocks, current]


def format_text(columns: list[str], rows: list[dict], width: int | None = None) -> str:
    """An aligned plain-text table; with `width`, cells are cut and columns that do not fit
    continue in further blocks (each starting with the run column)."""
    cells = [columns, *([_cell(r.get(c)) for c in columns] for r in rows)]
    if width:
        cells = [[_clip(line[0], MAX_RUN, keep_end=True)] + [_clip(v, MAX_CELL) for v in line[1:]]
                 for line in cells]  # fmt: skip
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    blocks = _blocks(widths, width) if width else [list(range(len(columns)))]
    text = [
        "\n".join("  ".join(line[i].ljust(widths[i]) for i in block).rstrip() for line in cells)
        for block in blocks
    ]
    return "\n\n".join(text)


def format_markdown(columns: list[str], rows: list[dict]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def format_csv(columns: list[str], rows: list[dict]) -> str:
    """CSV with full-precision values."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: "" if r.get(c) is None else r.get(c) for c in columns} for r in rows)
    return out.getvalue()


def compare(
    patterns: Sequence[str], *, sort: str | None = None, where: Sequence[str] = ()
) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) for the runs under `patterns`, kept where every `field=value` holds
    (any column or identity field), sorted by `sort`."""
    skipped: list[Path] = []
    runs = [load_run(path) for path in find_runs(patterns, skipped)]
    if skipped:
        names = ", ".join(str(p) for p in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        print(f"note: skipped {len(skipped)} study summary results.json: {names}", file=sys.stderr)
    keys = {k for r in runs for k in r["fields"]}
    for run in runs:  # unset fields: the values the trainer used
        run["fields"] = effective.fill(run["fields"], keys)
    columns, rows = table(runs)
    known = set(columns) | {k for r in runs for k in r["fields"]}
    conditions = parse_where(where, known)
    kept = [
        row
        for row, run in zip(rows, runs)
        if all(_matches({**run["fields"], **row}.get(f), wanted) for f, wanted in conditions)
    ]
    return columns, sort_rows(kept, columns, sort)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnn-jax-compare", description=__doc__.split("\n\n")[0].strip()
    )
    parser.add_argument("runs", nargs="+", help="workdirs or globs (quote globs)")
    parser.add_argument("--sort", help="column to sort by; -column for descending")
    parser.add_argument("--where", action="append", default=[], help="field=value (repeat)")
    parser.add_argument("--markdown", help="also write the table as Markdown to this file")
    parser.add_argument("--csv", help="also write the table as CSV to this file")
    parser.add_argument(
        "--width",
        type=int,
        default=None,
        help="columns of the printed table (default: the terminal's, else "
        f"{DEFAULT_WIDTH}; 0: no limit)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """The command: prints the table, writes --markdown/--csv; bad input is one line."""
    args = _parser().parse_args(argv)
    try:
        columns, rows = compare(args.runs, sort=args.sort, where=args.where)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # a results.json or config.json that cannot be read
        print(f"error: {e.filename}: cannot read it ({e.strerror})", file=sys.stderr)
        sys.exit(2)
    width = args.width if args.width is not None else _terminal_width()
    print(format_text(columns, rows, width))
    for flag, path, fmt in (("--markdown", args.markdown, format_markdown),
                            ("--csv", args.csv, format_csv)):  # fmt: skip
        if path:
            write_table(flag, Path(path), fmt(columns, rows))


def write_table(flag: str, path: Path, text: str) -> None:
    """Writes a table file; one line naming the flag and the file when it cannot."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        reason = e.strerror or type(e).__name__
        print(f"error: {flag}: cannot write {path} ({reason}); allowed: a writable file path",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)


def _terminal_width() -> int:
    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns


if __name__ == "__main__":
    main()
