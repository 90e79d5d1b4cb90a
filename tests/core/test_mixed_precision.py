"""bfloat16 mixed precision: bf16 computation, float32 parameters, loss and updates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.nn.model_spec import lenet5, resnet_small
from cnn_jax.nn.models import CNN, init_variables
from cnn_jax.train import train_and_evaluate
from experiments.configs import smoke


@pytest.mark.parametrize("preset, shape", [(lenet5, (16, 16, 1)), (resnet_small, (16, 16, 3))])
def test_bf16_computes_in_bf16_with_float32_params_and_logits(preset, shape):
    spec32 = preset()
    spec16 = dataclasses.replace(spec32, compute_dtype="bfloat16")
    variables = init_variables(CNN(spec16), jax.random.key(0), shape)
    assert {x.dtype for x in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}

    x_bhwc = jax.random.normal(jax.random.key(1), (4, *shape))
    logits16, inter16 = CNN(spec16).apply(variables, x_bhwc, train=False)
    logits32, inter32 = CNN(spec32).apply(variables, x_bhwc, train=False)
    assert logits16.dtype == jnp.float32
    assert inter16["logits"].dtype == jnp.bfloat16
    conv = next(k for k in inter16 if k.startswith("block0/conv"))
    assert inter16[conv].dtype == jnp.bfloat16 and inter32[conv].dtype == jnp.float32
    # Same parameters, bf16 rounding only: close, but not equal.
    scale = float(jnp.max(jnp.abs(logits32)))
    assert float(jnp.max(jnp.abs(logits16 - logits32))) < 0.05 * scale
    assert not np.array_equal(np.asarray(logits16), np.asarray(logits32))

    def loss(params, spec):
        logits, _ = CNN(spec).apply({**variables, "params": params}, x_bhwc, train=False)
        return jnp.mean(logits**2)

    grads = jax.grad(loss)(variables["params"], spec16)
    assert {g.dtype for g in jax.tree.leaves(grads)} == {jnp.dtype(jnp.float32)}


def test_bf16_run_trains_and_shares_the_checkpoint_fingerprint(tmp_path: Path, data_dir: Path):
    config = smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    config.model.compute_dtype = "bfloat16"
    results = train_and_evaluate(config, tmp_path / "bf16")
    assert results["test_accuracy"] > 0.5  # 2 epochs of lenet5: it learns in bf16 too

    from cnn_jax.run_setup import build

    fp16 = build(config).fingerprint()
    config.model.compute_dtype = "float32"
    assert build(config).fingerprint() == fp16  # params are float32 either way
