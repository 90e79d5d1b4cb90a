"""Generated result blocks in every Markdown file agree with results/
(python -m cnn_jax.runs.readme_blocks)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from cnn_jax.runs import readme_blocks, record


def test_markdown_blocks_match_results_of_record(capsys):
    """Every Markdown file of the repository that holds a block (README.md, docs/, the study
    READMEs) shows its record as the tool renders it."""
    root = record.repo_root()
    assert readme_blocks.markdown_files(root, root / "results")
    status = readme_blocks.main(["--check", "--root", str(root)])
    assert status == 0, capsys.readouterr().err


def _record(tmp_path, study: str, accuracy: str) -> None:
    workdir = tmp_path / "wd" / study
    (workdir / "plots").mkdir(parents=True, exist_ok=True)
    (workdir / "readme.md").write_text(
        f"| variant | acc |\n|---|---|\n| a | {accuracy} |\n\n![acc](plots/acc.png)\n"
    )
    (workdir / "plots" / "acc.png").write_bytes(b"\x89PNG fake")
    record.publish(
        study, workdir, ["readme.md", "plots"], config={}, dataset=None, wall_time_sec=61.5,
        command="/x/.venv/bin/python -m experiments.toy", results_root=tmp_path / "results",
    )  # fmt: skip


def _block(study: str, body: str = "hand typed\n") -> str:
    return f"<!-- results:{study} -->\n{body}<!-- /results:{study} -->\n"


@pytest.fixture
def tree(tmp_path):
    """A repository-like tree: two published studies, a README.md showing one and a
    docs/guide.md showing the other, plus Markdown that is no part of the tree's docs."""
    _record(tmp_path, "study_a", "0.9")
    _record(tmp_path, "study_b", "0.8")
    (tmp_path / "README.md").write_text("# P\n" + _block("study_a") + "tail\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n" + _block("study_b"))
    # never searched: the records themselves, hidden folders (a virtualenv), runs/
    for skipped in ("results", ".venv/lib", "runs/x"):
        (tmp_path / skipped).mkdir(parents=True, exist_ok=True)
        (tmp_path / skipped / "notes.md").write_text(_block("missing_study"))
    return tmp_path


def _cli(root, *flags):
    return readme_blocks.main([*flags, "--root", str(root)])


def test_blocks_in_every_markdown_file_are_regenerated_and_checked(tree, capsys):
    readme, guide = tree / "README.md", tree / "docs" / "guide.md"
    assert readme_blocks.markdown_files(tree, tree / "results") == [readme, guide]
    assert _cli(tree, "--check") == 1
    err = capsys.readouterr().err
    assert "stale: README block results:study_a in README.md" in err
    assert "stale: README block results:study_b in docs/guide.md" in err

    assert _cli(tree) == 0
    out = capsys.readouterr().out
    assert "README.md: 1 block(s) regenerated (study_a)" in out
    assert "docs/guide.md: 1 block(s) regenerated (study_b)" in out
    assert "has no README block" not in out  # the two files together show both studies
    text, guide_text = readme.read_text(), guide.read_text()
    assert "| a | 0.9 |" in text and "hand typed" not in text and text.endswith("tail\n")
    assert "| a | 0.8 |" in guide_text and "hand typed" not in guide_text
    # record links are relative to each file's own folder
    assert "](results/study_a/plots/acc.png)" in text
    assert "](../results/study_b/plots/acc.png)" in guide_text
    assert _cli(tree, "--check") == 0
    assert _cli(tree) == 0 and readme.read_text() == text and guide.read_text() == guide_text

    # a stale block in the second file alone fails the check, naming that file and block
    guide.write_text(guide_text.replace("| a | 0.8 |", "| a | 0.7 |"))
    assert _cli(tree, "--check") == 1
    err = capsys.readouterr().err
    assert "results:study_b in docs/guide.md" in err and "README.md " not in err
    assert err.count("\n") == 1


def test_new_results_make_the_second_file_stale(tree, capsys):
    assert _cli(tree) == 0
    _record(tree, "study_b", "0.5")
    assert _cli(tree, "--check") == 1
    assert "results:study_b in docs/guide.md" in capsys.readouterr().err
    assert _cli(tree) == 0 and "| a | 0.5 |" in (tree / "docs" / "guide.md").read_text()


def test_a_study_no_file_shows_is_a_note(tree, capsys):
    _record(tree, "study_c", "0.1")
    assert _cli(tree) == 0
    out = capsys.readouterr().out
    assert "study_c has no README block" in out
    assert "study_a has no" not in out and "study_b has no" not in out


def test_a_bad_marker_names_its_file(tree, capsys):
    (tree / "docs" / "more.md").write_text("<!-- results:study_a -->\n")
    before = (tree / "README.md").read_text()
    assert _cli(tree) == 2
    err = capsys.readouterr().err
    assert "docs/more.md: results:study_a is never closed" in err and err.count("\n") == 1
    assert (tree / "README.md").read_text() == before  # nothing written


