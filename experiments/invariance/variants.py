"""The trained variants of the translation-invariance protocols, as config overrides.

Each variant name maps to one training config built from the study's base config:

- Zhang 2019 ("Making Convolutional Networks Shift-Invariant Again", ICML): the baseline is
  trained with random shift augmentation (Zhang trains on random crops); `max` (max pooling),
  `blur2` / `blur3` / `blur5` (MaxBlurPool with Rect-2, Tri-3, Bin-5), `gap` (global average
  pooling head), `strided` (stride-2 convs, no pooling) and `strided_blur3` (stride-1 conv +
  BlurPool, Zhang's Conv(s2) -> Conv(s1) + BlurPool). The `_noaug` suffix trains without the
  augmentation (Azulay & Weiss 2019 compare both); `_3x` trains with `train.budget_factor` 3.
- The seed's claim ("pooling creates translation invariance only over small distances"):
  `d{0..3}_{max,strided,blur}[_aug]`, three 3x3 conv blocks of `depth_features` filters of
  which the first d downsample (max pool, stride-2 conv, or MaxBlurPool Tri-3), flatten head.
- Learned vs built-in invariance (the seed's "only over small distances"):
  `{max,blur3,gap,strided}_shift{r}`, the Zhang net trained with random shifts up to r px
  (r = 0: none), tested at horizontal shifts beyond r (`experiment.learned_distances`).
- Kayhan & van Gemert 2020 (CVPR, red-green): `kv_valid`, `kv_same_zero`, `kv_same_circular`,
  `kv_full_zero`: their 4-conv net (3x3, no bias, strides 1, 2, 2, 2, channels 32, 32, 64, 64,
  ReLU, global max pool, FC) with V-, S-zero, S-circular and F-zero (pad 2) padding.

Padding geometry (`geometry`): each literature variant pads as the paper's reference code,
PyTorch, does. A stride-2 conv uses 'SYMMETRIC' (PyTorch's padding=1: one pixel on each side;
XLA's 'SAME' pads an even map by (0, 1), below and right only): antialiased-cnns' strided
conv3x3 (resnet.py) and Kayhan's S-conv (red_and_green.py, padding_size 1). At stride 1 a 3x3
'SAME' pads (1, 1) on every map, PyTorch's padding=1 exactly, so those convs are unchanged;
max pooling is MaxPool2d(2, 2) (VALID) and BlurPool pads as antialiased-cnns (blurpool.py).
The depth nets (the seed's claim, no reference code) keep XLA's 'SAME'.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import ml_collections

from cnn_jax.augment import default_augment_config
from cnn_jax.nn.model_spec import spec_from_config

_ZHANG = {
    "max": {"model.pool": "max"},
    "blur2": {"model.pool": "max_blur", "model.blur_size": 2},
    "blur3": {"model.pool": "max_blur", "model.blur_size": 3},
    "blur5": {"model.pool": "max_blur", "model.blur_size": 5},
    "gap": {"model.pool": "max", "model.head": "global_avg"},
    "strided": {"model.pool": "none", "model.stride": 2, "model.padding": "SYMMETRIC"},
    "strided_blur3": {},  # blocks rewritten by _strided_blur
}
KAYHAN_PADDING = {"kv_valid": "VALID", "kv_same_zero": "SYMMETRIC", "kv_same_circular": "CIRCULAR"}
KAYHAN_PADDING["kv_full_zero"] = 2  # F-Conv: pad 2k = 2 zeros for a 3x3 kernel
_CONV_S1 = "conv 3x3/1 pad (1, 1) (SAME = PyTorch padding=1 at stride 1)"
_BLURPOOL = "BlurPool/2 reflect pad as antialiased-cnns"
GEOMETRY = {
    "max": f"{_CONV_S1}; max 2x2/2 VALID (MaxPool2d(2, 2))",
    "blur": f"{_CONV_S1}; max 2x2/1 VALID, {_BLURPOOL} (MaxBlurPool)",
    "gap": f"{_CONV_S1}; max 2x2/2 VALID; global average head",
    "strided": "conv 3x3/2 SYMMETRIC pad (1, 1) (PyTorch padding=1, antialiased-cnns conv3x3)",
    "strided_blur3": f"{_CONV_S1}; {_BLURPOOL} (antialiased-cnns conv3x3 + BlurPool)",
    "kv_valid": "VALID (PyTorch padding=0, their 'valid')",
    "kv_same_zero": "SYMMETRIC zero pad (1, 1) (PyTorch padding=1, their 'sconv')",
    "kv_same_circular": "circular pad (1, 1) (their 'cir' pads 2 circularly)",
    "kv_full_zero": "zero pad (2, 2) (PyTorch padding=2, their 'fconv')",
    "depth": "XLA SAME (a stride-2 conv pads an even map (0, 1)); pools VALID; ours, no reference",
}
DEPTH_KINDS = ("max", "strided", "blur")
_DOWN = {"max": "max-pool", "strided": "stride-2 conv", "blur": "MaxBlurPool", None: "max-pool"}
_ZHANG_WORDS = {
    "max": "max pooling",
    "blur2": "MaxBlurPool Rect-2",
    "blur3": "MaxBlurPool Tri-3",
    "blur5": "MaxBlurPool Bin-5",
    "gap": "max pooling, global-average head",
    "strided": "stride-2 convs, no pooling",
    "strided_blur3": "stride-1 conv + BlurPool Tri-3",
}
_KAYHAN_WORDS = {
    "kv_valid": "VALID padding",
    "kv_same_zero": "zero SAME padding",
    "kv_same_circular": "circular SAME padding",
    "kv_full_zero": "zero FULL padding",
}
_DEPTH = re.compile(r"^d([0-3])(?:_(max|strided|blur))?(_aug)?$")
_ZHANG_NAME = re.compile(r"^(" + "|".join(_ZHANG) + r")(_noaug)?(_3x)?$")
_LEARNED = re.compile(r"^(" + "|".join(_ZHANG) + r")_shift(\d+)$")


def describe(name: str) -> str:
    """One line saying what a variant is (for tables and the notebook)."""
    if name in KAYHAN_PADDING:
        return _KAYHAN_WORDS[name] + " (Kayhan)"
    if m := _DEPTH.match(name):
        depth, kind, aug = m.groups()
        plural = "" if depth == "1" else "s"
        down = "no downsampling" if depth == "0" else f"{depth} {_DOWN[kind]} downsampling{plural}"
        return down + (", shift-augmented" if aug else "")
    if m := _ZHANG_NAME.match(name):
        base, noaug, budget = m.groups()
        out = _ZHANG_WORDS[base] + (", no augmentation" if noaug else ", shift-augmented")
        return out + (", 3x budget" if budget else "")
    if _LEARNED.match(name):
        _, words, shift = learned_net(name)
        trained = f"random shifts up to {shift} px" if shift else "no shift augmentation"
        return f"{words}, trained with {trained}"
    allowed = f"{', '.join(_ZHANG)} (+ _noaug, _3x), <zhang>_shift<r>, d<k>_<kind>, kv_*"
    raise ValueError(f"variant: unknown {name!r}; allowed: {allowed}")


def learned_net(name: str) -> tuple[str, str, int]:
    """A learned-invariance variant as (net, the net in words, training shift range r px)."""
    m = _LEARNED.match(name)
    if m is None:
        raise ValueError(f"variant: {name!r} is no <zhang>_shift<r> learned-invariance variant")
    return m.group(1), _ZHANG_WORDS[m.group(1)], int(m.group(2))


def geometry(name: str) -> str:
    """How the variant pads (`GEOMETRY`), for the tables' geometry column."""
    describe(name)
    if name in KAYHAN_PADDING:
        return GEOMETRY[name]
    if _DEPTH.match(name):
        return GEOMETRY["depth"]
    base = (_ZHANG_NAME.match(name) or _LEARNED.match(name)).group(1)
    return GEOMETRY["blur" if base in ("blur2", "blur3", "blur5") else base]


