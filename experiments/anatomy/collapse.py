"""Linear collapse: without an activation a stack of convolutions is one convolution.

The identity is an exact claim, checked numerically, not tested: (a) random stacks
compose into one conv (`cnn_jax.measure.linear_collapse`) for VALID and CIRCULAR padding, SAME zero
padding differs at the border only; (b) every trained deep linear CNN is collapsed into a
one-conv CNN whose logits must match to 1e-5 (relative to the logit scale). The accuracy of
the deep linear net against a trained single conv and against the same depth with ReLU is
then a statistics question for the claims engine (`experiments.anatomy.claims`): "no better
than one conv" is a non-superiority claim with a margin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cnn_jax.measure import im2col, linear_collapse
from cnn_jax.nn.model_spec import spec_from_config
from cnn_jax.nn.models import CNN
from cnn_jax.runs.load import load_run
from cnn_jax.stats.claims import Claim, Estimate, Kind, Margin
from cnn_jax.steps import normalize

from . import claims

VARIANTS = ("deep_linear", "single_conv", "deep_relu")
TOLERANCE = 1e-5  # max |logit difference| / max(1, max |logit|)


def collapse_blocks(exp: ml_collections.ConfigDict) -> dict[str, list[dict[str, Any]]]:
    """Blocks of the three variants: k x k VALID convs (identity / ReLU) and one big conv."""
    c = exp.collapse
    deep = [
        {"features": int(c.features), "kernel_size": int(c.kernel_size), "padding": "VALID"}
        for _ in range(int(c.depth))
    ]
    composed = int(c.depth) * (int(c.kernel_size) - 1) + 1
    single = {"features": int(c.features), "kernel_size": composed, "padding": "VALID"}
    return {
        "deep_linear": [dict(b, activation="identity") for b in deep],
        "single_conv": [dict(single, activation="identity")],
        "deep_relu": [dict(b, activation="relu") for b in deep],
    }


def collapse_configs(config: ml_collections.ConfigDict) -> dict[str, ml_collections.ConfigDict]:
    """{'collapse_deep_linear': config, ...}: flatten head, no hidden layer (linear end to end)."""
    out = {}
    for name, blocks in collapse_blocks(config.experiment).items():
        cfg = config.copy_and_resolve_references()
        with cfg.unlocked():
            cfg.model.blocks = blocks
            cfg.model.head = "flatten"
            cfg.model.head_hidden = ()
            for key, value in dict(config.experiment.collapse.optim).items():
                cfg.optim[key] = value
        out[f"collapse_{name}"] = cfg
    return out


def random_collapse_check(seed: int = 0) -> dict[str, Any]:
    """Max |stack - composed| on random weights: VALID, CIRCULAR, and SAME (interior, border)."""
    rng = np.random.default_rng(seed)
    channels, kernels, strides = (3, 8, 8, 4), (3, 3, 5), (1, 2, 1)
    stack = [
        linear_collapse.make_layer(rng.normal(size=(k, k, a, b)) / k, rng.normal(size=b), s)
        for k, s, a, b in zip(kernels, strides, channels[:-1], channels[1:])
    ]
    one = linear_collapse.compose(stack)
    same_stack = [linear_collapse.make_layer(s.kernel_hwio, s.bias_o, 1) for s in stack]
    same_one = linear_collapse.compose(same_stack)
    border = (same_one.kernel_size[0] - 1) // 2

    def zero_padded(layer, x_bhwc):  # SAME zero padding, stride 1
        kernel = jnp.asarray(layer.kernel_hwio, jnp.float32)
        return im2col.conv_direct(x_bhwc, kernel, jnp.asarray(layer.bias_o, jnp.float32), 1, "SAME")

    @jax.jit
    def differences(x_bhwc):
        out = {}
        for mode in linear_collapse.MODES:
            a = linear_collapse.apply_stack(stack, x_bhwc, mode)
            b = linear_collapse.apply_conv(one, x_bhwc, mode)
            out[f"max_abs_diff_{mode.lower()}"] = jnp.max(jnp.abs(a - b))
            out["output_scale"] = jnp.max(jnp.abs(a))
        y = x_bhwc
        for layer in same_stack:
            y = zero_padded(layer, y)
        diff = jnp.abs(y - zero_padded(same_one, x_bhwc))
        out["max_abs_diff_same_interior"] = jnp.max(diff[:, border:-border, border:-border])
        out["max_abs_diff_same_overall"] = jnp.max(diff)
        return out

    x_bhwc = jnp.asarray(rng.normal(size=(4, 24, 24, 3)), jnp.float32)
    measured = {k: float(v) for k, v in differences(x_bhwc).items()}
    return {"kernels": list(kernels), "strides": list(strides), "channels": list(channels),
            "composed_kernel": list(one.kernel_size), "composed_stride": one.stride,
            "same_border_width": border, **measured}  # fmt: skip


def trained_collapse_check(run_dir: str | Path, max_images: int = 512) -> dict[str, Any]:
    """Collapses a trained deep linear CNN into one conv layer; compares logits on test images."""
    run = load_run(run_dir)
    params = run.variables["params"]
    one = linear_collapse.compose(linear_collapse.stack_from_params(params, run.spec))
    block = {"features": int(one.kernel_hwio.shape[-1]), "kernel_size": one.kernel_size[0],
             "stride": one.stride, "padding": "VALID", "activation": "identity"}  # fmt: skip
    model_cfg = dict(run.config.model.to_dict(), blocks=[block])
    single_model = CNN(spec_from_config(model_cfg, run.dataset.num_classes))
    conv = {"kernel": jnp.asarray(one.kernel_hwio, jnp.float32),
            "bias": jnp.asarray(one.bias_o, jnp.float32)}  # fmt: skip
    single_params = {"block0": {"conv": conv},
                     **{k: v for k, v in params.items() if not k.startswith("block")}}  # fmt: skip
    images = run.dataset.test.images[:max_images]
    x_bhwc = normalize(jnp.asarray(images), run.dataset.mean, run.dataset.std)
    deep, _ = jax.jit(partial(run.model.apply, train=False))(run.variables, x_bhwc)
    single, _ = jax.jit(partial(single_model.apply, train=False))({"params": single_params}, x_bhwc)
    deep, single = np.asarray(deep), np.asarray(single)
    return {
        "run_dir": str(run_dir),
        "composed_kernel": list(one.kernel_size),
        "max_abs_logit_diff": float(np.max(np.abs(deep - single))),
        "logit_scale": float(np.max(np.abs(deep))),
        "same_prediction_fraction": float(np.mean(deep.argmax(-1) == single.argmax(-1))),
        "images": int(len(images)),
    }


def relative_errors(random_check: Mapping[str, Any], trained: Sequence[Mapping[str, Any]]):
    """Every max |difference| relative to its output scale (at least 1)."""
    scale = max(random_check["output_scale"], 1.0)
    rel = [random_check[f"max_abs_diff_{m.lower()}"] / scale for m in linear_collapse.MODES]
    return rel + [c["max_abs_logit_diff"] / max(c["logit_scale"], 1.0) for c in trained]


IDENTITY = "a stack of convolutions without activation equals one convolution"
MARGIN_FLOOR = 0.005  # half a point: a relative margin never shrinks below it


def budget_of(check: Mapping[str, Any], budgets: Sequence[str]) -> str | None:
    """The budget a trained check belongs to: its 'budget', or the budget folder of its run."""
    if check.get("budget") is not None:
        return str(check["budget"])
    return next((p for p in Path(check["run_dir"]).parts if p in budgets), None)


def _evidence_text(random_check: Mapping[str, Any], trained: Sequence[Mapping[str, Any]]) -> str:
    rc = random_check
    text = (
        f"random stack {rc['kernels']} (strides {rc['strides']}) = one "
        f"{rc['composed_kernel'][0]}x{rc['composed_kernel'][1]} conv, stride "
        f"{rc['composed_stride']}: max |diff| VALID {rc['max_abs_diff_valid']:.1e}, CIRCULAR "
        f"{rc['max_abs_diff_circular']:.1e}; SAME zero padding interior "
        f"{rc['max_abs_diff_same_interior']:.1e}, border {rc['max_abs_diff_same_overall']:.1f} "
        f"(differs there, as the algebra says)"
    )
    if trained:
        text += (
            f"; {len(trained)} trained deep linear CNNs collapsed: max logit difference "
            f"{max(c['max_abs_logit_diff'] for c in trained):.1e}, same prediction on "
            f"{min(c['same_prediction_fraction'] for c in trained):.0%} of test images"
        )
    return text + "; deviation: max |difference| / max(1, output scale)"


def identity_evidence(
    random_check: Mapping[str, Any], trained: Sequence[Mapping[str, Any]], budgets: Sequence[str]
) -> tuple[Claim, dict[str, Estimate]]:
    """The exact claim of linear collapse, its deviation at each budget (random + trained nets).

    Exact, not tested: the composed conv must reproduce its stack's outputs to TOLERANCE
    (relative to the output scale); no p-value, outside the Holm family.
    """
    claim = claims.identity(IDENTITY, "deep linear stack", "composed single conv",
                            _evidence_text(random_check, trained), TOLERANCE)  # fmt: skip
    out = {}
    for budget in budgets:
        mine = [c for c in trained if budget_of(c, budgets) in (budget, None)]
        worst = max(relative_errors(random_check, mine))
        images = min((int(c["images"]) for c in mine), default=1)
        out[budget] = claims.exact_estimate(
            worst, "composed conv vs stack (random and trained weights)", max(len(mine), 1), images
        )
    return claim, out


def deep_linear_margin(exp: ml_collections.ConfigDict, reference_known: bool) -> Margin:
    """How much better a deep linear net may be and still be "no better" than one conv.

    A fraction (experiment.collapse.margin_relative) of the single conv's error when that error
    is known (fresh runs), never below MARGIN_FLOOR; else experiment.collapse.margin, absolute
    (records that kept no per-variant accuracy).
    """
    relative = exp.collapse.get("margin_relative")
    if reference_known and relative:
        return Margin(relative=float(relative), floor=MARGIN_FLOOR)
    return Margin(value=float(exp.collapse.margin))


def declare(exp: ml_collections.ConfigDict, reference_known: bool) -> list[Claim]:
    """The accuracy claims: a deep linear net is no better than one conv; ReLU depth pays.

    "No better" is non-superiority (a deep linear net significantly worse supports it).
    """
    return [
        claims.accuracy(
            "a deep linear CNN is no better than one conv", "collapse_deep_linear",
            "collapse_single_conv", "trained separately, same data and budget",
            kind=Kind.NON_SUPERIORITY, margin=deep_linear_margin(exp, reference_known),
        ),
        claims.accuracy(
            "with a nonlinearity, depth pays (deep ReLU beats deep linear)",
            "collapse_deep_relu", "collapse_deep_linear", "same 3 layers",
        ),
    ]  # fmt: skip
