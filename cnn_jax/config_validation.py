"""`validate_config(config)`: checks a whole training config before anything compiles.

A typo or an impossible setting should cost one clear line, not a JAX traceback after the
dataset was prepared and the step compiled. Every failure is a ValueError of the form
`field: bad value; allowed: ...`. The model's shapes are traced block by block with
`jax.eval_shape` (nothing is computed or compiled), so a network whose feature map shrinks
to nothing, or a pooling window larger than its feature map, is reported at its layer.

Experiment-specific settings that the trainer ignores belong under `config.experiment`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax import augment, datasets, grid, launch, memory, pool_kinds
from cnn_jax.config_spec import EarlyStoppingSpec
from cnn_jax.datasets import options as dataset_options
from cnn_jax.early_stopping import EarlyStopping
from cnn_jax.grid import GridSpec
from cnn_jax.layers import ACTIVATIONS, PADDING_MODES, POOLINGS, check_choice
from cnn_jax.model_spec import (
    COMPUTE_DTYPES,
    MODEL_KEYS,
    BlockSpec,
    ModelSpec,
    spec_from_config,
)
from cnn_jax.models import BLOCK_PARTS, ConvBlock, ResidualBlock
from cnn_jax.optim import OPTIM_KEYS, validate_optim_config

TOP_LEVEL_KEYS = (
    "seed",
    "dataset",
    "model",
    "optim",
    "train",
    "early_stopping",
    "augment",
    "experiment",
    "launcher",
    "grid",
)
REQUIRED_SECTIONS = ("dataset", "model", "optim", "train")
DATASET_KEYS = ("name", "data_dir", "options", "image_shape")
TRAIN_KEYS = (
    "batch_size",
    "num_epochs",
    "num_seeds",
    "eval_every_epochs",
    "log_every_steps",
    "checkpoint_every_steps",
    "keep_checkpoints",
    "eval_batch_size",
    "eval_train_at_end",
    "tensorboard",
    "quiet",
    "budget_factor",
    "overwrite",
)
EARLY_STOPPING_KEYS = ("enabled", "metric", "patience", "min_delta")
# (key, smallest allowed value, default) of the integer train fields.
_TRAIN_INTS = (
    ("batch_size", 1, None),
    ("num_epochs", 1, None),
    ("num_seeds", 1, 1),
    ("eval_every_epochs", 1, 1),
    ("log_every_steps", 1, 50),
    ("checkpoint_every_steps", 0, 0),
    ("keep_checkpoints", 1, 3),
    ("eval_batch_size", 0, 0),
)
_TRAIN_BOOLS = ("eval_train_at_end", "tensorboard", "quiet", "overwrite")
_MAX_BUDGET_FACTOR = 1000.0
_MODEL_INTS = ("kernel_size", "stride", "pool_window", "pool_stride", "blur_size", "dilation")
_MODEL_FLOATS = ("conv_dropout", "head_dropout", "hidden_noise_std", "input_noise_std")
_MODEL_STRINGS = {
    "activation": tuple(ACTIVATIONS),
    "pool": POOLINGS,
    "compute_dtype": COMPUTE_DTYPES,
}
_OPTIM_STRINGS = ("name", "schedule")
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # the step computes in float32


def validate_config(config: Any, workdir: str | Path | None = None) -> None:
    """Raises one ValueError (`field: value; allowed: ...`) for the first bad setting found.

    `config` is an ml_collections.ConfigDict (or a plain mapping) laid out as
    experiments/configs/base.py; `workdir`, when given, must not be an existing file.
    """
    cfg = _plain(config)
    if not isinstance(cfg, Mapping):
        raise ValueError(f"config: {type(config).__name__} not allowed; allowed: a ConfigDict")
    check_keys("config", cfg, TOP_LEVEL_KEYS)
    for section in REQUIRED_SECTIONS:
        if not isinstance(cfg.get(section), Mapping):
            raise ValueError(f"{section}: {cfg.get(section)!r}; allowed: a config section")
    _check_int("seed", cfg.get("seed", 0), minimum=0)
    _check_train(cfg["train"])
    _check_optim(cfg["optim"])
    members = _check_grid(cfg)
    _check_early_stopping(cfg.get("early_stopping"))
    _check_augment(cfg.get("augment"))
    launch.check_section(cfg.get("launcher"))
    if workdir is not None:
        check_workdir(workdir)
    image_shape, num_classes = _check_dataset(cfg["dataset"])
    spec = _check_model(cfg["model"], num_classes)
    check_spatial_sizes(spec, image_shape)
    subset = (cfg["dataset"].get("options") or {}).get("train_subset")
    train = dict(cfg["train"], num_seeds=members)  # a grid's members are seeds too
    memory.check(spec, image_shape, train, cfg["dataset"]["name"], subset)


def _check_grid(cfg: Mapping[str, Any]) -> int:
    """The `grid` section (`cnn_jax.grid`) and every grid point's optimizer settings; returns
    how many members the run trains."""
    spec = GridSpec.from_config(cfg.get("grid"))
    num_seeds = int(cfg["train"].get("num_seeds", 1) or 1)
    for point in range(spec.size if spec is not None else 0):
        values = {f.split(".", 1)[1]: v for f, v in spec.overrides(point).items()}
        try:
            validate_optim_config(dict(cfg["optim"], **values))
        except ValueError as e:
            raise ValueError(f"grid.values (row {point}): {e}") from None
    return grid.num_members(spec, num_seeds)


def check_keys(section: str, values: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Unknown keys (typos) in one section: one line listing them and the allowed ones."""
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        where = unknown[0] if section == "config" else f"{section}.{unknown[0]}"
        raise ValueError(f"{where}: unknown key {unknown}; allowed: {', '.join(allowed)}")