def test_a_missing_record_names_its_file(tree, capsys):
    (tree / "docs" / "more.md").write_text(_block("gone"))
    assert _cli(tree, "--check") == 2
    err = capsys.readouterr().err
    assert "docs/more.md: results:gone: " in err and err.count("\n") == 1


def test_a_record_file_changed_after_publishing_fails_the_check(tree, capsys):
    assert _cli(tree) == 0
    capsys.readouterr()
    (tree / "results" / "study_a" / "readme.md").write_text("| a | 0.99 |\n")  # tampered
    assert _cli(tree, "--check") == 2
    err = capsys.readouterr().err
    assert "results/study_a/readme.md: sha256 differs from the one provenance.json lists" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("wall_time_sec", "61 s", "wall_time_sec is str, expected int or float"),
        ("files", ["readme.md"], "files is list, expected dict"),
        ("git", "abc", "git is str, expected dict or null"),
        ("training", 5, "training is int, expected dict or null"),
        ("training", {"programs": "2"}, "training {'programs': '2'} needs an integer programs"),
        ("load_average", {"at_publish": "high"}, "load_average.at_publish 'high'"),
        ("files", {"../../x": {"sha256": "0"}}, "files entry '../../x' is malformed"),
    ],
)
def test_wrong_types_in_provenance_json_are_one_line(tree, capsys, field, value, expected):
    path = tree / "results" / "study_a" / "provenance.json"
    prov = json.loads(path.read_text())
    path.write_text(json.dumps(dict(prov, **{field: value})))
    assert _cli(tree, "--check") == 2
    err = capsys.readouterr().err
    assert f"provenance.json: {expected}" in err and err.count("\n") == 1


def test_readme_option_restricts_to_one_file(tree):
    assert (
        readme_blocks.main(["--readme", str(tree / "docs" / "guide.md"), "--root", str(tree)]) == 0
    )
    assert "hand typed" in (tree / "README.md").read_text()
    assert "| a | 0.8 |" in (tree / "docs" / "guide.md").read_text()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_in_a_git_tree_the_files_git_lists(tree, capsys):
    """Tracked and untracked files are covered; ignored ones are not."""
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    (tree / ".gitignore").write_text("ignored/\n")
    (tree / "ignored").mkdir()
    (tree / "ignored" / "notes.md").write_text(_block("missing_study"))
    subprocess.run(["git", "-C", str(tree), "add", "README.md"], check=True)
    assert readme_blocks.markdown_files(tree, tree / "results") == [
        tree / "README.md",
        tree / "docs" / "guide.md",
    ]
    assert _cli(tree) == 0 and _cli(tree, "--check") == 0


def _findings_rows(readme: str) -> list[tuple[str, str]]:
    """(study, headline verdict) of each row of the README's findings table."""
    section = readme.split("## Findings at a glance", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
    return [(cells[0].strip("| `"), cells[2]) for cells in rows]


def test_every_number_in_the_findings_table_is_in_its_record():
    # The headline table is written by hand; each of its numbers must be one of the record's.
    root = record.repo_root()
    rows = _findings_rows((root / "README.md").read_text(encoding="utf-8"))
    studies = {p.parent.name for p in (root / "results").glob(f"*/{record.README_PART}")}
    assert {study for study, _ in rows} == studies  # one row per study of record
    for study, headline in rows:
        text = (root / "results" / study / record.README_PART).read_text(encoding="utf-8")
        numbers = re.findall(r"[+−-]?\d+(?:\.\d+)?", headline)
        missing = [n for n in numbers if n.replace("−", "-") not in text.replace("−", "-")]
        assert numbers and not missing, f"{study}: {missing} not in its record"


def test_the_footer_names_the_latest_reanalysis():
    """A record re-judged after publishing says so, with the code revision that re-judged it."""
    prov = {
        "date_utc": "2026-12-02T10:00:00Z", "git": {"revision": "a" * 40, "dirty": False},
        "wall_time_sec": 61, "command": "python -m experiments.x", "cwd": ".",
        "reanalyses": [
            {"date_utc": "2026-12-05T00:00:00Z", "git": {"revision": "b" * 40, "dirty": True},
             "command": "old"},
            {"date_utc": "2026-12-06T05:00:00Z", "git": {"revision": "c" * 40, "dirty": False},
             "command": "python -m experiments.x.reanalyse"},
        ],
    }  # fmt: skip
    line = readme_blocks.footer("x", prov)
    assert line.endswith(
        "; re-judged 2026-12-06 (git cccccccccc, `python -m experiments.x.reanalyse`)</sub>"
    )
    assert "re-judged" not in readme_blocks.footer("x", {**prov, "reanalyses": []})
