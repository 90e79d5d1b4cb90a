"""The README's generated result blocks agree with results/ (python -m cnn_jax.readme_results)."""

from __future__ import annotations

from cnn_jax import readme_results, record


def test_readme_blocks_match_results_of_record(capsys):
    root = record.repo_root()
    status = readme_results.main(
        ["--check", "--readme", str(root / "README.md"), "--results", str(root / "results")]
    )
    assert status == 0, capsys.readouterr().err
