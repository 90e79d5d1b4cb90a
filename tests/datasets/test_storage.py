"""Preparing a dataset in a data dir: what a killed preparation left is cleared."""

from __future__ import annotations

from cnn_jax import datasets


def test_a_preparation_killed_half_way_leaves_nothing_behind(tmp_path):
    options = {"canvas_size": 12}
    datasets.load("digits", data_dir=tmp_path, **options)
    (version,) = list(tmp_path.glob("cnn_jax_digits/*/*"))
    # What a kill during preparation leaves: TFDS's temporary dir, never renamed.
    version.rename(version.with_name(f"incomplete.AB12CD_{version.name}"))
    again = datasets.load("digits", data_dir=tmp_path, **options)
    assert len(again.test) > 0
    assert [p.name for p in version.parent.iterdir()] == [version.name]