def training_budget(config: ml_collections.ConfigDict) -> str:
    """'3 epochs' or '3 epochs x 3' (train.budget_factor): what a variant was trained for."""
    epochs = int(config.train.num_epochs)
    factor = float(config.train.get("budget_factor", 1.0) or 1.0)
    unit = "epoch" if epochs == 1 else "epochs"
    return f"{epochs} {unit}" + ("" if factor == 1.0 else f" x {factor:g}")


def _set(config: ml_collections.ConfigDict, path: str, value: Any) -> None:
    section, key = path.split(".")
    config[section][key] = value


def _augment(config: ml_collections.ConfigDict, shift: int) -> None:
    """Random integer shifts in [-shift, shift] per axis, background-filled (a random crop of
    the zero-padded image, as Zhang's crops; exact pixels)."""
    if config.get("augment") is None:
        config.augment = default_augment_config()
    config.augment.crop_padding = int(shift)


def _strided_blur(config: ml_collections.ConfigDict, num_classes: int, blur: int) -> None:
    """Stride-1 conv, then BlurPool with the stride where the preset downsampled."""
    spec = spec_from_config(config.model.to_dict(), num_classes)
    blocks = []
    for b in spec.blocks:
        fields = dataclasses.asdict(b)
        if b.pool != "none" or b.stride > 1:
            fields.update(stride=1, pool="blur", pool_stride=b.stride * b.pool_stride)
            fields.update(pool_padding="SAME", blur_size=blur)
        blocks.append(fields)
    config.model.blocks = blocks


