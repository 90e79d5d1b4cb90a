"""Plain-data descriptions of CNN architectures, named presets, and config -> spec.

A `ModelSpec` is a tuple of blocks plus a head. Keeping it as frozen dataclasses (hashable)
lets Flax modules take it as an attribute and lets experiments build variants with
`dataclasses.replace` instead of editing module code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from cnn_jax.config.checks import check_choice
from cnn_jax.nn import activation_kinds
from cnn_jax.nn.layers import POOLINGS, Padding, canonical_padding

BLOCK_TYPES = ("conv", "residual")
HEAD_KINDS = ("flatten", "global_avg", "global_max")  # global_max: Kayhan & van Gemert 2020


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One conv block: conv -> [batch norm] -> activation -> [noise] -> pool -> [dropout].

    `type='residual'` is a basic ResNet block (two 3x3-style convs with batch norm and an
    identity or 1x1 projection shortcut); it uses features, kernel_size, stride, padding.
    """

    features: int
    kernel_size: int = 3
    stride: int = 1
    padding: Padding = "SAME"
    dilation: int = 1
    activation: str = "relu"
    batch_norm: bool = False
    dropout: float = 0.0
    noise_std: float = 0.0
    pool: str = "none"
    pool_window: int = 2
    pool_stride: int = 2
    pool_padding: Padding = "VALID"
    blur_size: int = 3
    use_bias: bool = True
    type: str = "conv"


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """Classifier head: flatten or global average pool, hidden dense layers, output layer."""

    kind: str = "flatten"
    hidden: tuple[int, ...] = ()
    activation: str = "relu"
    dropout: float = 0.0


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A whole CNN: blocks, head, number of classes, optional input noise."""

    blocks: tuple[BlockSpec, ...]
    head: HeadSpec = HeadSpec()
    num_classes: int = 10
    input_noise_std: float = 0.0
    name: str = "custom"
    compute_dtype: str = "float32"  # "bfloat16": mixed precision, parameters stay float32

    def __post_init__(self) -> None:
        validate_spec(self)


def validate_spec(spec: ModelSpec) -> None:
    """Checks every field; raises one clear ValueError naming the field and allowed values."""
    if not spec.blocks:
        raise ValueError("model.blocks: empty; a CNN needs at least one conv block")
    check_choice("model.compute_dtype", spec.compute_dtype, COMPUTE_DTYPES)
    for i, b in enumerate(spec.blocks):
        where = f"model.blocks[{i}]"
        check_choice(f"{where}.type", b.type, BLOCK_TYPES)
        activation_kinds.get(b.activation, f"{where}.activation")
        check_choice(f"{where}.pool", b.pool, POOLINGS)
        canonical_padding(b.padding)
        canonical_padding(b.pool_padding)
        for name in ("features", "kernel_size", "stride", "dilation", "pool_window", "pool_stride"):
            value = getattr(b, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{where}.{name}: {value!r} not allowed; allowed: integers >= 1")
        if not 0.0 <= b.dropout < 1.0:
            raise ValueError(f"{where}.dropout: {b.dropout} not allowed; allowed: 0 <= rate < 1")
        if b.noise_std < 0:
            raise ValueError(f"{where}.noise_std: {b.noise_std} not allowed; allowed: >= 0")
    check_choice("model.head.kind", spec.head.kind, HEAD_KINDS)
    activation_kinds.get(spec.head.activation, "model.head.activation")
    if not 0.0 <= spec.head.dropout < 1.0:
        raise ValueError(f"model.head.dropout: {spec.head.dropout}; allowed: 0 <= rate < 1")
    if spec.num_classes < 2:
        raise ValueError(f"model.num_classes: {spec.num_classes}; allowed: integers >= 2")
    if spec.input_noise_std < 0:
        raise ValueError(f"model.input_noise_std: {spec.input_noise_std}; allowed: >= 0")


# ----------------------------------------------------------------------------- presets


def seed_example(num_classes: int = 10) -> ModelSpec:
    """The seed notes' example: 10 filters of 5x5x3 on 32x32x3, SAME -> 32x32x10 (760 params)."""
    block = BlockSpec(features=10, kernel_size=5, padding="SAME")
    return ModelSpec((block,), HeadSpec(), num_classes, name="seed_example")


def lenet5(num_classes: int = 10) -> ModelSpec:
    """LeNet-5 (LeCun 1998) for 28x28 inputs: C1 pads 2 so 28 -> 28, as 32 -> 28 in the paper."""
    blocks = (
        BlockSpec(6, 5, padding=2, activation="tanh", pool="avg"),
        BlockSpec(16, 5, padding="VALID", activation="tanh", pool="avg"),
    )
    head = HeadSpec(hidden=(120, 84), activation="tanh")
    return ModelSpec(blocks, head, num_classes, name="lenet5")


def tiny_vgg(num_classes: int = 10) -> ModelSpec:
    """CNN Explainer's Tiny VGG: two (conv-relu-conv-relu-maxpool) stages of 10 3x3 filters."""
    conv = BlockSpec(10, 3, padding="VALID")
    pooled = dataclasses.replace(conv, pool="max")
    return ModelSpec((conv, pooled, conv, pooled), HeadSpec(), num_classes, name="tiny_vgg")


