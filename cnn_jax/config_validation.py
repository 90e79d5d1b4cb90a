"""`validate_config(config)`: checks a whole training config before anything compiles.

A typo or an impossible setting should cost one clear line, not a JAX traceback after the
dataset was prepared and the step compiled. Every failure is a ValueError of the form
`field: bad value; allowed: ...`. The model's shapes are traced block by block with
`jax.eval_shape` (nothing is computed or compiled), so a network whose feature map shrinks
to nothing, or a pooling window larger than its feature map, is reported at its layer.

Experiment-specific settings that the trainer ignores belong under `config.experiment`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from cnn_jax import augment, early_stopping, optim
from cnn_jax.config import grid, launcher, specs
from cnn_jax.config.checks import check_choice, check_int, check_keys, is_int, is_real, plain
from cnn_jax.config.grid import GridSpec
from cnn_jax.nn import pool_kinds
from cnn_jax.nn.layers import ACTIVATIONS, PADDING_MODES, POOLINGS
from cnn_jax.nn.model_spec import (
    COMPUTE_DTYPES,
    MODEL_KEYS,
    BlockSpec,
    ModelSpec,
    spec_from_config,
)
from cnn_jax.nn.models import BLOCK_PARTS, ConvBlock, ResidualBlock
from cnn_jax.system import memory

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
    "extended_from",  # set by the trainer for train.extend_from (cnn_jax.extension)
)
REQUIRED_SECTIONS = ("dataset", "model", "optim", "train")
_MODEL_INTS = ("kernel_size", "stride", "pool_window", "pool_stride", "blur_size", "dilation")
_MODEL_FLOATS = ("conv_dropout", "head_dropout", "hidden_noise_std", "input_noise_std")
_MODEL_STRINGS = {
    "activation": tuple(ACTIVATIONS),
    "pool": POOLINGS,
    "compute_dtype": COMPUTE_DTYPES,
}


def validate_config(config: Any, workdir: str | Path | None = None) -> None:
    """Raises one ValueError (`field: value; allowed: ...`) for the first bad setting found.

    `config` is an ml_collections.ConfigDict (or a plain mapping) laid out as
    experiments/configs/base.py; `workdir`, when given, must not be an existing file.
    """
    cfg = plain(config)
    if not isinstance(cfg, Mapping):
        raise ValueError(f"config: {type(config).__name__} not allowed; allowed: a ConfigDict")
    check_keys("config", cfg, TOP_LEVEL_KEYS)
    for section in REQUIRED_SECTIONS:
        if not isinstance(cfg.get(section), Mapping):
            raise ValueError(f"{section}: {cfg.get(section)!r}; allowed: a config section")
    check_int("seed", cfg.get("seed", 0), minimum=0)
    specs.check_train(cfg["train"])
    _check_seed_range(cfg.get("seed", 0), cfg["train"].get("num_seeds", 1))
    optim.check_optim(cfg["optim"])
    grid_spec = GridSpec.from_config(cfg.get("grid"))
    members = _check_grid(cfg, grid_spec)
    early_stopping.check_early_stopping(cfg.get("early_stopping"))
    augment.check_augment(cfg.get("augment"))
    launcher.check_section(cfg.get("launcher"))
    if workdir is not None:
        check_workdir(workdir)
        if grid_spec is not None:
            num_seeds = int(cfg["train"].get("num_seeds", 1) or 1)
            seeds = grid.member_seeds(grid_spec, cfg.get("seed", 0), num_seeds)
            grid.check_member_dirs(Path(workdir), grid_spec, seeds)
    image_shape, num_classes = _check_dataset(cfg["dataset"])
    spec = _check_model(cfg["model"], num_classes)
    check_spatial_sizes(spec, image_shape)
    subset = (cfg["dataset"].get("options") or {}).get("train_subset")
    train = dict(cfg["train"], num_seeds=members)  # a grid's members are seeds too
    field = "train.num_seeds" if grid_spec is None else "grid.values"
    memory.check(spec, image_shape, train, cfg["dataset"]["name"], subset, members_field=field)


_SEED_LIMIT = 2**32  # seeds are uint32 in the input pipeline and jax.random.key


def _check_seed_range(seed: int, num_seeds: int) -> None:
    """The run's last seed (seed + num_seeds - 1) must fit in 32 bits."""
    if seed + num_seeds - 1 >= _SEED_LIMIT:
        raise ValueError(
            f"seed: {seed} not allowed with train.num_seeds={num_seeds}; allowed: integers "
            f">= 0 with seed + num_seeds - 1 < 2**32 ({_SEED_LIMIT - num_seeds} at most)"
        )