def _zhang_net(config: ml_collections.ConfigDict, base_name: str, num_classes: int) -> None:
    """The layers of Zhang variant `base_name` (`_ZHANG`), and the GAP head's own epochs."""
    for path, value in _ZHANG[base_name].items():
        _set(config, path, value)
    if base_name == "strided_blur3":
        _strided_blur(config, num_classes, 3)
    gap_epochs = config.experiment.get("gap_epochs")
    if base_name == "gap" and gap_epochs:  # trained until it fits (its budget stated)
        config.train.num_epochs = int(gap_epochs)


def _depth_blocks(depth: int, kind: str, features: int) -> list[dict[str, Any]]:
    blocks = []
    for i in range(3):
        block = {"features": features, "kernel_size": 3, "padding": "SAME"}
        if i < depth and kind == "strided":
            block["stride"] = 2
        elif i < depth:
            block.update(pool="max" if kind == "max" else "max_blur", blur_size=3)
        blocks.append(block)
    return blocks


def _kayhan_blocks(padding: Any) -> list[dict[str, Any]]:
    return [
        {"features": f, "kernel_size": 3, "stride": s, "padding": padding, "use_bias": False}
        for f, s in ((32, 1), (32, 2), (64, 2), (64, 2))
    ]


def variant_config(
    base: ml_collections.ConfigDict, name: str, num_classes: int = 10
) -> ml_collections.ConfigDict:
    """The training config of variant `name` (see the module docstring) built from `base`."""
    describe(name)  # one-line error for an unknown name
    exp = base.experiment
    config = base.copy_and_resolve_references()
    config.unlock()
    if name in KAYHAN_PADDING:  # their data and net; Adam here where they use Adadelta
        config.dataset.name = "red_green"
        config.dataset.options = dict(exp.kayhan_dataset_options)
        config.model.preset = "mnist_cnn"
        config.model.blocks = _kayhan_blocks(KAYHAN_PADDING[name])
        config.model.head = "global_max"
        config.model.head_hidden = ()
        config.train.batch_size = int(exp.get("kayhan_batch_size", 200))
        config.train.num_epochs = int(exp.kayhan_epochs)
        return config
    if m := _DEPTH.match(name):
        depth, kind, aug = int(m.group(1)), m.group(2) or "max", m.group(3)
        config.model.blocks = _depth_blocks(depth, kind, int(exp.depth_features))
        config.model.head_hidden = ()
        for key, value in (exp.get("depth_dataset_options") or {}).items():
            config.dataset.options[key] = value  # e.g. a larger black canvas
        if aug:
            _augment(config, exp.augment_shift)
        return config
    if m := _LEARNED.match(name):
        _zhang_net(config, m.group(1), num_classes)
        if int(m.group(2)):
            _augment(config, int(m.group(2)))
        return config
    base_name, noaug, budget = _ZHANG_NAME.match(name).groups()
    _zhang_net(config, base_name, num_classes)
    if not noaug:
        _augment(config, exp.augment_shift)
    if budget:
        config.train.budget_factor = 3.0
    return config
