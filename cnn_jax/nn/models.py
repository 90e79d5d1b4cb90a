"""The CNN: a Flax Linen module built from a `ModelSpec`, returning (logits, intermediates).

Intermediates hold every layer's output by name ('block0/conv', 'block0/act', 'block0', ...,
'head/features', 'logits') so analysis code (invariance, feature maps) never re-implements
the forward pass. Under `jit`, unused intermediates are dead code and cost nothing.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnn_jax.nn import conv_fence, onednn
from cnn_jax.nn.layers import (
    Activation,
    Flatten,
    GaussianNoise,
    GlobalAvgPool,
    GlobalMaxPool,
    Pool,
    conv_padding,
)
from cnn_jax.nn.model_spec import BlockSpec, ModelSpec

Intermediates = dict[str, jax.Array]

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def _conv(
    block: BlockSpec,
    name: str,
    dtype: Any,
    *,
    kernel_size=None,
    stride=None,
    use_bias=None,
    fence: bool = False,
) -> nn.Conv:
    """The block's nn.Conv; `fence`: its input comes from a batch-norm chain (`conv_fence`).
    On CPU the convolution runs on oneDNN when built (`onednn.select`; it needs no fence)."""
    k = block.kernel_size if kernel_size is None else kernel_size
    s = block.stride if stride is None else stride
    return nn.Conv(
        features=block.features,
        kernel_size=(k, k),
        strides=(s, s),
        padding=conv_padding(block.padding, k, block.dilation),
        kernel_dilation=(block.dilation, block.dilation),
        use_bias=block.use_bias if use_bias is None else use_bias,
        dtype=dtype,
        conv_general_dilated=onednn.select(conv_fence.conv_general_dilated(fence)),
        name=name,
    )


def _batch_norm(train: bool, name: str, dtype: Any) -> nn.BatchNorm:
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        dtype=dtype,
        name=name,
    )


def _noise_pool_dropout(b: BlockSpec, x_bhwc: jax.Array, train: bool, inter: Intermediates):
    """The tail every block shares; called inside a compact method, so layers nest there."""
    if b.noise_std > 0:
        x_bhwc = GaussianNoise(b.noise_std, name="noise")(x_bhwc, deterministic=not train)
    if b.pool != "none":
        pool = Pool(b.pool, b.pool_window, b.pool_stride, b.pool_padding, b.blur_size, name="pool")
        x_bhwc = inter["pool"] = pool(x_bhwc)
    if b.dropout > 0:
        x_bhwc = nn.Dropout(b.dropout, name="dropout")(x_bhwc, deterministic=not train)
    return x_bhwc


class ConvBlock(nn.Module):
    """conv -> [batch norm] -> activation -> [noise] -> pool -> [dropout]."""

    spec: BlockSpec
    dtype: Any = jnp.float32  # computation dtype; parameters are always float32
    fence_input: bool = False  # input made by a batch-norm chain (see cnn_jax.nn.conv_fence)

    @nn.compact
    def __call__(self, x_bhwc: jax.Array, *, train: bool) -> tuple[jax.Array, Intermediates]:
        b, inter = self.spec, {}
        use_bias = b.use_bias and not b.batch_norm
        x_bhwc = _conv(b, "conv", self.dtype, use_bias=use_bias, fence=self.fence_input)(x_bhwc)
        inter["conv"] = x_bhwc
        if b.batch_norm:
            x_bhwc = inter["bn"] = _batch_norm(train, "bn", self.dtype)(x_bhwc)
        x_bhwc = inter["act"] = Activation(b.activation, name="act")(x_bhwc)
        return _noise_pool_dropout(b, x_bhwc, train, inter), inter


class ResidualBlock(nn.Module):
    """Basic ResNet block (He 2016): conv-bn-act-conv-bn + shortcut, then act (and pool)."""

    spec: BlockSpec
    dtype: Any = jnp.float32
    fence_input: bool = False

    @nn.compact
    def __call__(self, x_bhwc: jax.Array, *, train: bool) -> tuple[jax.Array, Intermediates]:
        b, inter = self.spec, {}
        fence = self.fence_input
        y = _conv(b, "conv1", self.dtype, use_bias=False, fence=fence)(x_bhwc)
        y = _batch_norm(train, "bn1", self.dtype)(y)
        y = inter["act1"] = Activation(b.activation, name="act1")(y)
        y = _conv(b, "conv2", self.dtype, stride=1, use_bias=False, fence=True)(y)
        y = _batch_norm(train, "bn2", self.dtype)(y)
        shortcut = x_bhwc
        if b.stride != 1 or x_bhwc.shape[-1] != b.features:
            project = _conv(
                b, "shortcut_conv", self.dtype, kernel_size=1, use_bias=False, fence=fence
            )
            shortcut = project(x_bhwc)
            shortcut = _batch_norm(train, "shortcut_bn", self.dtype)(shortcut)
        x_bhwc = inter["act"] = Activation(b.activation, name="act")(y + shortcut)
        return _noise_pool_dropout(b, x_bhwc, train, inter), inter


def _ends_in_batch_norm(block: BlockSpec) -> bool:
    """Whether a block's output is an element-wise chain from batch norm (no pooling after)."""
    return (block.batch_norm or block.type == "residual") and block.pool == "none"


