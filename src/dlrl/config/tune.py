"""Config of a hyperparameter search (``dlrl tune``): search space, search algorithm, scheduler, folds.

A search space maps dotted keys of the experiment's config to distributions::

    space:
      optim.lr: {type: loguniform, low: 1.0e-4, high: 3.0e-2}
      model.hidden_sizes: {type: choice, values: [[32, 32], [64, 64, 64]]}

Shipped spaces live in ``dlrl/configs/tune/<experiment>.yaml``; a user's config file may carry a ``tune:``
section whose ``space`` replaces the shipped one (other keys override one by one).
"""

from __future__ import annotations

import difflib
import math
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from dlrl.config.base import Config, _leaf_keys, apply_overrides, build_config
from dlrl.errors import ConfigError

ParamType = Literal["uniform", "loguniform", "int", "logint", "choice"]


class ParamSpec(Config):
    type: ParamType
    """Distribution: uniform, loguniform, int (uniform integer), logint, choice."""
    low: float | None = None
    """Lower bound (numeric types), inclusive."""
    high: float | None = None
    """Upper bound (numeric types), inclusive."""
    values: list[Any] | None = None
    """Candidates (choice)."""
    grid: int = Field(3, ge=1)
    """Points of a numeric range under --search grid (log-spaced for log types)."""

    @model_validator(mode="after")
    def _sampleable(self) -> ParamSpec:
        if self.type == "choice":
            if not self.values:
                raise ValueError("choice needs a non-empty 'values' list")
            if self.low is not None or self.high is not None:
                raise ValueError("choice takes 'values', not 'low'/'high'")
            return self
        if self.values is not None:
            raise ValueError(f"{self.type} takes 'low' and 'high', not 'values'")
        if self.low is None or self.high is None:
            raise ValueError(f"{self.type} needs both 'low' and 'high'")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"{self.type} bounds must be finite")
        if self.type in ("int", "logint") and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"{self.type} bounds must be integers")
        if self.low >= self.high:
            raise ValueError(f"empty range: low={self.low:g} is not below high={self.high:g}")
        if self.type in ("loguniform", "logint") and self.low <= 0:
            raise ValueError(f"{self.type} needs positive bounds, got low={self.low:g}")
        return self

    def grid_values(self) -> list[Any]:
        """The candidates of this parameter under --search grid."""
        if self.type == "choice":
            return list(self.values or [])
        low, high = float(self.low), float(self.high)  # type: ignore[arg-type]
        points = (
            np.geomspace(low, high, self.grid)
            if self.type in ("loguniform", "logint")
            else np.linspace(low, high, self.grid)
        )
        if self.type in ("int", "logint"):
            return sorted({round(p) for p in points})
        return [float(p) for p in points]


class TuneConfig(Config):
    metric: str | None = None
    """Metric to optimise: the mean over folds of a validation metric (None: the experiment's default)."""
    mode: Literal["min", "max"] | None = None
    """Minimise or maximise the metric (None: the experiment's default)."""
    num_samples: int = Field(20, gt=0)
    """Trials to sample (ignored by --search grid, which runs the whole grid once)."""
    folds: int = 3
    """K of the K-fold cross validation inside every trial (at least 2)."""
    search: Literal["optuna", "random", "grid"] = "optuna"
    """Search algorithm: optuna (TPE), random (seeded), grid."""
    scheduler: Literal["asha", "fifo"] = "asha"
    """Trial scheduler: asha stops bad trials early, fifo runs every trial to the end."""
    max_concurrent: int | None = Field(None, gt=0)
    """Trials at the same time (None: as many as the CPUs allow)."""
    time_budget: float | None = Field(None, gt=0)
    """Stop the whole search after this many seconds (None: no limit)."""
    cpus_per_trial: float = Field(1.0, gt=0)
    """CPUs reserved per trial (also its torch threads, rounded up)."""
    grace_period: int | None = Field(None, gt=0)
    """ASHA: epochs every trial runs before it may be stopped (None: a quarter of the epochs, at least 1)."""
    reduction_factor: float = Field(3.0, gt=1)
    """ASHA: keep the best 1/reduction_factor of the trials at each rung."""
    startup_trials: int | None = Field(None, ge=1)
    """Optuna: random trials before TPE takes over (None: min(10, half the trials))."""
    max_failures: int | None = Field(None, ge=0)
    """Retries of a failed trial (node lost), each from its last checkpoint (None: 2 on a cluster, 0 here)."""
    storage: str | None = None
    """Trials and checkpoints: a directory every node shares or a URI (s3://...); None: the run directory."""
    checkpoint_every: int | None = Field(None, gt=0)
    """Write a trial checkpoint every this many epochs (None: about 10 per trial); resume restarts there."""
    top_k: int = Field(5, gt=0)
    """Trials shown in the learning-curve figure."""
    space: dict[str, ParamSpec] = Field(default_factory=dict)
    """Search space: dotted experiment-config key -> distribution."""

    # --quick profile of the search itself (the experiment's own QUICK applies to the experiment config)
    QUICK: ClassVar[dict[str, Any]] = {"num_samples": 8, "folds": 3}


# Keys that may differ between an interrupted search and its resumption: where it runs, not what it computes.
RESUME_FREE_KEYS = ("max_concurrent", "time_budget", "cpus_per_trial")
SPEC_FIELDS = tuple(ParamSpec.model_fields)


def build_space(raw: Any, source: str) -> dict[str, ParamSpec]:
    """Validate a raw ``space`` mapping; the first problem is one line naming ``source`` and the parameter."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: tune.space must be a mapping of parameter -> distribution")
    space = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            raise ConfigError(
                f"{source}: tune.space.{name}: expected a mapping such as "
                "{type: loguniform, low: 1e-4, high: 1e-2}, got " + repr(spec)[:40]
            )
        try:
            space[str(name)] = ParamSpec.model_validate(spec)
        except ValidationError as err:
            problem = err.errors()[0]
            field = ".".join(str(p) for p in problem["loc"])
            message = problem["msg"].removeprefix("Value error, ")
            where = f"tune.space.{name}.{field}" if field else f"tune.space.{name}"
            if problem["type"] == "extra_forbidden":
                message = f"unknown key (use {', '.join(SPEC_FIELDS)})"
            raise ConfigError(f"{source}: {where}: {message}") from None
    return space


def check_space(space: dict[str, ParamSpec], config_cls: type, base: dict[str, Any], source: str) -> None:
    """Every parameter must be a leaf key of ``config_cls`` and every bound/candidate a valid value of it.

    ``base`` is the experiment config (as a dict) the sampled values are applied to.
    """
    leaves = [k for k in _leaf_keys(config_cls) if k not in ("experiment", "seed")]
    experiment = base.get("experiment", "the experiment")
    for name, spec in space.items():
        if name not in leaves:
            hint = difflib.get_close_matches(name, leaves, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ConfigError(
                f"{source}: tune.space: unknown parameter '{name}' for {experiment}{suggestion}"
            )
        probes = spec.values if spec.type == "choice" else [spec.low, spec.high]
        if spec.type in ("int", "logint"):
            probes = [int(p) for p in probes]  # type: ignore[arg-type]
        for value in probes or []:
            try:
                build_config(config_cls, apply_overrides(base, {name: value}), "")
            except ConfigError as err:
                detail = str(err).split(": ", 2)[-1]
                raise ConfigError(
                    f"{source}: tune.space.{name}: {value!r} is not a valid value ({detail})"
                ) from None