def mnist_cnn(num_classes: int = 10) -> ModelSpec:
    """Flax's MNIST example CNN: conv32-pool-conv64-pool-dense256-dense (3x3, SAME, max pool)."""
    blocks = (BlockSpec(32, 3, pool="max"), BlockSpec(64, 3, pool="max"))
    return ModelSpec(blocks, HeadSpec(hidden=(256,)), num_classes, name="mnist_cnn")


def resnet_small(num_classes: int = 10, blocks_per_stage: int = 1) -> ModelSpec:
    """A small ResNet for 32x32 colour images (He 2016 CIFAR family; ResNet-8 by default)."""
    stem = BlockSpec(16, 3, batch_norm=True)
    blocks = [stem]
    for stage, features in enumerate((16, 32, 64)):
        for i in range(blocks_per_stage):
            stride = 2 if stage > 0 and i == 0 else 1
            blocks.append(BlockSpec(features, 3, stride=stride, batch_norm=True, type="residual"))
    head = HeadSpec(kind="global_avg")
    return ModelSpec(tuple(blocks), head, num_classes, name="resnet_small")


PRESETS: dict[str, Callable[..., ModelSpec]] = {
    "seed_example": seed_example,
    "lenet5": lenet5,
    "tiny_vgg": tiny_vgg,
    "mnist_cnn": mnist_cnn,
    "resnet_small": resnet_small,
}

# Config keys that override one field of every block (None / missing = keep the preset's).
BLOCK_OVERRIDES = (
    "kernel_size",
    "stride",
    "padding",
    "activation",
    "batch_norm",
    "pool",
    "pool_window",
    "pool_stride",
    "blur_size",
    "dilation",
)
COMPUTE_DTYPES = ("float32", "bfloat16")

MODEL_KEYS = (
    "preset",
    "compute_dtype",
    "blocks",
    "head",
    "head_hidden",
    "head_dropout",
    "conv_dropout",
    "hidden_noise_std",
    "input_noise_std",
    "num_classes",
) + BLOCK_OVERRIDES


def spec_from_config(model_cfg: Mapping[str, Any], num_classes: int) -> ModelSpec:
    """Builds a ModelSpec from `config.model`: a preset or an explicit block list, plus overrides.

    `blocks` (a list of BlockSpec field dicts) replaces the preset's blocks; each key of
    BLOCK_OVERRIDES that is set (not None) is applied to every conv block.
    """
    cfg = {k: v for k, v in dict(model_cfg).items() if v is not None}
    unknown = sorted(set(cfg) - set(MODEL_KEYS))
    if unknown:
        raise ValueError(f"model: unknown key(s) {unknown}; allowed: {', '.join(MODEL_KEYS)}")
    preset = check_choice("model.preset", cfg.get("preset", "mnist_cnn"), tuple(PRESETS))
    spec = PRESETS[preset](num_classes=num_classes)
    blocks = spec.blocks
    if "blocks" in cfg:
        blocks = tuple(_block_from_dict(i, dict(b)) for i, b in enumerate(cfg["blocks"]))
    overrides = {k: cfg[k] for k in BLOCK_OVERRIDES if k in cfg}
    if "conv_dropout" in cfg:
        overrides["dropout"] = cfg["conv_dropout"]
    if "hidden_noise_std" in cfg:
        overrides["noise_std"] = cfg["hidden_noise_std"]
    blocks = tuple(dataclasses.replace(b, **_applicable(b, overrides)) for b in blocks)
    head = spec.head
    if "head" in cfg:
        head = dataclasses.replace(head, kind=cfg["head"])
    if "head_hidden" in cfg:
        head = dataclasses.replace(head, hidden=tuple(int(h) for h in cfg["head_hidden"]))
    if "head_dropout" in cfg:
        head = dataclasses.replace(head, dropout=float(cfg["head_dropout"]))
    return ModelSpec(
        blocks=blocks,
        head=head,
        num_classes=int(cfg.get("num_classes", num_classes)),
        input_noise_std=float(cfg.get("input_noise_std", 0.0)),
        name=preset if "blocks" not in cfg else "custom",
        compute_dtype=str(cfg.get("compute_dtype", "float32")),
    )


def _applicable(block: BlockSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides for one block. Pooling overrides leave blocks that had no pool alone."""
    out = dict(overrides)
    if block.pool == "none" and "pool" in out:
        del out["pool"]
    if block.type == "residual":
        out = {k: v for k, v in out.items() if k in ("activation", "padding", "dropout")}
    return out


def _block_from_dict(index: int, fields: dict[str, Any]) -> BlockSpec:
    allowed = {f.name for f in dataclasses.fields(BlockSpec)}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        allowed_text = ", ".join(sorted(allowed))
        where = f"model.blocks[{index}]"
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {allowed_text}")
    if "features" not in fields:
        raise ValueError(f"model.blocks[{index}].features: missing; allowed: integers >= 1")
    return BlockSpec(**fields)
