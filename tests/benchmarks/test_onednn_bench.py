"""The oneDNN benchmark's contender specs and target verdicts (benchmarks/onednn.py)."""

from __future__ import annotations

from benchmarks import onednn, sections
from benchmarks.interleave import Result


def _result(name: str, rates: list[float]) -> Result:
    r = Result(name, 128, 1e6, 1.0, 100.0, rates=rates)
    r.cpu_ratio, r.faults = [2.0] * len(rates), [0.0] * len(rates)
    return r


def test_specs_switch_the_path_and_name_parts_only_when_some_are_left_out() -> None:
    assert onednn._jax("lenet5", 32, True) == {
        "backend": "jax", "preset": "lenet5", "batch": 32, "onednn": True
    }  # fmt: skip
    assert onednn._jax("lenet5", 32, False)["onednn"] is False
    spec = onednn._jax("lenet5", 32, True, ("forward",))
    assert spec["onednn_parts"] == ["forward"]


def test_target_row_compares_the_onednn_row_with_every_other() -> None:
    on = _result(onednn.ON, [140.0, 130.0, 150.0])
    off = _result(onednn.OFF, [100.0] * 3)
    best = _result(sections.TORCH_BEST, [120.0] * 3)
    row = onednn._target_row("resnet_small", 128, [on, off, best], peak=0.2)
    assert row["x XLA convs"] == "1.40 [1.30, 1.50]"
    assert row["torch best eager >= 1.3"] == "missed"  # 140 / 120 = 1.17
    assert row[">= 60% peak"] == "met" and "torch.compile >= 1.3" not in row
    assert onednn._target_row("lenet5", 32, [on, off], peak=0.2)[">= 60% peak"] == "-"
