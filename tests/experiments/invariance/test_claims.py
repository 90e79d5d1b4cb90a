"""The invariance study's claims on the engine: declarations, the fresh path, the re-analysis.

`data/invariance_mnist_v1.json` is the MNIST record of record as first analysed (comparisons
with a fixed 2-point margin, labels compared across budgets), trimmed to what re-analysis reads,
with its `config.experiment`. The margin, identity and interval tests fail on that old logic.
"""

from __future__ import annotations

import json
from pathlib import Path

import ml_collections
import numpy as np
import pytest

from cnn_jax.outputs.claims_report import budget_cell
from cnn_jax.stats.claims import Estimate, Kind
from cnn_jax.stats.crossed import tost_t
from experiments.invariance import reanalyse
from experiments.invariance.claims import declare
from experiments.invariance.evidence import (
    claim_results,
    fresh_evidence,
    judgeable,
    record_evidence,
)

FIXTURE = Path(__file__).parent / "data" / "invariance_mnist_v1.json"


@pytest.fixture(scope="module")
def old():
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def judged(old):
    exp = ml_collections.ConfigDict(old["experiment"])
    declared, _ = judgeable(declare(exp, set(old["results"]["summary"])), old["results"])
    claims = claim_results(record_evidence(declared, old["results"]))
    return {(c["a"], c["b"], c["quantity"]): c for c in claims}


def test_declarations_cover_the_record_once_each(old, judged):
    """Every stored comparison is one (claim, budget), but GAP's levels (an under-fitting net is
    compared on its drop, not its levels); the 3x variants are budgets, not claims."""
    cells = sum(len(c["budgets"]) for c in judged.values())
    gap = [r for r in old["results"]["comparisons"] if r["a"][0] == "gap"]
    assert len(gap) == 2 and cells == len(old["results"]["comparisons"]) - 2 == 27
    assert not any(a == "gap" for a, _, _ in judged)
    assert set(judged[("blur3", "max", "consistency")]["budgets"]) == {"1x", "3x"}
    assert set(judged[("blur2", "max", "consistency")]["budgets"]) == {"1x"}
    azulay = judged[("max", "max_noaug", "p_top1_change")]
    assert azulay["better"] == -1 and azulay["kind"] == "superiority"
    assert azulay["budgets"]["1x"]["margin"] is None  # only Zhang's claims state a margin
    zhang = judged[("blur3", "max", "accuracy_shifted")]["budgets"]["1x"]
    assert zhang["margin_rule"].startswith("20% of b's error 2.3%")
    assert all(not a.endswith("_3x") for a, _, _ in judged)


def test_margin_scales_with_the_baselines_error(judged):
    """Max pooling's shifted error is 2.3%: the 2-point margin called blur2 'equivalent'; 20%
    of 2.3% (0.46 pt) does not, and a variant doubling the error is not 'equivalent' either."""
    v = judged[("blur2", "max", "accuracy_shifted")]["budgets"]["1x"]
    assert v["margin"] == pytest.approx(0.2 * (1 - 0.977))
    assert v["label"] == "inconclusive"  # was 'equivalent'
    exp = ml_collections.ConfigDict({"protocols": ("zhang",), "zhang_variants": ("max", "blur2")})
    claim = declare(exp, {"max", "blur2"})[1][0]
    worse = Estimate(-0.015, 0.001, 499.0, 5, 500, "t", reference_error=0.023)
    assert tost_t(worse.delta, worse.se, worse.df, 0.02) < 0.05  # equivalent under 2 points
    label = claim_results([(claim, {"1x": worse})])[0]["budgets"]["1x"]["label"]
    assert label == "contradicted"


def test_identities_are_exact_not_equivalent(judged):
    """Kayhan's circular / zero-FULL padding: checked to tolerance 0, no p, outside Holm."""
    for v in ("kv_same_circular", "kv_full_zero"):
        c = judged[(f"{v}.similar", f"{v}.dissimilar", "accuracy")]
        cell = c["budgets"]["1x"]
        assert c["kind"] == "exact" and cell["label"] == "exact"  # was 'equivalent', p_TOST 0
        assert cell["p_holm"] is None and cell["tests"] == []
        assert "max abs(a - b) 0.0e+00" in budget_cell(cell) and " p " not in budget_cell(cell)
    tested = sum(len(v["tests"]) for c in judged.values() for v in c["budgets"].values())
    family = next(iter(judged.values()))["budgets"]["1x"]["family_size"]
    margins = sum(v["margin"] is not None for c in judged.values() for v in c["budgets"].values())
    # 25 non-exact cells, 2 directional tests each, 2 more (TOST) for each with a margin
    assert family == tested == 2 * 25 + 2 * margins


