"""What each variant of the regularizer study is: config overrides at a strength and a learning
rate, the compute-matched architecture controls, and the optimizer-family controls.

Strength conventions (one number per regularizer, so a grid is a tuple of floats):
- dropout r: head rate r, conv-block rate r / 2 (Srivastava et al. 2014 use 0.5 hidden).
- weight_decay w: decoupled (Loshchilov & Hutter 2019): each step shrinks kernels by lr * w.
- l1 / l2 c: c * sum|w| / c * sum w^2 added to the loss (kernels only).
- augment a: a multiple of `experiment.augment` (rotation and scale range x a, crop padding
  round(P * a)).
- noise s: Gaussian std s on the (normalised) input and on every conv block's output.
- max_norm c: every unit's incoming kernel vector projected onto the L2 ball of radius c.
- batch_norm, pooling, strided_wide: no strength (only the learning rate is tuned).
`all` is every tunable regularizer of `experiment.all_components` at its own chosen strength
times one joint factor (see `all_overrides`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import ml_collections

from cnn_jax.config.checks import check_choice
from cnn_jax.nn import model_spec

from ..config_cli import with_dotted

REGULARIZERS: dict[str, str] = {
    "baseline": "no regularizer (strided convs, no pooling, no decay)",
    "dropout": "dropout in the head (rate r) and after conv blocks (r/2)",
    "weight_decay": "decoupled weight decay on kernels",
    "l1": "L1 penalty in the loss (kernels)",
    "l2": "L2 penalty in the loss (kernels)",
    "augment": "random rotation, scaling and crop-with-padding",
    "noise": "Gaussian noise on inputs and hidden activations",
    "max_norm": "max-norm constraint on each unit's incoming weights",
    "batch_norm": "batch normalization after every conv",
    "pooling": "2x2 max pooling after stride-1 convs (same parameters as baseline)",
    "strided_wide": "strided convs widened to the pooling variant's FLOPs",
    "dropout_l2": "dropout (r) plus L2 (experiment.pair_strength.l2)",
    "dropout_max_norm": "dropout (r) plus max-norm (experiment.pair_strength.max_norm)",
    "all": "the components of experiment.all_components together",
}
# Legend words for `describe` (REGULARIZERS says how each is applied).
SHORT: dict[str, str] = {
    "baseline": "no regularizer",
    "dropout": "dropout",
    "weight_decay": "weight decay",
    "l1": "L1 penalty",
    "l2": "L2 penalty",
    "augment": "augmentation",
    "noise": "input and hidden noise",
    "max_norm": "max-norm",
    "batch_norm": "batch norm",
    "pooling": "max pooling",
    "strided_wide": "wider strided convs",
    "dropout_l2": "dropout + L2",
    "dropout_max_norm": "dropout + max-norm",
    "all": "all regularizers",
}
_OPTIMIZER_WORDS = {"adamw": "AdamW", "momentum": "SGD momentum"}
_NAME = re.compile(r"^(?:([a-z]+)\.)?([a-z0-9_]+?)(?:_s([^_]+))?(?:_x([^_]+))?(?:_lr([^_]+))?$")
NO_STRENGTH = ("baseline", "batch_norm", "pooling", "strided_wide")
OPTIMIZERS = ("adamw", "momentum")  # AdamW, or SGD with (heavy-ball) momentum


def _augment(exp: ml_collections.ConfigDict, a: float) -> dict[str, Any]:
    aug = exp.augment
    half = (aug.scale_max - aug.scale_min) / 2 * a
    return {
        "augment.rotation_degrees": float(aug.rotation_degrees * a),
        "augment.scale_min": float(1.0 - half),
        "augment.scale_max": float(1.0 + half),
        "augment.crop_padding": int(round(aug.crop_padding * a)),
    }


def overrides(name: str, exp: ml_collections.ConfigDict, strength: float | None) -> dict[str, Any]:
    """Dotted config overrides that switch variant `name` on at `strength` (None: no strength)."""
    check_choice("regularizer", name, tuple(REGULARIZERS))
    if (strength is None) != (name in NO_STRENGTH) and name != "all":
        raise ValueError(
            f"strength: {strength!r} for {name!r}; allowed: None for {', '.join(NO_STRENGTH)}, "
            "a number for every other regularizer"
        )
    s = 0.0 if strength is None else float(strength)
    table: dict[str, Any] = {
        "baseline": lambda: {},
        "dropout": lambda: {"model.head_dropout": s, "model.conv_dropout": s / 2},
        "weight_decay": lambda: {"optim.weight_decay": s},
        "l1": lambda: {"optim.l1": s},
        "l2": lambda: {"optim.l2": s},
        "max_norm": lambda: {"optim.max_norm": s},
        "augment": lambda: _augment(exp, s),
        "noise": lambda: {"model.input_noise_std": s, "model.hidden_noise_std": s},
        "batch_norm": lambda: {"model.batch_norm": True},
        "pooling": lambda: {"model.pool": "max", "model.stride": 1},
        "strided_wide": lambda: {"model.blocks": wide_blocks(exp)},
        "dropout_l2": lambda: {**overrides("dropout", exp, s), "optim.l2": exp.pair_strength.l2},
        "dropout_max_norm": lambda: {
            **overrides("dropout", exp, s),
            "optim.max_norm": exp.pair_strength.max_norm,
        },
    }
    if name == "all":
        raise ValueError("regularizer 'all': use all_overrides(exp, chosen, factor)")
    return table[name]()


def all_overrides(
    exp: ml_collections.ConfigDict, chosen: Mapping[str, float | None], factor: float
) -> dict[str, Any]:
    """`all`: each component at its chosen strength x `factor` (the joint scaled grid, so the
    combination is tuned along one axis instead of a product grid), max(1, ...) capped where a
    strength is a probability."""
    out: dict[str, Any] = {}
    for name in exp.all_components:
        strength = chosen.get(name)
        if name in NO_STRENGTH:
            out.update(overrides(name, exp, None))
            continue
        if strength is None:
            raise ValueError(f"experiment.all_components: {name!r} has no chosen strength yet")
        scaled = float(strength) * factor
        if name == "dropout":
            scaled = min(scaled, 0.9)
        out.update(overrides(name, exp, scaled))
    if out.get("optim.l2", 0) and out.get("optim.weight_decay", 0):
        out["optim.allow_l2_with_weight_decay"] = True
    return out


def wide_blocks(exp: ml_collections.ConfigDict) -> list[dict[str, Any]]:
    """The baseline's stride-2 blocks with features x experiment.wide_factor (a list for
    config.model.blocks); `compute_table` reports how close its FLOPs come to pooling's."""
    spec = model_spec.mnist_cnn()
    return [
        {
            "features": int(round(b.features * exp.wide_factor)),
            "kernel_size": b.kernel_size,
            "stride": 2,
        }
        for b in spec.blocks
    ]


