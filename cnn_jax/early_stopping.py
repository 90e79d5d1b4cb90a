"""Early stopping on a validation metric, for one seed or K vmapped seeds at once.

Host-side bookkeeping (a few floats per seed per epoch); the best parameters themselves
stay on device and are selected per seed with `select_where`. The tracker's state is a
dict of arrays so it is checkpointed with the run and a resumed run stops at the same epoch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax import metrics
from cnn_jax.config.checks import check_choice, check_int, check_keys, is_real, parse, plain_or_self

METRICS = metrics.EARLY_STOPPING  # the logged metrics with a direction (`metrics.LOGGED`)

EARLY_STOPPING_KEYS = ("enabled", "metric", "patience", "min_delta")


@dataclasses.dataclass(frozen=True)
class EarlyStoppingSpec:
    """The `early_stopping` section: off by default; see cnn_jax/early_stopping.py."""

    enabled: bool = False
    metric: str = "accuracy"  # on the validation split; or "loss"
    patience: int = 5  # evaluations in a row without improvement
    min_delta: float = 0.0  # an improvement beats the best by more than this

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | Any | None) -> EarlyStoppingSpec:
        """Validates the section (None: disabled) and types it."""
        values = None if section is None else plain_or_self(section)
        return parse(cls, values, check_early_stopping)


class EarlyStopping:
    """Tracks best value, best epoch and non-improving evaluations per seed.

    An evaluation improves when it beats the best by more than `min_delta` (higher accuracy,
    lower loss). A seed stops after `patience` evaluations in a row without improvement;
    the run stops when every seed has stopped.
    """

    def __init__(self, metric: str, patience: int, min_delta: float, num_seeds: int):
        self.metric = check_choice("early_stopping.metric", metric, METRICS)
        if patience < 1:
            raise ValueError(f"early_stopping.patience: {patience}; allowed: integers >= 1")
        if min_delta < 0:
            raise ValueError(f"early_stopping.min_delta: {min_delta}; allowed: >= 0")
        self.patience, self.min_delta = patience, min_delta
        self._higher_is_better = metrics.LOGGED_BY_NAME[metric].better == "max"
        sign = 1.0 if self._higher_is_better else -1.0
        self.state = {
            "best": np.full(num_seeds, -np.inf * sign, np.float64),
            "best_epoch": np.zeros(num_seeds, np.int32),
            "bad": np.zeros(num_seeds, np.int32),
        }

    def update(self, values: np.ndarray, epoch: int) -> np.ndarray:
        """Records one evaluation per seed; returns the bool mask of seeds that improved."""
        values = np.asarray(values, np.float64)
        best = self.state["best"]
        if self._higher_is_better:
            improved = values > best + self.min_delta
        else:
            improved = values < best - self.min_delta
        active = ~self.stopped
        improved &= active
        self.state["best"] = np.where(improved, values, best)
        self.state["best_epoch"] = np.where(improved, epoch, self.state["best_epoch"])
        bad = self.state["bad"]  # consecutive non-improving evaluations: an improvement resets it
        self.state["bad"] = np.where(improved, 0, np.where(active, bad + 1, bad)).astype(np.int32)
        return improved

    @property
    def stopped(self) -> np.ndarray:
        return self.state["bad"] >= self.patience

    @property
    def all_stopped(self) -> bool:
        return bool(np.all(self.stopped))

    @classmethod
    def from_config(
        cls, cfg: EarlyStoppingSpec | Mapping[str, Any] | None, num_seeds: int
    ) -> EarlyStopping | None:
        """The tracker of a parsed `early_stopping` section (a raw section is parsed first,
        `EarlyStoppingSpec.from_config`); None when it is not enabled."""
        spec = cfg if isinstance(cfg, EarlyStoppingSpec) else EarlyStoppingSpec.from_config(cfg)
        if not spec.enabled:
            return None
        return cls(spec.metric, spec.patience, spec.min_delta, num_seeds)


@jax.jit
def select_where(mask: jax.Array, new: Any, old: Any) -> Any:
    """Per-seed choice between two pytrees: mask [K] (or scalar) picks `new` where True."""

    def pick(n, o):
        m = jnp.reshape(mask, mask.shape + (1,) * (n.ndim - mask.ndim))
        return jnp.where(m, n, o)

    return jax.tree.map(pick, new, old)


def check_early_stopping(cfg: Mapping[str, Any] | None) -> None:
    if cfg is None:
        return
    if not isinstance(cfg, Mapping):
        raise ValueError(f"early_stopping: {cfg!r}; allowed: a config section")
    check_keys("early_stopping", cfg, EARLY_STOPPING_KEYS)
    if not isinstance(cfg.get("enabled", False), bool):
        raise ValueError(f"early_stopping.enabled: {cfg['enabled']!r}; allowed: True, False")
    check_int("early_stopping.patience", cfg.get("patience", 5), minimum=1)
    if not is_real(cfg.get("min_delta", 0.0)):
        raise ValueError(f"early_stopping.min_delta: {cfg['min_delta']!r}; allowed: >= 0")
    defaults = EarlyStoppingSpec()
    EarlyStopping(  # its own checks (metric, min_delta >= 0)
        cfg.get("metric", defaults.metric),
        int(cfg.get("patience", defaults.patience)),
        float(cfg.get("min_delta", defaults.min_delta)),
        num_seeds=1,
    )
