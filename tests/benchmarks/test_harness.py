"""The benchmark harness's ratio arithmetic: per-round ratios, their spread, target verdicts."""

from __future__ import annotations

from benchmarks import sections
from benchmarks.interleave import Result, per_round, ratio, rows, spread


def _result(name: str, rates: list[float]) -> Result:
    r = Result(name, 128, 1e6, 1.0, 100.0, rates=rates)
    r.cpu_ratio, r.faults = [2.0] * len(rates), [0.0] * len(rates)
    return r


def test_ratio_is_median_of_per_round_ratios_with_min_max() -> None:
    a, b = _result("a", [200.0, 100.0, 330.0]), _result("b", [100.0, 100.0, 100.0])
    assert per_round(a, b) == [2.0, 1.0, 3.3]
    assert ratio(a, b) == 2.0  # not 210 / 100 (ratio of medians) nor the mean
    assert spread(a, b) == "2.00 [1.00, 3.30]"
    row = rows([a, b], b, peak_gflops=100.0)[0]
    assert row["x b [min, max]"] == "2.00 [1.00, 3.30]"
    assert row["% peak"] == 100 * a.gflops / 100.0


def test_target_row_verdicts() -> None:
    jax_r = _result("jax run path", [140.0, 120.0, 150.0])
    best = _result(sections.TORCH_BEST, [100.0] * 3)
    compiled = _result(sections.TORCH_COMPILE, [100.0] * 3)
    row = sections._target_row("mnist_cnn", 128, [jax_r, best, compiled], peak=0.2)
    assert row["x torch best eager"] == "1.40 [1.20, 1.50]"
    assert row["torch best eager >= 1.3"] == "met" and row["torch.compile >= 1.3"] == "met"
    assert row[">= 60% peak"] == "met"  # 140 img/s x 1 MFLOP = 0.14 GFLOP/s of 0.2
    slow = _result("jax run path", [120.0, 125.0, 129.0])
    row = sections._target_row("lenet5", 32, [slow, best], peak=None)
    assert row["torch best eager >= 1.3"] == "missed" and ">= 60% peak" not in row


def test_xla_ops_names_kinds_and_output_shapes() -> None:
    from benchmarks import xla_ops

    assert xla_ops._kind("transpose_copy_fusion.11") == "transpose_copy_fusion"
    assert xla_ops._kind("convolution") == "convolution"
    hlo = (
        "  %transpose_copy_fusion.11 = f32[16,32,32,128]{3,2,1,0} fusion(%a), kind=kLoop\n"
        "  ROOT %convolution-base-dilated.3 = f32[128,32,32,16]{3,2,1,0} convolution(%b, %c)\n"
    )
    shapes = xla_ops._shapes(hlo)
    assert shapes["transpose_copy_fusion.11"] == "f32[16,32,32,128]"
    assert shapes["convolution-base-dilated.3"] == "f32[128,32,32,16]"
