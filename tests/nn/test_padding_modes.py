"""The 'SYMMETRIC' padding mode (PyTorch's padding=(k - 1) // 2) beside XLA's 'SAME': its
amounts, its reach from configs and the CLI, and every module that computes pads by formula.
The PyTorch equality itself: test_padding_torch_twin.py."""

from __future__ import annotations

import pytest

from cnn_jax.config_validation import validate_config
from cnn_jax.measure.im2col import explicit_pads
from cnn_jax.nn.layers import canonical_padding, conv_padding
from cnn_jax.nn.model_spec import spec_from_config
from cnn_jax.nn.receptive_field import receptive_fields
from experiments.configs import smoke


def test_symmetric_pads_half_the_kernel_on_both_sides():
    assert canonical_padding("symmetric") == "SYMMETRIC"
    assert conv_padding("SYMMETRIC", 3) == ((1, 1), (1, 1))
    assert conv_padding("SYMMETRIC", 5) == ((2, 2), (2, 2))
    assert conv_padding("SYMMETRIC", 3, dilation=2) == ((2, 2), (2, 2))
    assert conv_padding("SYMMETRIC", 1) == ((0, 0), (0, 0))
    assert conv_padding("SAME", 3) == "SAME" and conv_padding(2, 3) == ((2, 2), (2, 2))
    assert explicit_pads((8, 7), (3, 3), 2, "SYMMETRIC") == ((1, 1), (1, 1))
    assert explicit_pads((8, 7), (3, 3), 2, "SAME") == ((0, 1), (1, 1))  # XLA: after only


def test_symmetric_from_a_config_and_in_the_receptive_field():
    """A stride-2 3x3 conv on 28 px: SYMMETRIC pads 1 before (unit 0 centred on pixel 0),
    SAME pads 0 before (centred on pixel 1); the pool's padding field takes it too."""
    pooled = {"features": 4, "pool": "max", "pool_window": 3, "pool_padding": "SYMMETRIC"}
    blocks = [{"features": 4, "stride": 2, "padding": "symmetric"}, pooled]
    spec = spec_from_config({"blocks": blocks}, 10)
    rows = {r.name: r for r in receptive_fields(spec, 28)}
    assert rows["block0/conv"].pad_before == (1, 1) and rows["block0/conv"].start == (0.0, 0.0)
    assert rows["block0/conv"].output_size == (14, 14)
    assert rows["block1/pool"].pad_before == (1, 1) and rows["block1/pool"].output_size == (7, 7)
    same = spec_from_config({"blocks": blocks, "padding": "SAME"}, 10)
    assert {r.name: r for r in receptive_fields(same, 28)}["block0/conv"].start == (1.0, 1.0)


def test_config_validation_takes_symmetric_and_names_it_when_wrong():
    config = smoke.get_config()
    config.model.padding = "SYMMETRIC"
    validate_config(config)
    config.model.padding = "SYMETRIC"
    with pytest.raises(ValueError, match=r"^model.padding: .*SYMMETRIC"):
        validate_config(config)