def _check_grid(cfg: Mapping[str, Any], spec: GridSpec | None) -> int:
    """The `grid` section (`cnn_jax.config.grid`) and every grid point's optimizer settings; returns
    how many members the run trains."""
    num_seeds = int(cfg["train"].get("num_seeds", 1) or 1)
    for point in range(spec.size if spec is not None else 0):
        values = {f.split(".", 1)[1]: v for f, v in spec.overrides(point).items()}
        try:
            optim.validate_optim_config(dict(cfg["optim"], **values))
        except ValueError as e:
            raise ValueError(f"grid.values (row {point}): {e}") from None
    return grid.num_members(spec, num_seeds)


def check_workdir(workdir: str | Path) -> None:
    """The workdir (and each existing parent) must be a directory, or not exist yet. Its path
    must be UTF-8 (records and Orbax's metadata hold it), within the file system's name and
    path lengths, and free of symbolic-link loops: each is one line here, before any file in
    it is read or written, instead of a traceback from wherever it is first used."""
    path = Path(workdir)
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"workdir: {str(path)!r} is not UTF-8; allowed: a path of UTF-8 characters"
        ) from None
    for candidate in (path, *path.parents):
        try:
            os.stat(candidate)
        except OSError as e:
            if e.errno in _PATH_FIXES:
                raise ValueError(
                    f"workdir: {_shown(path)}: {e.strerror}; allowed: {_PATH_FIXES[e.errno]}"
                ) from None
        if candidate.exists() and not candidate.is_dir():
            raise ValueError(
                f"workdir: {str(path)!r} cannot be a directory ({candidate} is a file); "
                "allowed: a directory path"
            )


_PATH_FIXES = {
    errno.ENAMETOOLONG: "a shorter path (each name at most 255 bytes, all of it at most 4096)",
    errno.ELOOP: "a path without a symbolic-link loop",
}


def _shown(path: Path, most: int = 120) -> str:
    """A path cut in the middle to `most` characters, for a one-line error."""
    text = str(path)
    return text if len(text) <= most else f"{text[: most // 2]}…{text[-most // 2 :]}"


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


def _check_dataset(cfg: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
    """Name, options and presence of the dataset; returns (image shape, number of classes).

    Cheap: `datasets.check` looks for the files or the prepared copy without reading them.
    """
    specs.check_dataset_fields(cfg, look_up_unknown=True)
    name, given, data_dir = cfg["name"], cfg.get("options") or {}, cfg.get("data_dir")
    spec = specs.dataset_spec(name, data_dir, dict(given))
    shape = tuple(int(d) for d in spec.image_shape)
    expected = cfg.get("image_shape")
    if expected is not None and tuple(expected) != shape:
        raise ValueError(
            f"dataset.image_shape: {list(expected)} does not match the {name!r} images "
            f"{list(shape)}; allowed: {list(shape)} (or change dataset.name / dataset.options)"
        )
    return shape, int(spec.num_classes)


def _check_model(model: Mapping[str, Any], num_classes: int) -> ModelSpec:
    """Types of the override fields, then model_spec's own checks."""
    check_keys("model", model, MODEL_KEYS)
    for key in _MODEL_INTS:
        if model.get(key) is not None and not is_int(model[key]):
            raise ValueError(f"model.{key}: {model[key]!r} not allowed; allowed: integers >= 1")
    for key in _MODEL_FLOATS:
        if model.get(key) is not None and not is_real(model[key]):
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
    if is_int(value):
        return [int(value)]
    return [p for v in value for p in _flat_ints(v)]