def optimizer_overrides(optimizer: str, learning_rate: float) -> dict[str, Any]:
    """The optimizer family of a variant: AdamW, or SGD + momentum 0.9 (no penalty is implied)."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
    out: dict[str, Any] = {"optim.name": optimizer, "optim.learning_rate": float(learning_rate)}
    if optimizer == "momentum":
        out["optim.momentum"] = 0.9
    return out


@dataclasses.dataclass(frozen=True)
class Setting:
    """One trained setting: a regularizer at a strength, an optimizer and a learning rate."""

    regularizer: str
    strength: float | None
    learning_rate: float
    optimizer: str = "adamw"
    factor: float | None = None  # `all` only: the joint factor over the chosen strengths

    @property
    def name(self) -> str:
        """A run-directory name, e.g. 'dropout_s0.4_lr0.003' or 'momentum.l2_s0.0005_lr0.03'."""
        head = (
            self.regularizer
            if self.optimizer == "adamw"
            else f"{self.optimizer}.{self.regularizer}"
        )
        s = "" if self.strength is None else f"_s{self.strength:g}"
        f = "" if self.factor is None else f"_x{self.factor:g}"
        return f"{head}{s}{f}_lr{self.learning_rate:g}"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def setting_config(
    config: ml_collections.ConfigDict,
    setting: Setting,
    chosen: Mapping[str, float | None] | None = None,
) -> ml_collections.ConfigDict:
    """The training config of `setting` (for `all`, `chosen` holds the components' strengths)."""
    exp = config.experiment
    if setting.regularizer == "all":
        dotted = all_overrides(exp, chosen or {}, float(setting.factor or 1.0))
    else:
        dotted = overrides(setting.regularizer, exp, setting.strength)
    dotted.update(optimizer_overrides(setting.optimizer, setting.learning_rate))
    return with_dotted(config, dotted)


def describe(name: str) -> str:
    """One line for a setting or variant name: 'all_x1' -> 'all regularizers, strength x1',
    'momentum.l2_s0.0005_lr0.03' -> 'L2 penalty, strength 0.0005, lr 0.03, SGD momentum'."""
    m = _NAME.match(name)
    if not m or m.group(2) not in SHORT:
        form = "[optimizer.]<regularizer>[_s<strength>][_x<factor>][_lr<lr>]"
        raise ValueError(f"variant: unknown {name!r}; allowed: {form}, regularizers {list(SHORT)}")
    optimizer, regularizer, strength, factor, lr = m.groups()
    parts = [SHORT[regularizer]]
    parts += [f"strength {strength}"] if strength else []
    parts += [f"strength x{factor}"] if factor else []
    parts += [f"lr {lr}"] if lr else []
    parts += [_OPTIMIZER_WORDS.get(optimizer, optimizer)] if optimizer else []
    return ", ".join(parts)
