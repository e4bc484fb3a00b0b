"""Typed, validated configs: defaults, shipped profiles, a user's YAML/TOML file and key=value overrides.

Every config is a pydantic model that forbids unknown keys; each field's docstring is its help text.
Layering, later wins: class defaults < ``--quick`` profile < ``--config FILE`` < CLI options < ``key=value``.
"""

from dlrl.config.base import (
    Config,
    DataConfig,
    ExperimentConfig,
    OptimConfig,
    apply_overrides,
    build_config,
    config_to_yaml,
    describe_fields,
    layer_config,
    lookup,
    read_config_file,
)

__all__ = [
    "Config",
    "DataConfig",
    "ExperimentConfig",
    "OptimConfig",
    "apply_overrides",
    "build_config",
    "config_to_yaml",
    "describe_fields",
    "layer_config",
    "lookup",
    "read_config_file",
]
