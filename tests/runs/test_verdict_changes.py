"""cnn_jax.runs.verdict_changes: the cells whose label changed between two records."""

import json

from cnn_jax.runs import verdict_changes


def _claim(text, label, delta, budget_label=None, **extra):
    cell = {"label": label, "estimate": {"delta": delta}, "low": delta - 0.01, "high": delta + 0.01}
    return {"text": text, "a": "blur3", "b": "max", "scale": 100.0, "unit": " pt",
            "budgets": {"1x": cell}, "budget_label": budget_label, **extra}  # fmt: skip


def _record(tmp_path, name, claims, nested=False):
    folder = tmp_path / name
    folder.mkdir()
    results = {"analysis": {"claims": claims}} if nested else {"claims": claims}
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_changed_labels_are_listed_old_to_new_with_their_estimates(tmp_path, capsys):
    old = _record(tmp_path, "old", [_claim("raises consistency", "inconclusive", 0.0068),
                                    _claim("raises accuracy", "held", 0.02),
                                    _claim("gone", "contradicted", -0.05)])  # fmt: skip
    kept = [_claim("raises consistency", "held", 0.005, "consistent"),
            _claim("raises accuracy", "held", 0.019)]  # fmt: skip
    new = _record(tmp_path, "new", kept, nested=True)
    assert verdict_changes.main([str(old), str(new / "results.json")]) == 0
    out = capsys.readouterr().out
    row = "| raises consistency | blur3 - max | - | 1x | inconclusive +0.68 [-0.32, +1.68] pt |"
    assert row + " held +0.50 [-0.50, +1.50] pt |" in out
    assert (
        "| raises consistency | blur3 - max | - | across budgets | (absent) | consistent |" in out
    )
    assert (
        "| gone | blur3 - max | - | 1x | contradicted -5.00 [-6.00, -4.00] pt | (absent) |" in out
    )
    assert "raises accuracy" not in out and out.endswith("3 changed; 1 kept their label.\n")
    assert verdict_changes.main(["--all", str(old), str(new)]) == 0
    assert "| raises accuracy | blur3 - max | - | 1x | held +2.00" in capsys.readouterr().out


def test_a_bad_record_is_one_line(tmp_path, capsys):
    (tmp_path / "results.json").write_text("{}")
    assert verdict_changes.main([str(tmp_path), str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no 'claims' list" in err
    assert verdict_changes.main([str(tmp_path / "nope"), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be read as JSON (FileNotFoundError)" in err
