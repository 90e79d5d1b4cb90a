"""The oneDNN convolution path (cnn_jax.nn.onednn) equals XLA's convolution, values and both
gradients, on every layer shape the presets and studies build and on the edge cases (stride 2,
SAME / VALID / symmetric / asymmetric padding, dilation, groups, odd sizes); it survives jit,
grad and vmap; it switches off and falls back in one line.

Tests that run the library skip where it is not built (`make install` builds it).
"""

from __future__ import annotations

import json
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from cnn_jax.nn import conv_fence, model_spec, models, onednn
from cnn_jax.nn.onednn import build, conv, loader
from tests import naive
from tests.nn import conv_layers

needs_library = pytest.mark.skipif(
    not onednn.available(), reason=f"oneDNN convolutions: {loader.load().detail}"
)
NHWC = ("NHWC", "HWIO", "NHWC")
TOLERANCE = 2e-5  # max |fast - XLA| relative to max |XLA|: float32 sums in another order

# (H, W, C, K, O, stride, padding, dilation, groups): the window cases XLA's layers can take.
EDGE_CASES = [
    (28, 28, 1, 5, 6, 1, "SAME", 1, 1),  # one input channel
    (15, 13, 5, 3, 7, 2, "SAME", 1, 1),  # odd sizes, stride 2, SAME pads (0, 1)
    (15, 13, 5, 3, 7, 2, "VALID", 1, 1),  # a partial window dropped
    (14, 14, 6, 5, 16, 1, ((2, 2), (2, 2)), 1, 1),  # symmetric
    (11, 9, 4, 3, 8, 2, ((1, 2), (0, 3)), 1, 1),  # asymmetric, wider than SAME
    (12, 12, 4, 3, 8, 1, "SAME", 2, 1),  # dilation
    (13, 12, 4, 3, 6, 2, ((3, 1), (2, 2)), 3, 1),  # dilation, stride 2, asymmetric
    (9, 9, 8, 3, 12, 1, "SAME", 1, 4),  # feature groups
    (8, 8, 16, 1, 32, 2, "VALID", 1, 1),  # 1x1 stride-2 shortcut
]