class CNN(nn.Module):
    """A CNN from a ModelSpec. `__call__(x_bhwc, train=...)` -> (logits [B, classes], inter)."""

    spec: ModelSpec

    @nn.compact
    def __call__(
        self, x_bhwc: jax.Array, *, train: bool = False
    ) -> tuple[jax.Array, Intermediates]:
        spec, inter = self.spec, {"input": x_bhwc}
        dtype = jnp.dtype(spec.compute_dtype)
        if spec.input_noise_std > 0:
            noise = GaussianNoise(spec.input_noise_std, name="input_noise")
            x_bhwc = noise(x_bhwc, deterministic=not train)
        for i, block in enumerate(spec.blocks):
            module = ResidualBlock if block.type == "residual" else ConvBlock
            fence = i > 0 and _ends_in_batch_norm(spec.blocks[i - 1])
            layer = module(block, dtype, fence_input=fence, name=f"block{i}")
            x_bhwc, block_inter = layer(x_bhwc, train=train)
            inter.update({f"block{i}/{k}": v for k, v in block_inter.items()})
            inter[f"block{i}"] = x_bhwc
        head = spec.head
        heads = {"global_avg": GlobalAvgPool, "global_max": GlobalMaxPool, "flatten": Flatten}
        names = {"global_avg": "gap", "global_max": "gmp", "flatten": "flatten"}
        x = inter["head/features"] = heads[head.kind](name=names[head.kind])(x_bhwc)
        for j, width in enumerate(head.hidden):
            x = nn.Dense(width, dtype=dtype, name=f"dense{j}")(x)
            x = inter[f"head/dense{j}"] = Activation(head.activation, name=f"dense{j}_act")(x)
            if head.dropout > 0:
                x = nn.Dropout(head.dropout, name=f"dense{j}_dropout")(x, deterministic=not train)
        if head.dropout > 0 and not head.hidden:
            x = nn.Dropout(head.dropout, name="head_dropout")(x, deterministic=not train)
        logits = inter["logits"] = nn.Dense(spec.num_classes, dtype=dtype, name="logits")(x)
        return logits.astype(jnp.float32), inter


# The one forward-order list of a block's parts (plain: conv, bn, act, pool; residual:
# conv1, bn1, act1, ..., act, pool); config validation and summaries use it too.
BLOCK_PARTS = ("conv1", "bn1", "act1", "conv", "bn", "act", "pool")


def forward_order_key(name: str) -> tuple[int, int, int]:
    """Sort key putting intermediate names in forward order.

    Dicts come back from `jit` sorted alphabetically ('block0', 'block0/act', ...,
    'input'); sorting by this key restores 'input', 'block0/conv', ..., 'logits'.
    """
    if name == "input":
        return (0, 0, 0)
    if name.startswith("block"):
        block, _, part = name.partition("/")
        order = BLOCK_PARTS.index(part) if part in BLOCK_PARTS else len(BLOCK_PARTS)
        return (1, int(block.removeprefix("block")), order + (0 if part else 1))
    if name.startswith("head/"):
        part = name.removeprefix("head/")
        return (2, 0 if part == "features" else 1 + int(part.removeprefix("dense")), 0)
    return (3, 0, 0)


def init_variables(model: CNN, rng: jax.Array, input_shape: tuple[int, int, int]) -> dict:
    """Initialises {'params', ['batch_stats']} for one [1, H, W, C] input."""
    dummy = jnp.zeros((1, *input_shape), jnp.float32)
    return dict(model.init({"params": rng}, dummy, train=False))
