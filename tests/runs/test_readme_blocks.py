"""The README's generated result blocks agree with results/ (python -m cnn_jax.runs.readme_blocks)."""

from __future__ import annotations

from cnn_jax.runs import readme_blocks, record


def test_readme_blocks_match_results_of_record(capsys):
    root = record.repo_root()
    status = readme_blocks.main(
        ["--check", "--readme", str(root / "README.md"), "--results", str(root / "results")]
    )
    assert status == 0, capsys.readouterr().err
