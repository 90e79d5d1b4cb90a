"""'SYMMETRIC' padding equals PyTorch's: Conv2d(padding=(k - 1) // 2), MaxPool2d / AvgPool2d
(padding=(k - 1) // 2) and antialiased-cnns' MaxBlurPool, on even and odd maps.

XLA's 'SAME' pads a stride-2 3x3 window on an even map by (0, 1), PyTorch's padding=1 by
(1, 1): the two see different pixels (Kayhan & van Gemert 2020's S-Conv is PyTorch's).
Skipped when PyTorch is absent (a benchmark-only extra: `pip install torch==2.13.0`).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cnn_jax.nn import pooling  # noqa: E402
from cnn_jax.nn.layers import Pool  # noqa: E402
from cnn_jax.nn.model_spec import BlockSpec  # noqa: E402
from cnn_jax.nn.models import ConvBlock  # noqa: E402

SIZES = (8, 7)  # an even and an odd map
F = torch.nn.functional


def _nchw(x_bhwc: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(x_bhwc.transpose(0, 3, 1, 2)))


def _bhwc(y_nchw) -> np.ndarray:
    return y_nchw.detach().numpy().transpose(0, 2, 3, 1)


def _conv_ours(x: np.ndarray, k: int, stride: int, dilation: int, padding: str):
    block = BlockSpec(4, k, stride, padding, dilation, activation="identity")
    module = ConvBlock(block)
    variables = module.init(jax.random.key(0), x, train=False)
    _, inter = module.apply(variables, x, train=False)
    return np.asarray(inter["conv"]), variables["params"]["conv"]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k,stride,dilation", [(3, 2, 1), (5, 2, 1), (3, 1, 2), (3, 2, 2)])
def test_symmetric_conv_equals_torch_padding(size, k, stride, dilation):
    x = np.random.default_rng(size).normal(size=(2, size, size + 2, 3)).astype(np.float32)
    got, params = _conv_ours(x, k, stride, dilation, "SYMMETRIC")
    conv = torch.nn.Conv2d(3, 4, k, stride, padding=(k - 1) * dilation // 2, dilation=dilation)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.array(params["kernel"]).transpose(3, 2, 0, 1).copy()))
        conv.bias.copy_(torch.from_numpy(np.array(params["bias"])))
    want = _bhwc(conv(_nchw(x)))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    same, _ = _conv_ours(x, k, stride, dilation, "SAME")
    if stride == 2 and size % 2 == 0:  # XLA's SAME: another geometry on even maps
        assert same.shape == got.shape and not np.allclose(same, got, atol=1e-3)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "kind,window,stride",
    [("max", 3, 2), ("avg", 3, 2), ("max", 2, 2), ("avg", 2, 2), ("max", 3, 1)],
)
def test_symmetric_pool_equals_torch_pool(size, kind, window, stride):
    x = np.random.default_rng(size).normal(size=(2, size, size + 1, 3)).astype(np.float32)
    got = np.asarray(Pool(kind, window, stride, "SYMMETRIC").apply({}, x))
    torch_pool = torch.nn.MaxPool2d if kind == "max" else torch.nn.AvgPool2d
    want = _bhwc(torch_pool(window, stride, padding=(window - 1) // 2)(_nchw(x)))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _torch_blurpool(x_nchw, size: int, stride: int = 2):
    """antialiased-cnns' BlurPool (blurpool.py): reflect pad [(f-1)//2, ceil((f-1)/2)],
    depthwise binomial filter, stride 2."""
    before, after = pooling.blurpool_pads(size)
    filt = torch.from_numpy(pooling.binomial_filter(size))[None, None]
    c = x_nchw.shape[1]
    padded = F.pad(x_nchw, (before, after, before, after), mode="reflect")
    return F.conv2d(padded, filt.repeat(c, 1, 1, 1), stride=stride, groups=c)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("blur", [2, 3, 5])
def test_max_blur_pool_equals_antialiased_cnns(size, blur):
    """Zhang 2019's MaxBlurPool as antialiased-cnns builds it: MaxPool2d(2, stride=1) (no
    padding), then BlurPool(stride=2); ours with pool_padding 'SYMMETRIC' (and 'VALID')."""
    x = np.random.default_rng(blur).normal(size=(2, size, size, 3)).astype(np.float32)
    want = _bhwc(_torch_blurpool(torch.nn.MaxPool2d(2, stride=1)(_nchw(x)), blur))
    for padding in ("SYMMETRIC", "VALID"):
        got = np.asarray(Pool("max_blur", 2, 2, padding, blur).apply({}, x))
        assert got.shape == want.shape, padding
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
