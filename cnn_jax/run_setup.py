"""Config -> everything a run needs (dataset, model, optimizer, compiled steps, initial state).

Shared by the trainer and by `runs.load_run`, so a trained run is rebuilt exactly as it
was trained. With `config.train.num_seeds = K > 1`, states are stacked on a leading seed
axis and the steps are `jax.vmap`-ed: K runs of one config cost one compiled program.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from cnn_jax import augment, datasets, input_pipeline, seed_strategy, steps
from cnn_jax import metrics as declared_metrics
from cnn_jax.augment import AugmentSpec
from cnn_jax.config import grid as grid_members
from cnn_jax.config import specs
from cnn_jax.config.grid import GridSpec
from cnn_jax.config.specs import DatasetSpec, TrainSpec
from cnn_jax.early_stopping import EarlyStoppingSpec
from cnn_jax.nn.model_spec import ModelSpec, spec_from_config
from cnn_jax.nn.models import CNN
from cnn_jax.optim import OptimSpec, make_optimizer
from cnn_jax.system import parallel

FAST_COMPILE = {"xla_backend_optimization_level": 0}


@dataclasses.dataclass
class RunSetup:
    """The pieces of one training run (K seeds when K > 1)."""

    config: ml_collections.ConfigDict
    dataset: datasets.Dataset
    spec: ModelSpec
    model: CNN
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    mesh: Mesh
    seeds: tuple[int, ...]
    steps_per_epoch: int
    train_step: Callable  # jitted (state, batch) -> (state, metric sums)
    eval_step: Callable  # jitted (state, batch) -> (metric sums, per-example top1/p_correct)
    num_epochs: int = 1  # train.num_epochs x train.budget_factor (`budget_epochs`)
    # The typed config sections (each owner's spec), each parsed and checked once by `build`.
    train: TrainSpec | None = None
    dataset_spec: DatasetSpec | None = None
    optim: OptimSpec | None = None
    augment: AugmentSpec | None = None
    early_stopping: EarlyStoppingSpec | None = None
    cost_extra: str = ""  # `seed_strategy.cost_extra` of the config (keys the seed strategy)
    grid: GridSpec | None = None  # hyperparameter grid points as members (`cnn_jax.config.grid`)
    lr_scale: tuple[float, ...] = ()  # per member: its rate / the configured rate (grid)
    _window: Any = dataclasses.field(default=None, repr=False)

    def member_dirs(self, workdir: Path) -> list[Path]:
        """Where each member's metrics, results and predictions go (`grid.member_dirs`)."""
        return grid_members.member_dirs(Path(workdir), self.grid, self.seeds)

    def member_config(self, member: int) -> ml_collections.ConfigDict:
        """The config member `member` trained with (the run's own without a grid)."""
        if self.grid is None:
            return self.config
        return ml_collections.ConfigDict(grid_members.member_config(self.config, member))

    def member_point(self, member: int) -> dict[str, Any]:
        """{'grid_point': {field: value}} of a grid member, for its results; else {}."""
        if self.grid is None:
            return {}
        return {"grid_point": self.grid.overrides(member // self.train.num_seeds)}

    def learning_rates(self, step: int) -> list[float]:
        """The rate each member trained step `step` with (one schedule read for all)."""
        rate = float(self.schedule(step))
        return [rate * scale for scale in self.lr_scale or (1.0,) * self.num_seeds]

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    @property
    def vmapped(self) -> bool:
        return len(self.seeds) > 1

    def fingerprint(self) -> str:
        """Hash of architecture, input shape and seed count: other checkpoints are refused.

        The compute dtype is left out: parameters are float32 either way, so a run may
        resume in the other precision."""
        spec = dataclasses.replace(self.spec, compute_dtype="float32")
        text = json.dumps([repr(spec), list(self.dataset.image_shape), len(self.seeds)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def empty_window(self) -> steps.Metrics:
        """Zero metric sums shaped as the train step's, replicated: a logging window's start
        (checkpointed, so a resumed run's first window sums the same steps). Cached."""
        if self._window is None:
            bs, shape = self.train.batch_size, self.dataset.image_shape
            lead = (self.num_seeds,) if self.vmapped else ()
            batch = {
                "image": jax.ShapeDtypeStruct((*lead, bs, *shape), jnp.uint8),
                "label": jax.ShapeDtypeStruct((*lead, bs), self.dataset.train.labels.dtype),
            }
            create, seeds = self._creator()
            _, metrics = jax.eval_shape(self.train_step, jax.eval_shape(create, seeds), batch)
            window = {k: declared_metrics.empty(k, v.shape, v.dtype) for k, v in metrics.items()}
            self._window = jax.device_put(window, parallel.replicated(self.mesh))
        return self._window

    def _creator(self) -> tuple[Callable, jax.Array]:
        """(seed(s) -> fresh train state(s), the seed array)."""
        shape = self.dataset.image_shape

        def create(seed):
            return steps.create_train_state(self.model, self.tx, jax.random.key(seed), shape)

        seeds = jnp.asarray(self.seeds, jnp.uint32)
        if self.vmapped:
            return jax.vmap(create), seeds
        return create, seeds[0]

    def init_state(self) -> steps.TrainState:
        """Fresh state(s) from the seeds, replicated over the mesh."""
        create, seeds = self._creator()
        # One compiled program instead of dozens of eager ops, placed straight on the mesh.
        # It runs once, so skip XLA's backend optimisation: the threefry-heavy init
        # otherwise takes ~10 s to compile on a CPU and ~2 s without it.
        init = jax.jit(create, out_shardings=parallel.replicated(self.mesh))
        return init.lower(seeds).compile(compiler_options=FAST_COMPILE)(seeds)


def _dataset_spec(config: ml_collections.ConfigDict | DatasetSpec) -> DatasetSpec:
    return config if isinstance(config, DatasetSpec) else DatasetSpec.from_config(config.dataset)


def check_dataset(config: ml_collections.ConfigDict | DatasetSpec) -> Any:
    """`datasets.check` (shape, classes, sizes; nothing loaded) of a spec or a config."""
    data = _dataset_spec(config)
    return datasets.check(data.name, data_dir=data.data_dir, **dict(data.options))


def load_dataset(config: ml_collections.ConfigDict | DatasetSpec) -> datasets.Dataset:
    """The dataset of a `DatasetSpec`, or of a config's raw `dataset` section (parsed here)."""
    data = _dataset_spec(config)
    try:
        return datasets.load(data.name, data_dir=data.data_dir, **dict(data.options))
    except (ValueError, OSError, KeyError):
        raise  # ours name the field or file already; OSErrors carry the file
    except Exception as e:  # TFDS / array_record / protobuf on damaged prepared files
        raise datasets.DatasetIntegrityError(_damaged(data.name, data.data_dir, e)) from e


def _damaged(name: str, data_dir: str | None, error: Exception) -> str:
    """One line naming the damaged prepared copy of `name` and how to rebuild it."""
    root = datasets.resolve_data_dir(data_dir)
    folders = sorted({p.parent for p in root.glob(f"*{name}*/**/dataset_info.json")})
    where = ", ".join(str(f) for f in folders[:2]) or str(root)
    reason = (str(error).splitlines() or [""])[0][:120]
    return (
        f"dataset.name: the prepared files of {name!r} in {where} are damaged "
        f"({type(error).__name__}: {reason}); delete that folder and rerun to prepare it again"
    )


def budget_epochs(train_cfg: Any) -> int:
    """Epochs to train: num_epochs x budget_factor (default 1), rounded half up, at least 1.

    The budget factor scales a study's training budget (1x, 3x) without editing
    its configs; early-stopping patience stays counted in evaluations."""
    return specs.budget_epochs(train_cfg.num_epochs, train_cfg.get("budget_factor", 1.0))


def build(config: ml_collections.ConfigDict, dataset: datasets.Dataset | None = None) -> RunSetup:
    """Builds a RunSetup from a config (loading the dataset unless given).

    Each section is parsed (and checked) once into its typed spec here; everything
    downstream reads the specs, not the ConfigDict."""
    train_cfg = TrainSpec.from_config(config.train)
    dataset_spec = DatasetSpec.from_config(config.dataset)
    optim_spec = OptimSpec.from_config(config.optim)
    augment_spec = AugmentSpec.from_config(config.get("augment"))
    early_spec = EarlyStoppingSpec.from_config(config.get("early_stopping"))
    grid_spec = GridSpec.from_config(config.get("grid"))
    num_seeds = grid_members.num_members(grid_spec, train_cfg.num_seeds)
    mesh = parallel.make_mesh()
    parallel.check_batch_size(train_cfg.batch_size, mesh)
    ds = load_dataset(dataset_spec) if dataset is None else dataset
    spec = spec_from_config(config.model.to_dict(), ds.num_classes)
    model = CNN(spec)
    n_steps = input_pipeline.steps_per_epoch(len(ds.train), train_cfg.batch_size)
    if n_steps == 0:
        raise ValueError(
            f"train.batch_size: {train_cfg.batch_size} exceeds the {len(ds.train)} training "
            "images; allowed: at most the training set size"
        )
    num_epochs = train_cfg.epochs
    cost = seed_strategy.cost_extra(config.optim, config.get("augment"))
    hparams_k, member_tx = {}, None
    if grid_spec is not None:  # grid points as members: their values are traced (grid.py)
        base = {"learning_rate": optim_spec.learning_rate}
        hparams_k = grid_members.member_hparams(grid_spec, train_cfg.num_seeds, base)
        member_tx = lambda h: make_optimizer(optim_spec, n_steps, num_epochs, member=h)[0]  # noqa: E731
    first = {k: float(v[0]) for k, v in hparams_k.items()}  # the state's structure
    tx, schedule = make_optimizer(optim_spec, n_steps, num_epochs, member=first)
    train_step = steps.make_train_step(
        model,
        tx,
        mean=ds.mean,
        std=ds.std,
        l1=optim_spec.l1,
        l2=optim_spec.l2,
        augment_fn=augment.make_augment_fn(augment_spec),
        member_tx=member_tx,
    )
    eval_step = steps.make_eval_step(model, mean=ds.mean, std=ds.std)
    if num_seeds > 1:  # seeds share each eval batch; each seed has its own train batch
        train_step, eval_step = seed_strategy.over_seeds(  # vmap, unrolled or lax.map
            train_step,
            eval_step,
            train=dataclasses.replace(train_cfg, num_seeds=num_seeds),
            cost=cost,
            model=model,
            tx=tx,
            image_shape=ds.image_shape,
        )
        train_step = steps.freeze_diverged(train_step)  # one diverging member stops alone
    if hparams_k:
        train_step = grid_members.with_hparams(train_step, hparams_k)
    train_step, eval_step = steps.compile_steps(train_step, eval_step, mesh)
    seeds = grid_members.member_seeds(grid_spec, int(config.seed), train_cfg.num_seeds)
    return RunSetup(
        config,
        ds,
        spec,
        model,
        tx,
        schedule,
        mesh,
        seeds,
        n_steps,
        train_step,
        eval_step,
        num_epochs=num_epochs,
        train=train_cfg,
        dataset_spec=dataset_spec,
        optim=optim_spec,
        augment=augment_spec,
        early_stopping=early_spec,
        cost_extra=cost,
        grid=grid_spec,
        lr_scale=tuple(float(x) for x in hparams_k.get("lr_scale", ())),
    )
