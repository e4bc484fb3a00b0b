"""Search settings and spaces: shipped file < --quick < the user's ``tune:`` section < options < overrides.

Also the translation of a space into Optuna distributions (optuna, random) or a grid, and of a sampled
point back into an experiment config. Choices that are not plain scalars (a list of layer widths) travel
through the search as their JSON text, so every sampler, the CSV and the figures can handle them.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from dlrl.config import apply_overrides, build_config, read_config_file
from dlrl.config.tune import SPEC_FIELDS, TuneConfig, build_space, check_space
from dlrl.errors import ConfigError


def shipped_space_path(experiment: str) -> Path:
    return Path(str(resources.files("dlrl") / "configs" / "tune" / f"{experiment}.yaml"))


def load_tune_config(
    experiment: str,
    config_cls: type,
    base: dict[str, Any],
    user_section: dict[str, Any] | None = None,
    user_source: str = "config file",
    quick: bool = False,
    options: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
) -> TuneConfig:
    """The validated search settings for ``experiment``; ``base`` is the experiment config as a dict.

    ``overrides`` are ``key=value`` items already stripped of their ``tune.`` prefix; ``space.<param>=...``
    replaces a parameter (null removes it) and ``space.<param>.<field>=...`` changes one of its fields.
    """
    path = shipped_space_path(experiment)
    source = str(path)
    data = read_config_file(path) if path.is_file() else {}
    quick_keys = data.pop("quick", None) or {}
    shipped_metric = data.get("metric")
    explicit_mode = (
        bool((user_section or {}).get("mode") if isinstance(user_section, dict) else False)
        or bool((options or {}).get("mode"))
        or any(item.startswith("mode=") for item in overrides or [])
    )
    if quick:
        data = apply_overrides(data, {**TuneConfig.QUICK, **quick_keys})
    if user_section:
        if not isinstance(user_section, dict):
            raise ConfigError(f"{user_source}: 'tune' must be a section (a mapping of keys to values)")
        data = {**data, **user_section}  # a user's space replaces the shipped one as a whole
        source = user_source
    if options:
        data = {**data, **{k: v for k, v in options.items() if v is not None}}
    data["space"], plain = split_space_overrides(dict(data.get("space") or {}), overrides or [])
    if len(plain) < len(overrides or []):
        source = f"{source} + overrides"
    if plain:
        data = apply_overrides(data, plain, source="override")
        source = f"{source} + overrides"
    raw_space = data.pop("space")
    tune_cfg = build_config(TuneConfig, data, source)
    if tune_cfg.metric != shipped_metric and not explicit_mode:
        tune_cfg.mode = None  # the shipped mode belongs to the shipped metric: infer the new one's
    tune_cfg.space = build_space(raw_space, source)
    if not tune_cfg.space:
        raise ConfigError(f"{source}: tune.space is empty: nothing to search")
    check_space(tune_cfg.space, config_cls, base, source)
    return tune_cfg


def split_space_overrides(space: dict[str, Any], overrides: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Apply the ``space.<param>=...`` items to ``space`` (``space.<param>.<field>=...`` changes one field
    of a parameter, ``space.<param>=null`` removes it); returns the new space and the other items."""
    plain: list[str] = []
    for item in overrides:
        key, _, value = item.partition("=")
        if not key.startswith("space."):
            plain.append(item)
            continue
        name = key[len("space.") :]
        parsed = apply_overrides({}, [f"v={value}"])["v"]
        head, _, field = name.rpartition(".")
        if field in SPEC_FIELDS and head in space:
            space[head] = {**space[head], field: parsed}
        elif parsed is None:
            space.pop(name, None)
        else:
            space[name] = parsed
    return space, plain


def encode(value: Any) -> Any:
    """A choice value as the searchers see it: scalars as they are, anything else as JSON text."""
    return value if value is None or isinstance(value, bool | int | float | str) else json.dumps(value)


def decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def optuna_space(tune_cfg: TuneConfig) -> dict[str, Any]:
    """The space as Optuna distributions (for OptunaSearch with a TPE or random sampler)."""
    from optuna import distributions as d  # optuna only when a search is made: `dlrl --help` stays fast

    space: dict[str, Any] = {}
    for name, spec in tune_cfg.space.items():
        if spec.type == "choice":
            space[name] = d.CategoricalDistribution([encode(v) for v in spec.values or []])
        elif spec.type in ("int", "logint"):
            space[name] = d.IntDistribution(int(spec.low), int(spec.high), log=spec.type == "logint")  # type: ignore[arg-type]
        else:
            space[name] = d.FloatDistribution(spec.low, spec.high, log=spec.type == "loguniform")  # type: ignore[arg-type]
    return space


def grid_space(tune_cfg: TuneConfig) -> dict[str, Any]:
    from ray import tune  # ray only when a search is made

    return {
        name: tune.grid_search([encode(v) for v in spec.grid_values()])
        for name, spec in tune_cfg.space.items()
    }


def grid_size(tune_cfg: TuneConfig) -> int:
    size = 1
    for spec in tune_cfg.space.values():
        size *= len(spec.grid_values())
    return size


def params_of(trial_config: dict[str, Any], tune_cfg: TuneConfig) -> dict[str, Any]:
    """The searched parameters of a trial's config, decoded, in the order of the space."""
    return {name: decode(trial_config[name]) for name in tune_cfg.space if name in trial_config}


def apply_params(
    config_cls: type, base: dict[str, Any], params: dict[str, Any], source: str = "trial"
) -> Any:
    """The experiment config ``base`` with the sampled ``params`` (dotted keys) applied, validated."""
    return build_config(config_cls, apply_overrides(base, {k: decode(v) for k, v in params.items()}), source)