def _random(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def _vjp_outputs(fn, x, kernel, dy):
    y, pullback = jax.vjp(fn, x, kernel)
    return (y, *pullback(dy))


def _assert_close(fast, ref, what):
    for name, a, b in zip(("y", "dx", "dkernel"), fast, ref):
        scale = float(jnp.max(jnp.abs(b))) or 1.0
        err = float(jnp.max(jnp.abs(a - b))) / scale
        assert a.shape == b.shape and err <= TOLERANCE, f"{what} {name}: rel. error {err:.2e}"


def _compare(x, kernel, ref_fn, fast_fn, what):
    y_shape = jax.eval_shape(ref_fn, x, kernel).shape
    dy = _random(y_shape, 7)
    both = jax.jit(lambda *a: (_vjp_outputs(ref_fn, *a), _vjp_outputs(fast_fn, *a)))
    ref, fast = both(x, kernel, dy)
    _assert_close(fast, ref, what)


def _conv_fns(stride, padding, dilation, groups):
    kwargs = dict(
        window_strides=(stride, stride),
        padding=padding,
        rhs_dilation=(dilation, dilation),
        dimension_numbers=NHWC,
        feature_group_count=groups,
    )
    return (
        lambda x, k: lax.conv_general_dilated(x, k, **kwargs),
        lambda x, k: conv.conv_general_dilated(x, k, **kwargs),
    )


@needs_library
@pytest.mark.parametrize("case", EDGE_CASES, ids=str)
def test_forward_and_gradients_equal_xla_on_edge_cases(case):
    h, w, c, k, o, stride, padding, dilation, groups = case
    x, kernel = _random((3, h, w, c), 0), _random((k, k, c // groups, o), 1)
    ref_fn, fast_fn = _conv_fns(stride, padding, dilation, groups)
    lowered = jax.jit(fast_fn).lower(x, kernel).as_text()
    assert loader.FORWARD in lowered  # the case runs on oneDNN, not the fallback
    _compare(x, kernel, ref_fn, fast_fn, str(case))


@needs_library
def test_results_are_deterministic():
    # Chunks of the batch run on XLA's threads in any order; their kernel gradients are summed
    # in chunk order, so reruns agree to the bit.
    x, kernel = _random((64, 12, 12, 8), 8), _random((3, 3, 8, 16), 9)
    _, fast_fn = _conv_fns(1, "SAME", 1, 1)
    grads = jax.jit(jax.grad(lambda x, k: jnp.sum(jnp.sin(fast_fn(x, k))), (0, 1)))
    first = grads(x, kernel)
    for _ in range(3):
        for a, b in zip(grads(x, kernel), first):
            np.testing.assert_array_equal(a, b)


@needs_library
def test_forward_equals_the_numpy_sliding_window():
    x, kernel = _random((2, 9, 11, 3), 2), _random((3, 3, 3, 4), 3)
    _, fast_fn = _conv_fns(2, ((1, 0), (2, 1)), 2, 1)
    got = np.asarray(jax.jit(fast_fn)(x, kernel))
    for i in range(2):
        x_padded = np.pad(np.asarray(x[i]), ((1, 0), (2, 1), (0, 0)))
        want = naive.conv2d(x_padded, np.asarray(kernel), np.zeros(4), stride=2, dilation=2)
        np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-5)


@needs_library
@pytest.mark.slow
def test_every_preset_and_study_layer_equals_xla():
    layers = conv_layers.study_layers()
    assert len(layers) > 50 and None not in {layer.window for layer in layers}
    for layer, where in layers.items():
        x, kernel = _random((3, *layer.in_hwc), 4), _random(layer.kernel, 5)
        fast = lambda x, k, layer=layer: conv.conv(x, k, layer.window)
        ref = lambda x, k, layer=layer: conv_layers.reference(layer, x, k)
        _compare(x, kernel, ref, fast, f"{where}: {layer}")


@needs_library
def test_vmap_folds_a_shared_kernel_and_falls_back_for_a_batched_one():
    x, kernel = _random((2, 3, 10, 10, 4), 6), _random((2, 3, 3, 4, 5), 7)
    ref_fn, fast_fn = _conv_fns(2, "SAME", 1, 1)
    shared = jax.jit(jax.vmap(fast_fn, (0, None)))
    assert loader.FORWARD in shared.lower(x, kernel[0]).as_text()  # folded into the batch
    np.testing.assert_allclose(
        shared(x, kernel[0]), jax.vmap(ref_fn, (0, None))(x, kernel[0]), rtol=1e-5, atol=1e-5
    )
    loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k)))
    for f in (jax.vmap(jax.grad(loss(fast_fn), (0, 1))), jax.grad(loss(jax.vmap(fast_fn)), (0, 1))):
        want = (jax.vmap(jax.grad(loss(ref_fn), (0, 1))))(x, kernel)
        for a, b in zip(jax.jit(f)(x, kernel), want):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@needs_library
def test_the_model_runs_on_onednn_when_enabled_and_on_xla_when_switched_off(monkeypatch):
    spec = model_spec.PRESETS["resnet_small"](num_classes=10)
    x = jnp.zeros((2, 16, 16, 3))

    def lowered() -> str:
        model = models.CNN(spec)
        variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
        return jax.jit(lambda v: model.apply(v, x)[0]).lower(variables).as_text()

    monkeypatch.setattr(onednn, "ENABLED", None)
    monkeypatch.delenv(onednn.ENV, raising=False)
    monkeypatch.delenv(onednn.ENV_ALL, raising=False)
    assert lowered().count(loader.FORWARD) == 9  # 1 stem + 3 x 2 residual + 2 shortcut convs
    monkeypatch.setenv(onednn.ENV, "0")
    assert loader.FORWARD not in lowered()


def test_switches(monkeypatch):
    monkeypatch.setattr(onednn, "ENABLED", None)
    monkeypatch.delenv(onednn.ENV, raising=False)
    monkeypatch.delenv(onednn.ENV_ALL, raising=False)
    assert onednn.wanted()
    for env, value in ((onednn.ENV, "0"), (onednn.ENV_ALL, "off"), (onednn.ENV, "False")):
        monkeypatch.setenv(env, value)
        assert not onednn.wanted()
        monkeypatch.delenv(env)
    monkeypatch.setattr(onednn, "ENABLED", False)
    assert (
        not onednn.wanted() and onednn.select(lax.conv_general_dilated) is lax.conv_general_dilated
    )