def check_workdir(workdir: str | Path) -> None:
    """The workdir (and each existing parent) must be a directory, or not exist yet."""
    path = Path(workdir)
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            raise ValueError(
                f"workdir: {str(path)!r} cannot be a directory ({candidate} is a file); "
                "allowed: a directory path"
            )


def check_spatial_sizes(spec: ModelSpec, image_shape: tuple[int, int, int]) -> None:
    """Traces each block with jax.eval_shape; names the first layer whose map is empty."""
    shape = tuple(int(d) for d in image_shape)
    for i, block in enumerate(spec.blocks):
        where = f"model.blocks[{i}]"
        kind = pool_kinds.get(block.pool, f"{where}.pool")
        if kind.uses_blur and not 1 <= block.blur_size <= 7:
            raise ValueError(f"{where}.blur_size: {block.blur_size!r}; allowed: 1..7")
        shapes = _block_shapes(where, block, shape)
        for layer, layer_shape in shapes.items():
            if layer == "pool" and kind.window_must_fit:
                h, w = shapes["act"][:2]  # the pool's input (noise keeps the shape)
                if block.pool_window > min(h, w):
                    raise ValueError(
                        f"{where}.pool_window: {block.pool_window} is larger than the "
                        f"{h}x{w} feature map entering block{i}/pool; allowed: <= {min(h, w)} "
                        "(or fewer pooling blocks, a larger image)"
                    )
            if min(layer_shape[:2]) < 1:
                raise ValueError(
                    f"{where}: spatial size reaches 0 at block{i}/{layer} (input {_hw(shape)}, "
                    f"output {_hw(layer_shape)}; kernel_size={block.kernel_size}, "
                    f"stride={block.stride}, padding={block.padding!r}, pool={block.pool!r}); "
                    f"allowed: layers that keep H, W >= 1 for the {_hw(image_shape)} input "
                    "(fewer blocks or pools, smaller kernels or strides, SAME padding)"
                )
        shape = shapes["output"]


def _block_shapes(
    where: str, block: BlockSpec, in_hwc: tuple[int, ...]
) -> dict[str, tuple[int, ...]]:
    """Shapes (no batch) of a block's layers in order, then its output (abstract pass)."""
    module = ResidualBlock(block) if block.type == "residual" else ConvBlock(block)
    x = jax.ShapeDtypeStruct((1, *in_hwc), jnp.float32)

    def forward(x_bhwc: jax.Array):
        variables = module.init(jax.random.key(0), x_bhwc, train=False)
        return module.apply(variables, x_bhwc, train=False)

    try:
        out, inter = jax.eval_shape(forward, x)
    except Exception as e:  # shape errors surface as many types deep inside JAX/Flax
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{where}: cannot be applied to a {_hw(in_hwc)} feature map ({message[:160]}); "
            "allowed: layers that fit the feature map (smaller kernels/pools, a larger image)"
        ) from None
    # eval_shape returns dicts with sorted keys: put the layers back in forward order.
    names = sorted(inter, key=BLOCK_PARTS.index)
    shapes = {name: tuple(inter[name].shape[1:]) for name in names}
    shapes["output"] = tuple(out.shape[1:])
    return shapes


