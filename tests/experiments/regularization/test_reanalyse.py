"""Re-analysis of a regularizer record with the claims engine, on a copy in tmp_path: the stored
estimates are re-judged, every stored field is kept, the files and provenance are rewritten,
and re-analysing again changes no label."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from experiments.regularization import reanalyse

REPO = Path(__file__).resolve().parents[3]
STUDY = "regularization_fashion_mnist"


def _first_analysis(results: dict) -> dict:
    """The record as its first analysis stored it (comparisons with verdicts, an absolute
    margin), rebuilt from the claims when the record was already re-analysed."""
    a = results["analysis"]
    if "comparisons" in a:
        return results
    keys = ("delta", "se", "df", "n_seeds", "n_images", "method")
    comps = [
        {"kind": c["role"], "a": pair["a"], "b": pair["b"],
         "rows": c["budgets"][b]["estimate"]["extra"].get("rows"),
         "comparison": {k: c["budgets"][b]["estimate"][k] for k in keys},
         "verdict": c["budgets"][b]["label"]}
        for c in a["claims"] for b, pair in c["cells"].items()
    ]  # fmt: skip
    kept = {k: v for k, v in a.items() if k not in ("claims", "counts", "alpha")}
    return dict(results, analysis=dict(kept, comparisons=comps, margin=0.01))


@pytest.fixture
def record(tmp_path):
    root = tmp_path / "results"
    shutil.copytree(REPO / "results" / STUDY, root / STUDY)
    path = root / STUDY / "results.json"
    first = _first_analysis(json.loads(path.read_text()))
    path.write_text(json.dumps(first, indent=2, sort_keys=True) + "\n")
    return root, first


def test_reanalysis_rewrites_the_record_from_its_stored_estimates(record):
    root, first = record
    rows = reanalyse.reanalyse(STUDY, results_root=root)
    out = json.loads((root / STUDY / "results.json").read_text())
    assert set(out) == set(first)  # every stored field kept
    a = out["analysis"]
    assert "comparisons" not in a and "budgets" not in a
    strip = lambda lvs: [{k: v for k, v in lv.items() if k != "stopping"} for lv in lvs]  # noqa: E731
    # kept; converged cells gain (or keep) their stopping epochs
    assert strip(a["levels"]) == strip(first["analysis"]["levels"])
    assert a["margin"] == {"relative": 0.2, "floor": 0.0025}
    stored = {
        (tuple(c["a"]), tuple(c["b"])): c["comparison"] for c in first["analysis"]["comparisons"]
    }
    for c in a["claims"]:
        for b, pair in c["cells"].items():
            assert (
                c["budgets"][b]["estimate"]["delta"]
                == stored[(tuple(pair["a"]), tuple(pair["b"]))]["delta"]
            )
    assert len(rows) == sum(len(c["budgets"]) + (len(c["budgets"]) > 1) for c in a["claims"])
    assert all(r[3] in ("held", "contradicted", "equivalent", "inconclusive",
                        "consistent across budgets", "budget-dependent") for r in rows)  # fmt: skip
    prov = json.loads((root / STUDY / "provenance.json").read_text())
    assert prov["reanalyses"][-1]["files"] == ["readme.md", "results.json", "summary.md"]
    readme = (root / STUDY / "readme.md").read_text()
    assert "| augment helps at n=1000 |" in readme and "across budgets" in readme


def test_reanalysing_a_reanalysed_record_changes_no_label(record):
    root, _ = record
    reanalyse.reanalyse(STUDY, results_root=root)
    again = reanalyse.reanalyse(STUDY, results_root=root)
    assert [r for r in again if r[2] != r[3]] == []


def test_reanalysis_marks_every_converged_claim_resting_on_capped_runs(record):
    """The record's runs stopped at (or near) the epoch cap: each converged claim says so, the
    stopping epochs are tabled per cell, and no converged cell hides a capped run."""
    root, first = record
    reanalyse.reanalyse(STUDY, results_root=root)
    out = json.loads((root / STUDY / "results.json").read_text())
    patience = first["config"]["early_stopping"]["patience"]
    capped_cells = {
        (r["key"].split("/")[1], r["n"], r["mode"])
        for r in first["runs"]
        if r["mode"] == "converged" and r["best_epoch"] + patience > r["epochs_max"]
    }
    assert capped_cells  # the record's weakness this guards against
    for lv in out["analysis"]["levels"]:
        cell = (lv["setting"], lv["n"], lv["mode"])
        if lv["mode"] == "converged":
            assert (lv["stopping"]["capped"] > 0) == (cell in capped_cells)
    for c in out["analysis"]["claims"]:
        pair = c["cells"].get("converged")
        rests = pair and {tuple(pair["a"]), tuple(pair["b"])} & capped_cells
        assert bool(c["capped"]) == bool(rests), c["text"]
        assert ("rests on capped runs" in c["what"]) == bool(rests)
    readme = (root / STUDY / "readme.md").read_text()
    assert "Stopping epochs of the converged runs" in readme and "*" in readme
    assert "rest on capped runs" in readme