def test_simultaneous_interval_agrees_with_the_label(judged):
    """'d2_max - d0: consistency@2 +4.2 [+1.4, +7.0] inconclusive' read as a contradiction;
    its simultaneous (Holm-compatible) interval includes 0, and the table prints it."""
    v = judged[("d2_max", "d0", "consistency@2")]["budgets"]["1x"]
    assert v["label"] == "inconclusive" and v["low"] > 0  # the per-comparison interval
    assert v["sim_low"] < 0 < v["sim_high"]
    assert "[+1.37, +7.03] {-2.12, +10.52}" in budget_cell(v)  # Holm over 78 hypotheses
    for c in judged.values():  # held never beside a simultaneous bound across 0
        for cell in c["budgets"].values():
            if cell["label"] == "held" and c["better"] > 0:
                assert cell["sim_low"] >= 0


def _scores(rng, p, n=(4, 300)):
    return (rng.random(n) < p).astype(float)


def _variant(consistency, shifted, unshifted=None):
    unshifted = np.ones_like(shifted) if unshifted is None else unshifted
    return {"consistency": consistency, "accuracy_shifted": shifted,
            "accuracy_unshifted": unshifted, "drop": unshifted - shifted}  # fmt: skip


def test_fresh_path_tests_the_budget_interaction_on_the_same_runs():
    """Fresh scores keep their paired differences: the 1x / 3x interaction is paired."""
    rng = np.random.default_rng(0)
    base, base3 = _scores(rng, 0.7), _scores(rng, 0.7)
    up = np.maximum(base, _scores(rng, 0.5))
    scores = {
        "max": _variant(base, base),
        "blur3": _variant(up, base.copy()),
        "max_3x": _variant(base3, base3),
        "blur3_3x": _variant(base3.copy(), base3.copy()),
    }
    exp = ml_collections.ConfigDict({"protocols": ("zhang", "budget"), "zhang_variants":
                                     ("max", "blur3")})  # fmt: skip
    claims = {c["quantity"]: c for c in claim_results(fresh_evidence(declare(exp, set(scores)),
                                                                     scores))}  # fmt: skip
    assert list(claims) == ["drop", "consistency", "consistency_both_correct",
                            "accuracy_unshifted", "accuracy_shifted"]  # fmt: skip
    cons, acc = claims["consistency"], claims["accuracy_shifted"]
    assert cons["budgets"]["1x"]["label"] == "held"
    assert cons["budgets"]["3x"]["label"] == "equivalent"  # identical: delta 0, se 0
    assert cons["interactions"][0]["method"].startswith("paired over the same seeds")
    assert cons["budget_label"] == cons["result"] == "budget-dependent"  # a real interaction
    assert acc["result"] == "equivalent" and acc["budget_label"] == "consistent across budgets"
    assert claims["drop"]["better"] == -1 and "invariance" in claims["drop"]["text"]
    assert "accuracy; Zhang 2019" in acc["text"]


def test_drop_is_paired_per_image_and_gap_is_compared_on_drops_only():
    """A net that is less accurate but loses nothing under shift (the under-fitting GAP head):
    its drop is lower, and no claim compares its levels."""
    rng = np.random.default_rng(2)
    unshifted = _scores(rng, 0.99)
    shifted = unshifted * _scores(rng, 0.98)  # max: loses ~2% of its correct images
    weak = _scores(rng, 0.9)
    scores = {"max": _variant(unshifted, shifted, unshifted), "gap": _variant(weak, weak, weak)}
    exp = ml_collections.ConfigDict({"protocols": ("zhang",), "zhang_variants": ("max", "gap")})
    claims = {c["quantity"]: c for c in claim_results(fresh_evidence(declare(exp, set(scores)),
                                                                     scores))}  # fmt: skip
    assert set(claims) == {"drop", "consistency_both_correct"}
    drop = claims["drop"]["budgets"]["1x"]
    want = -(unshifted - shifted).mean()
    assert drop["label"] == "held" and drop["estimate"]["delta"] == pytest.approx(want)


