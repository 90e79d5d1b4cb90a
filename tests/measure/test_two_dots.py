"""The two-dots demonstration: maps, peak counting, and when pooling merges the dots."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from cnn_jax.measure import two_dots
from cnn_jax.nn import pool_kinds

matplotlib.use("Agg")


def test_two_dots_map_and_bad_distance():
    map_hw = two_dots.two_dots_map(8, 3, col=2, row=5)
    assert map_hw.sum() == 2 and map_hw[5, 2] == 1 and map_hw[5, 5] == 1
    with pytest.raises(ValueError, match="distance: dots at columns 6 and 9"):
        two_dots.two_dots_map(8, 3, col=6)


@pytest.mark.parametrize(
    "row,peaks",
    [
        ([0, 1, 0, 1, 0], 2),  # a valley between: two
        ([0, 1, 1, 0, 0], 1),  # shared plateau: one
        ([0, 0.5, 0.25, 0.25, 0], 1),  # a shoulder is not a peak
        ([0, 0.5, 0.1, 0.25, 0], 2),  # a weaker dot behind a valley still counts
        ([0, 0, 0, 0, 0], 0),
    ],
)
def test_count_peaks_by_hand(row, peaks):
    map_hw = np.zeros((3, 5), np.float32)
    map_hw[1] = row
    assert two_dots.count_peaks(map_hw) == peaks


def test_pool_sequence_shapes_and_mass():
    map_hw = two_dots.two_dots_map(16, 5, col=4)
    for kind in two_dots.POOL_KINDS:
        maps = two_dots.pool_sequence(map_hw, kind, levels=3)
        assert [m.shape for m in maps] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    avg = two_dots.pool_sequence(map_hw, "avg", levels=2)
    assert avg[2].sum() == pytest.approx(2 / 16)  # 4x4 average pooling keeps the mean
    maxed = two_dots.pool_sequence(map_hw, "max", levels=1)[1]
    assert maxed.max() == 1.0 and two_dots.count_peaks(maxed) == 2  # columns 2 and 4


def test_max_pooling_merges_dots_after_log2_distance_poolings():
    # Dots 2^k apart land in cells 2^(k-j) apart after j poolings, whatever the phase:
    # a valley remains while that is >= 2, so they merge after exactly k poolings.
    table = two_dots.merge_table([2, 4, 8], kinds=("max", "avg"), levels=4)
    for row in table:
        k = int(np.log2(row["distance"]))
        assert (row["min"], row["max"], row["never"]) == (k, k, 0), row
    # A distance that is not a power of two depends on the phase.
    (odd,) = two_dots.merge_table([3], kinds=("max",), levels=3)
    assert (odd["min"], odd["max"]) == (1, 2)


def test_plot_two_dots_draws_every_level():
    table = two_dots.merge_table([2, 4], kinds=("max", "blur"), levels=3)
    fig = two_dots.plot_two_dots(4, table, kinds=("max", "blur"), size=16, levels=3)
    assert len(fig.axes) == 2 * 4 + 1 + 1  # maps, the merge curves, one colour bar


def test_kinds_and_padding_come_from_the_pool_registry():
    registered = tuple(k for k in pool_kinds.POOL_KINDS if k != "none")
    assert registered == two_dots.POOL_KINDS
    paddings = {kind: two_dots._padding(kind) for kind in two_dots.POOL_KINDS}
    assert paddings == {"max": "VALID", "avg": "VALID", "blur": "SAME", "max_blur": "VALID"}


@pytest.mark.parametrize("kind", ["median", "none", "MAX"])
def test_unknown_or_non_pooling_kind_is_one_line_error(kind):
    map_hw = two_dots.two_dots_map(8, 3, col=2)
    with pytest.raises(ValueError, match=r"^kind: unknown value .*; allowed: max, avg") as err:
        two_dots.pool_sequence(map_hw, kind, levels=1)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="^kind: unknown value"):
        two_dots.merge_table([2], kinds=(kind,), levels=2)
