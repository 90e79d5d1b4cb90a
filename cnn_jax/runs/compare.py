r"""Compare runs across workdirs: one row per run, only the settings that differ.

    cnn-jax-compare runs/sweep_a runs/sweep_b 'runs/digits/*' --sort=-test_accuracy \
        --where model.activation=relu --markdown=compare.md --csv=compare.csv
    python -m cnn_jax.runs.compare runs/...          (the same)

A run is a directory with results.json (a seed directory of a vmapped unit counts as its
own run; the unit's summary results.json is skipped). Each row: the run's path, the
config fields whose values differ between the runs (the run-identity fields of
`cnn_jax.config.identity`, i.e. what changes the result, seed included), the final metrics, the
wall time and the run identity hash (results.json's, else config.json's, else computed).
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cnn_jax import run_results
from cnn_jax.config import grid, identity
from cnn_jax.outputs.writers import read_json

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


def find_runs(patterns: Iterable[str]) -> list[Path]:
    """Run directories under the given workdirs or globs (sorted, without duplicates)."""
    runs: set[Path] = set()
    for pattern in patterns:
        roots = [Path(p) for p in sorted(glob.glob(pattern))]
        if not roots:
            raise ValueError(f"runs: {pattern!r} matches nothing; allowed: workdirs or globs")
        for root in roots:
            found = [root] if root.name == "results.json" else list(root.rglob("results.json"))
            for path in found:
                if path.is_file() and "per_seed" not in read_json(path):  # not a unit summary
                    runs.add(path.parent)
    if not runs:
        raise ValueError(f"runs: no results.json under {list(patterns)}; allowed: run workdirs")
    return sorted(runs)


def load_run(run_dir: Path) -> dict[str, Any]:
    """{'run', 'results', 'config', 'identity'} of one run directory."""
    results = read_json(run_dir / "results.json")
    parent = run_results.member_parent(run_dir, results)
    config_path = parent / "config.json"
    config = read_json(config_path) if config_path.exists() else {}
    if parent != run_dir and config:  # a member: its own seed and grid point, not the unit's
        member = grid.member_config(config, results["seed_index"])
        fields = identity.seed_fields(member, member["seed"])
        return {"run": str(run_dir), "results": results, "fields": fields,
                "identity": identity.of(member)}  # fmt: skip
    seed = results.get("seed", config.get("seed", 0))
    fields = identity.seed_fields(config, seed) if config else {"seed": seed}
    run_id = results.get(identity.KEY) or config.get(identity.KEY)
    if run_id is None and config:
        run_id = identity.of(config)
    return {"run": str(run_dir), "results": results, "fields": fields, "identity": run_id}


def _text(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return value


def table(runs: Sequence[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows): the run, the fields that differ, the metrics, the identity hash."""
    keys = sorted({k for r in runs for k in r["fields"]})
    differing = [
        k for k in keys if len({json.dumps(r["fields"].get(k), sort_keys=True) for r in runs}) > 1
    ]
    metrics = [(c, p) for c, p in METRICS if any(_get(r["results"], p) is not None for r in runs)]
    columns = ["run", *differing, *(c for c, _ in metrics), "identity"]
    rows = []
    for r in runs:
        row = {"run": r["run"], **{k: _text(r["fields"].get(k)) for k in differing}}
        row.update({c: _get(r["results"], p) for c, p in metrics})
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
    present = [r for r in rows if r.get(name) is not None]
    missing = [r for r in rows if r.get(name) is None]
    present.sort(key=lambda r: (isinstance(r[name], str), r[name]), reverse=reverse)
    return present + missing


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def format_text(columns: list[str], rows: list[dict]) -> str:
    """An aligned plain-text table."""
    cells = [columns, *([_cell(r.get(c)) for c in columns] for r in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells)


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
    runs = [load_run(path) for path in find_runs(patterns)]
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
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """The command: prints the table, writes --markdown/--csv; bad input is one line."""
    args = _parser().parse_args(argv)
    try:
        columns, rows = compare(args.runs, sort=args.sort, where=args.where)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(format_text(columns, rows))
    for path, fmt in ((args.markdown, format_markdown), (args.csv, format_csv)):
        if path:
            Path(path).write_text(fmt(columns, rows), encoding="utf-8")


if __name__ == "__main__":
    main()