def test_both_correct_keeps_the_images_right_for_both_nets_in_every_seed():
    """A complete seeds x images matrix: an image wrong for either net in any seed is out."""
    from experiments.invariance.analysis import both_correct, pair_scores

    a_ok = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], float)
    b_ok = np.array([[1, 0, 1, 1], [1, 1, 1, 1]], float)
    np.testing.assert_array_equal(both_correct(a_ok, b_ok), [True, False, True, False])
    cons = np.arange(8, dtype=float).reshape(2, 4)
    scores = {"a": {"accuracy_unshifted": a_ok, "consistency": cons},
              "b": {"accuracy_unshifted": b_ok, "consistency": -cons}}  # fmt: skip
    q = "consistency_both_correct"
    a_sn, b_sn = pair_scores(scores, ("a", q), ("b", q))
    np.testing.assert_array_equal(a_sn, [[0, 2], [4, 6]])
    np.testing.assert_array_equal(b_sn, -a_sn)


def test_fresh_identity_is_checked_per_image():
    """An exact claim on fresh scores: max |similar - dissimilar| over every (seed, image)."""
    exp = ml_collections.ConfigDict({"protocols": ("kayhan",),
                                     "kayhan_variants": ("kv_full_zero",)})  # fmt: skip
    ((claim, cells),) = declare(exp, {"kv_full_zero"})
    assert claim.kind is Kind.EXACT
    s = _scores(np.random.default_rng(1), 0.9)
    flipped = s.copy()
    flipped[0, 0] = 1 - flipped[0, 0]
    for other, label in ((s.copy(), "exact"), (flipped, "contradicted")):
        scores = {"kv_full_zero": {"similar": s, "dissimilar": other}}
        [c] = claim_results(fresh_evidence([(claim, cells)], scores))
        assert c["budgets"]["1x"]["label"] == label


def test_reanalyse_rewrites_a_copied_record(old, tmp_path, capsys):
    """results.json keeps every field but comparisons/budget_verdicts; readme.md and provenance
    are rewritten; every label is printed old -> new."""
    folder = tmp_path / "invariance_mnist"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(old["results"]))
    prov = {"config": {"experiment": old["experiment"]}, "files": {}}
    (folder / "provenance.json").write_text(json.dumps(prov))
    assert reanalyse.main(["--record", "invariance_mnist", "--results-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| blur2 - max: accuracy_shifted | 1x | equivalent | inconclusive |" in out
    assert "| strided_blur3 - strided: accuracy_shifted | across | budget-dependent |" in out
    new = json.loads((folder / "results.json").read_text())
    kept = {k: v for k, v in old["results"].items() if k not in ("comparisons", "budget_verdicts")}
    assert {k: v for k, v in new.items() if k != "claims"} == kept
    assert len(new["claims"]) == 23  # GAP's two level claims are no longer declared
    assert "not in this record (rerun the study to judge it): blur3 lowers the accuracy" in out
    readme = (folder / "readme.md").read_text()
    assert "**Claims**" in readme and "Paired comparisons" not in readme
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["reanalyses"][0]["files"] == ["readme.md", "results.json"]
    again = reanalyse.reanalyse("invariance_mnist", tmp_path)  # from the stored claims
    assert all(old_label == new_label for _, _, old_label, new_label, _ in again)
    assert json.loads((folder / "results.json").read_text()) == new


def test_reanalyse_refuses_a_record_judged_from_its_predictions(tmp_path, capsys):
    """A fresh record's interactions pair the budgets on the same images; its stored summaries
    cannot, so the re-analysis says to rerun the study instead of re-judging it worse."""
    folder = tmp_path / "invariance_mnist"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"claims": [], "summary": {}}))
    (folder / "provenance.json").write_text(json.dumps({"config": {"experiment": {}}}))
    assert reanalyse.main(["--record", "invariance_mnist", "--results-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "judged by the study from its per-image predictions; rerun the study" in err
    assert err.count("\n") == 1


def test_learned_claims_compare_each_shift_range_with_none():
    """Training shifts r > 0 against r = 0 per net, at the small and the large test shift
    (beyond r or within it); built-in: each net against max, both trained without shifts."""
    exp = ml_collections.ConfigDict({
        "protocols": ("learned",), "learned_small": 1, "learned_large": 4,
        "learned_variants": ("max_shift0", "max_shift6", "gap_shift0", "gap_shift2"),
    })  # fmt: skip
    declared = declare(exp, set(exp.learned_variants))
    texts = [c.text for c, _ in declared]
    assert texts == [
        "shifts up to 6 px in training raise max's consistency at 1 px (within)",
        "shifts up to 6 px in training raise max's accuracy at 4 px (within)",
        "gap raises consistency at 1 px over max, no shifts in training",
        "shifts up to 2 px in training raise gap's consistency at 1 px (within)",
        "shifts up to 2 px in training raise gap's accuracy at 4 px (beyond)",
    ]
    assert declared[1][1] == {"1x": (("max_shift6", "accuracy@4"), ("max_shift0", "accuracy@4"))}
