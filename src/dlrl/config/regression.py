"""Config of the 1-D regression experiment (Part 1a)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt

from dlrl.config.base import Config, ExperimentConfig, OptimConfig


class RegressionDataConfig(Config):
    csv: str | None = None
    """Two-column x,y CSV file (header optional); None: synthetic data."""
    num_points: int = Field(2000, ge=10)
    """Synthetic: number of training + validation points."""
    test_points: int = Field(20000, ge=10)
    """Synthetic: size of the fresh test set (large, so the test MSE is measured to about 1%)."""
    noise_std: float = Field(0.2, gt=0)
    """Synthetic: standard deviation of the Gaussian noise on y (the best test MSE is its square)."""
    val_fraction: float = Field(0.2, gt=0, lt=1)
    """Fraction of points held out for validation."""
    test_fraction: float = Field(0.2, gt=0, lt=1)
    """Fraction of points held out for the test (CSV data; synthetic data draws a fresh test set)."""
    split_seed: int = 0
    """Seed of the data draw and split."""


class RegressionModelConfig(Config):
    hidden_sizes: list[PositiveInt] = Field([64, 64, 64], min_length=1)
    """Widths of the hidden layers (depth = their number)."""
    activation: Literal["relu", "tanh", "gelu", "silu"] = "tanh"
    """Hidden activation."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout after each hidden layer."""


class RegressionConfig(ExperimentConfig):
    experiment: Literal["regression"] = "regression"
    """Which experiment this config is for."""
    data: RegressionDataConfig = RegressionDataConfig()
    """Data: synthetic or CSV."""
    model: RegressionModelConfig = RegressionModelConfig()
    """Network."""
    optim: OptimConfig = OptimConfig(lr=3e-3, weight_decay=1e-4)
    """Optimizer and schedule."""
    epochs: int = Field(300, gt=0)
    """Training epochs."""
    batch_size: int = Field(64, gt=0)
    """Mini-batch size."""
    patience: int | None = Field(50, gt=0)
    """Early stopping: epochs without validation improvement (None: never)."""
    ensemble: int = Field(5, ge=0)
    """Bootstrap ensemble members trained side by side for the uncertainty band of the fit (0: none)."""
    figures: bool = True
    """Write the figures (false: metrics only, e.g. inside a hyperparameter search)."""
    threads: int | None = Field(1, gt=0)
    """Torch intra-op threads: 1, since ops on nets this small only pay for a second thread's overhead."""

    QUICK: ClassVar[dict[str, Any]] = {"epochs": 30, "patience": None}