def _hw(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def _plain(value: Any) -> Any:
    """ConfigDict -> nested dicts (placeholders become None)."""
    return value.to_dict() if hasattr(value, "to_dict") else value


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_int(field: str, value: Any, *, minimum: int) -> None:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{field}: {value!r} not allowed; allowed: integers >= {minimum}")


def _check_train(train: Mapping[str, Any]) -> None:
    check_keys("train", train, TRAIN_KEYS)
    for key, minimum, default in _TRAIN_INTS:
        if default is None and train.get(key) is None:
            raise ValueError(f"train.{key}: missing; allowed: integers >= {minimum}")
        _check_int(f"train.{key}", train.get(key, default), minimum=minimum)
    for key in _TRAIN_BOOLS:
        value = train.get(key, False)
        if not isinstance(value, bool):
            raise ValueError(f"train.{key}: {value!r} not allowed; allowed: True, False")
    factor = train.get("budget_factor", 1.0)
    if not _is_real(factor) or not 0 < factor <= _MAX_BUDGET_FACTOR:
        raise ValueError(
            f"train.budget_factor: {factor!r} not allowed; allowed: a number in "
            f"(0, {_MAX_BUDGET_FACTOR:g}] (1.0: the config's num_epochs, 3.0: three times it)"
        )
    devices = jax.device_count()
    for key in ("batch_size", "eval_batch_size"):
        value = train.get(key) or 0
        if value % devices:
            raise ValueError(
                f"train.{key}: {value} not divisible by the {devices} devices; "
                f"allowed: multiples of {devices}"
            )


def _check_optim(optim: Mapping[str, Any]) -> None:
    check_keys("optim", optim, OPTIM_KEYS)
    for key, value in optim.items():
        if key in _OPTIM_STRINGS or key == "allow_l2_with_weight_decay":
            continue
        if not _is_real(value) or not abs(value) <= _FLOAT32_MAX:  # NaN fails too
            raise ValueError(
                f"optim.{key}: {value!r} not allowed; allowed: a finite float32 number"
            )
    for key in _OPTIM_STRINGS:
        if key in optim and not isinstance(optim[key], str):
            raise ValueError(f"optim.{key}: {optim[key]!r} not allowed; allowed: a name")
    validate_optim_config(optim)
    for key in ("b1", "b2"):
        if key in optim and not 0 <= optim[key] < 1:
            raise ValueError(f"optim.{key}: {optim[key]!r} not allowed; allowed: 0 <= {key} < 1")
    if "eps" in optim and not optim["eps"] > 0:
        raise ValueError(f"optim.eps: {optim['eps']!r} not allowed; allowed: > 0")


def _check_early_stopping(cfg: Mapping[str, Any] | None) -> None:
    if cfg is None:
        return
    if not isinstance(cfg, Mapping):
        raise ValueError(f"early_stopping: {cfg!r}; allowed: a config section")
    check_keys("early_stopping", cfg, EARLY_STOPPING_KEYS)
    if not isinstance(cfg.get("enabled", False), bool):
        raise ValueError(f"early_stopping.enabled: {cfg['enabled']!r}; allowed: True, False")
    _check_int("early_stopping.patience", cfg.get("patience", 5), minimum=1)
    if not _is_real(cfg.get("min_delta", 0.0)):
        raise ValueError(f"early_stopping.min_delta: {cfg['min_delta']!r}; allowed: >= 0")
    defaults = EarlyStoppingSpec()
    EarlyStopping(  # its own checks (metric, min_delta >= 0)
        cfg.get("metric", defaults.metric),
        int(cfg.get("patience", defaults.patience)),
        float(cfg.get("min_delta", defaults.min_delta)),
        num_seeds=1,
    )


def _check_augment(cfg: Mapping[str, Any] | None) -> None:
    if cfg is None:
        return
    if not isinstance(cfg, Mapping):
        raise ValueError(f"augment: {cfg!r}; allowed: a config section")
    check_keys("augment", cfg, augment.AUGMENT_KEYS)
    augment.validate_augment_config(dict(cfg))


def _check_dataset(cfg: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
    """Name, options and presence of the dataset; returns (image shape, number of classes).

    Cheap: `datasets.check` looks for the files or the prepared copy without reading them.
    """
    _check_dataset_fields(cfg, look_up_unknown=True)
    name, given, data_dir = cfg["name"], cfg.get("options") or {}, cfg.get("data_dir")
    spec = _dataset_spec(name, data_dir, dict(given))
    shape = tuple(int(d) for d in spec.image_shape)
    expected = cfg.get("image_shape")
    if expected is not None and tuple(expected) != shape:
        raise ValueError(
            f"dataset.image_shape: {list(expected)} does not match the {name!r} images "
            f"{list(shape)}; allowed: {list(shape)} (or change dataset.name / dataset.options)"
        )
    return shape, int(spec.num_classes)


def _check_dataset_fields(cfg: Mapping[str, Any], *, look_up_unknown: bool = False) -> None:
    """Keys, name, data_dir, image_shape and options of the dataset section, no file read
    (`look_up_unknown`: a name that is not built in must be a TFDS dataset prepared there)."""
    check_keys("dataset", cfg, DATASET_KEYS)
    name, given = cfg.get("name"), cfg.get("options") or {}
    if not isinstance(name, str) or not name:
        raise ValueError(f"dataset.name: {name!r}; allowed: {', '.join(datasets.NAMES)}")
    if not isinstance(given, Mapping):
        raise ValueError(f"dataset.options: {given!r}; allowed: a mapping of options")
    data_dir = cfg.get("data_dir")
    if data_dir is not None and not isinstance(data_dir, str):
        raise ValueError(f"dataset.data_dir: {data_dir!r}; allowed: a directory path")
    shape = cfg.get("image_shape")
    if shape is not None and not (
        isinstance(shape, list | tuple) and all(_is_int(d) and d >= 1 for d in shape)
    ):
        raise ValueError(
            f"dataset.image_shape: {shape!r}; allowed: None or [height, width, channels]"
        )
    if look_up_unknown and name not in datasets.NAMES:  # a prepared TFDS dataset: is it there?
        _dataset_spec(name, data_dir, {})
    allowed = dataset_options.OPTIONS.get(name, dataset_options.OPTIONS[dataset_options.GENERIC])
    check_keys("dataset.options", given, tuple(allowed))
    for key, value in given.items():
        if not allowed[key].valid(value):
            raise ValueError(
                f"dataset.options.{key}: {value!r} not allowed for {name!r}; "
                f"allowed: {allowed[key].allowed}"
            )


class UnknownDatasetError(datasets.DatasetNotFoundError, ValueError):
    """Neither a built-in dataset nor a TFDS dataset prepared in the data dir (a typo, or
    data not prepared here yet): both a missing dataset and a bad config value."""


def _dataset_spec(name: str, data_dir: str | None, given: dict[str, Any]) -> datasets.DatasetSpec:
    """`datasets.check`, with its errors as one line starting with the config field."""
    try:
        return datasets.check(name, data_dir=data_dir, **given)
    except datasets.DatasetNotFoundError as e:
        lines = " ".join(str(e).split())  # the CLI shows one line: keep where and how
        if name not in datasets.NAMES:
            raise UnknownDatasetError(
                f"dataset.name: unknown value {name!r} ({lines}); allowed: "
                f"{', '.join(datasets.NAMES)}, or a TFDS dataset prepared in the data dir"
            ) from None
        raise datasets.DatasetNotFoundError(f"dataset.name: {lines}") from None
    except ValueError as e:  # cross-option checks, e.g. canvas_size < 8 * digit_scale
        raise ValueError(f"dataset.options: {e}") from None


def _check_model(model: Mapping[str, Any], num_classes: int) -> ModelSpec:
    """Types of the override fields, then model_spec's own checks."""
    check_keys("model", model, MODEL_KEYS)
    for key in _MODEL_INTS:
        if model.get(key) is not None and not _is_int(model[key]):
            raise ValueError(f"model.{key}: {model[key]!r} not allowed; allowed: integers >= 1")
    for key in _MODEL_FLOATS:
        if model.get(key) is not None and not _is_real(model[key]):
            raise ValueError(f"model.{key}: {model[key]!r} not allowed; allowed: a number")
    for key, allowed in _MODEL_STRINGS.items():
        if model.get(key) is not None:
            check_choice(f"model.{key}", model[key], allowed)
    if isinstance(model.get("padding"), str):
        check_choice("model.padding", model["padding"].upper(), PADDING_MODES)
    spec = spec_from_config(dict(model), num_classes)
    for i, block in enumerate(spec.blocks):
        for key in ("padding", "pool_padding"):
            value = getattr(block, key)
            if isinstance(value, str):
                check_choice(f"model.blocks[{i}].{key}", value.upper(), PADDING_MODES)
            elif any(p < 0 for p in _flat_ints(value)):
                raise ValueError(
                    f"model.blocks[{i}].{key}: {value!r}; allowed: "
                    f"{', '.join(PADDING_MODES)} or integers >= 0"
                )
    return spec


def _flat_ints(value: Any) -> list[int]:
    if _is_int(value):
        return [int(value)]
    return [p for v in value for p in _flat_ints(v)]