def test_several_devices_use_xla(monkeypatch):
    monkeypatch.setattr(onednn, "ENABLED", True)
    monkeypatch.setattr(jax, "device_count", lambda: 2)  # a data-parallel mesh: no gathering
    assert not onednn.enabled()


def test_unavailable_falls_back_to_the_given_convolution_in_one_line(monkeypatch, caplog):
    monkeypatch.setattr(onednn, "ENABLED", True)
    monkeypatch.setattr(loader, "load", lambda: loader.Status(False, "not built (run ...)"))
    onednn._report_unavailable.cache_clear()
    fallback = conv_fence.conv_general_dilated(False)
    with caplog.at_level(logging.WARNING, logger="cnn_jax.nn.onednn"):
        assert onednn.select(fallback) is fallback
        assert onednn.select(fallback) is fallback
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "not built" in lines[0] and "\n" not in lines[0]
    onednn._report_unavailable.cache_clear()


def test_window_of_covers_flax_calls_only():
    x, kernel = jnp.zeros((2, 9, 9, 4)), jnp.zeros((3, 3, 4, 8))
    window = conv.window_of(x, kernel, (2, 2), "SAME", None, (1, 1), NHWC)
    assert window == conv.Window((2, 2), ((1, 1), (1, 1)), (1, 1), 1)
    assert conv.window_of(x, kernel, (1, 1), "SAME", None, (2, 2), NHWC).padding == ((2, 2),) * 2
    rejected = [
        dict(dimension_numbers=None),  # NCHW / OIHW
        dict(dimension_numbers=NHWC, lhs_dilation=(2, 2)),  # transposed convolution
        dict(dimension_numbers=NHWC, batch_group_count=2),
        dict(dimension_numbers=NHWC, preferred_element_type=jnp.bfloat16),
    ]
    for kwargs in rejected:
        assert conv.window_of(x, kernel, (1, 1), "SAME", **kwargs) is None, kwargs
    assert conv.window_of(x, kernel, (1, 1), ((-1, 0), (0, 0)), dimension_numbers=NHWC) is None
    assert conv.window_of(x.astype(jnp.bfloat16), kernel, (1, 1), "SAME", None, None, NHWC) is None
    assert (
        conv.window_of(jnp.zeros((2, 2, 2, 4)), kernel, (1, 1), "VALID", None, None, NHWC) is None
    )
    assert conv.window_of(x, kernel, (1, 1), "SAME", None, None, NHWC, 2) is None  # C != 4 x 2


def test_uncovered_calls_go_to_the_fallback():
    calls = []
    fallback = lambda *a, **k: calls.append(k) or lax.conv_general_dilated(*a, **k)
    x, kernel = jnp.ones((1, 5, 5, 2), jnp.bfloat16), jnp.ones((3, 3, 2, 2), jnp.bfloat16)
    y = conv.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=NHWC, fallback=fallback
    )
    assert len(calls) == 1 and y.dtype == jnp.bfloat16 and float(y[0, 2, 2, 0]) == 18.0


def test_a_missing_or_stale_library_is_one_line_and_never_raises(monkeypatch, tmp_path):
    library = tmp_path / build.LIBRARY
    monkeypatch.setattr(build, "library_path", lambda: library)
    status = loader.load.__wrapped__()
    assert not status.ok and "not built" in status.detail
    library.write_bytes(b"")
    build.stamp_path(library).write_text(json.dumps({**build.expected_stamp(), "jaxlib": "0.0.1"}))
    status = loader.load.__wrapped__()
    assert not status.ok and "stale" in status.detail and "0.0.1" in status.detail
    build.stamp_path(library).write_text(json.dumps(build.expected_stamp()))
    status = loader.load.__wrapped__()
    assert not status.ok and "failed to load" in status.detail


def test_build_without_the_wheels_says_so_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(build, "onednn_library", lambda: None)
    assert build.main() == 1
    out = capsys.readouterr().out.strip()
    assert "\n" not in out and "not built" in out and build.RUNTIME_WHEEL in out
