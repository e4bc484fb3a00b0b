"""Config base classes and the loader that turns files and overrides into validated configs."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dlrl.errors import ConfigError, shown

C = TypeVar("C", bound="Config")


class Config(BaseModel):
    """Base of every config: unknown keys are errors, field docstrings are help texts."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


class OptimConfig(Config):
    lr: float = Field(1e-3, gt=0)
    """Learning rate."""
    weight_decay: float = Field(0.0, ge=0)
    """Decoupled weight decay (AdamW) or L2 penalty (SGD)."""
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    """Optimizer."""
    schedule: Literal["none", "cosine", "onecycle", "step"] = "none"
    """Learning-rate schedule over the whole run."""
    warmup_epochs: float | None = Field(None, gt=0)
    """onecycle: epochs of the rising part (None: 30% of the schedule). Given, the warm-up stays the same
whatever the run's length (the classifier's epochs=auto settles its length during the warm-up)."""
    grad_clip: float | None = Field(None, gt=0)
    """Clip the gradient norm to this value (None: no clipping)."""


class DataConfig(Config):
    dataset: Literal["mnist", "fashion-mnist"] = "mnist"
    """Image dataset."""
    data_dir: str | None = None
    """Directory with the IDX files (searched first; downloads go there). Also: DLRL_DATA_DIR."""
    val_size: int = Field(5000, ge=0)
    """Images held out from the training set for validation (full datasets)."""
    limit: int | None = Field(None, gt=0)
    """Use at most this many training images (smoke runs)."""
    split_seed: int = 0
    """Seed of the train/validation(/test) split; fixed apart from the run seed so test sets stay put."""
    download: bool = True
    """Download from the official mirrors when no local copy is found."""


class ExperimentConfig(Config):
    """Fields every experiment has."""

    experiment: str
    """Which experiment this config is for (checked when a config file is fed back)."""
    seed: int = 0
    """Seed for every random draw of the run."""
    device: str = "auto"
    """Torch device: auto, cpu or cuda[:N]."""
    threads: int | None = Field(None, gt=0)
    """Torch intra-op threads (None: every core this process may use)."""

    # Overrides applied by --quick, as dotted keys; each experiment sets its own.
    QUICK: ClassVar[dict[str, Any]] = {}

    @classmethod
    def with_preset(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with the keys it lacks taken from the preset its own settings select (an experiment
        with presets, e.g. DQN's per environment, says how); none here."""
        return data

    @model_validator(mode="after")
    def _warmup_within_the_run(self) -> ExperimentConfig:
        """An experiment with ``optim`` and a number of ``epochs``: its warm-up ends before the run does."""
        warmup = getattr(getattr(self, "optim", None), "warmup_epochs", None)
        epochs = getattr(self, "epochs", None)
        if warmup is not None and isinstance(epochs, int) and warmup >= epochs:
            raise ValueError(f"optim.warmup_epochs={warmup:g} must be shorter than the run (epochs={epochs})")
        longest = getattr(self, "max_epochs", None)  # epochs=auto: the longest run it may choose
        if warmup is not None and epochs == "auto" and isinstance(longest, int) and warmup >= longest:
            raise ValueError(f"optim.warmup_epochs={warmup:g} must be shorter than max_epochs={longest}")
        return self

    def settled_like(self, stored: dict[str, Any]) -> dict[str, Any]:
        """This config as a dict, as the interrupted run ``stored`` (its config.yaml) settled it: a run may
        write back what it resolved an ``auto`` to (the classifier's epochs=auto becomes the number it
        chose), and resuming it with ``auto`` again means that choice, not a different config."""
        return _with_resolved_auto(self.model_dump(mode="json"), stored)


def _with_resolved_auto(current: Any, stored: Any) -> Any:
    """``current`` with every ``"auto"`` leaf replaced by ``stored``'s value at that key."""
    if isinstance(current, dict) and isinstance(stored, dict):
        return {key: _with_resolved_auto(value, stored.get(key)) for key, value in current.items()}
    if current == "auto" and stored is not None:
        return stored
    return current


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file into a dict; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file ({err.strerror})") from None
    try:
        if nesting_depth(text) > MAX_NESTING:
            raise RecursionError  # before parsing: PyYAML's scanner takes seconds over a few thousand '['
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: cannot parse YAML: {err.problem or err.context}{where}") from None
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        kind = "TOML" if isinstance(err, tomllib.TOMLDecodeError) else "YAML"
        raise ConfigError(f"{path}: cannot parse {kind}: {first}") from None
    except RecursionError:  # both parsers recurse once per level of nesting
        kind = "TOML" if path.suffix.lower() == ".toml" else "YAML"
        raise ConfigError(f"{path}: cannot parse {kind}: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config must be a mapping of keys to values, got {type(data).__name__}")
    return data


# Deeper brackets than any config has: refused before a parser recurses into them.
MAX_NESTING = 100


def nesting_depth(text: str) -> int:
    """The deepest nesting of [ and { outside quotes (YAML flow style, TOML arrays and inline tables)."""
    depth = deepest = 0
    quote = ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def _parse_value(text: str, item: str, source: str) -> Any:
    try:
        if nesting_depth(text) > MAX_NESTING:
            raise RecursionError
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    except RecursionError:  # the YAML parser recurses once per level of nesting
        raise ConfigError(f"{source} '{shown(item)}': value nested too deeply") from None


def apply_overrides(
    data: dict[str, Any], overrides: dict[str, Any] | list[str], source: str = "override"
) -> dict:
    """Return a copy of ``data`` with dotted ``key=value`` overrides (or a dict of dotted keys) applied."""
    result = _deep_copy(data)
    items: list[tuple[str, Any]]
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"{source} '{shown(item)}': expected key=value, e.g. optim.lr=3e-4")
            items.append((key.strip(), _parse_value(value, item, source)))
    for key, value in items:
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{source} '{shown(key)}': '{shown(part)}' is not a section")
            node = child
        node[parts[-1]] = value
    return result


def lookup(data: dict[str, Any], key: str) -> Any:
    """``data[key]``, or a dotted path into nested dicts (as ``apply_overrides`` sets one); None if absent."""
    if key in data:
        return data[key]
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def _field_names(cls: type[BaseModel], loc: tuple) -> list[str]:
    """Names of the fields at ``loc`` (the parent of an offending key), for 'did you mean'."""
    model: Any = cls
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _leaf_keys(cls: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in cls.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_leaf_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _fill_defaults(cls: type[BaseModel], data: Any, default: BaseModel | None = None) -> Any:
    """Complete partial sections from the parent's default, not the section class's.

    ``ClassifierConfig.optim`` defaults to ``OptimConfig(schedule="onecycle", ...)``: a file or override that
    sets only ``optim.lr`` must keep that schedule rather than fall back to ``OptimConfig()``'s.
    """
    if not isinstance(data, dict):
        return data
    filled = dict(data)
    for name, field in cls.model_fields.items():
        value, annotation = filled.get(name), field.annotation
        if not (
            isinstance(value, dict) and isinstance(annotation, type) and issubclass(annotation, BaseModel)
        ):
            continue
        section_default = (
            getattr(default, name) if default is not None else field.get_default(call_default_factory=True)
        )
        if isinstance(section_default, BaseModel):
            base = {key: getattr(section_default, key) for key in type(section_default).model_fields}
            filled[name] = {**base, **_fill_defaults(annotation, value, section_default)}
    return filled


def build_config(cls: type[C], data: dict[str, Any], source: str) -> C:
    """Validate ``data`` as ``cls``; the first problem becomes a ConfigError naming ``source`` and the key."""
    try:
        # the preset first: a section the data sets in part (pixels.action_repeat=2) keeps the preset's
        # other keys of that section rather than the section's class defaults
        if issubclass(cls, ExperimentConfig):
            data = cls.with_preset(data)
        return cls.model_validate(_fill_defaults(cls, data))
    except ValidationError as err:
        problem = err.errors()[0]
        loc = tuple(problem["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if problem["type"] == "extra_forbidden":
            parent = ".".join(map(str, loc[:-1]))
            hint = [
                f"{parent}.{h}" if parent else h
                for h in difflib.get_close_matches(str(loc[-1]), _field_names(cls, loc[:-1]), n=1)
            ]
            if not hint:  # a key put in the wrong section, e.g. 'lr' instead of 'optim.lr'
                leaves = {k.rpartition(".")[2]: k for k in _leaf_keys(cls)}
                hint = [leaves[h] for h in difflib.get_close_matches(str(loc[-1]), list(leaves), n=1)]
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ConfigError(f"{source}: unknown key '{shown(key)}'{suggestion}") from None
        value = problem.get("input")
        got = f" (got {value!r})" if not isinstance(value, dict) and len(repr(value)) < 60 else ""
        raise ConfigError(f"{source}: {shown(key)}: {problem['msg']}{got}") from None


def config_to_yaml(config: Config) -> str:
    """The full resolved config as YAML, re-loadable with ``--config``."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def describe_fields(cls: type[BaseModel], prefix: str = "", defaults: BaseModel | None = None) -> list[str]:
    """One help line per leaf field: dotted key, default (as the parent config sets it) and docstring."""
    lines = []
    for name, field in cls.model_fields.items():
        annotation = field.annotation
        key = f"{prefix}{name}"
        default = (
            getattr(defaults, name) if defaults is not None else field.get_default(call_default_factory=True)
        )
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            lines.extend(describe_fields(annotation, prefix=f"{key}.", defaults=default))
            continue
        doc = (field.description or "").strip()
        lines.append(f"  {key}={default}".ljust(34) + f" {doc}")
    return lines


def layer_config(
    cls: type[ExperimentConfig],
    name: str,
    file_data: dict[str, Any] | None,
    file_source: str,
    overrides: list[str] | dict[str, Any] | None = None,
    quick: bool = False,
    options: dict[str, Any] | None = None,
) -> ExperimentConfig:
    """Validate experiment ``name``'s config from its layers; ``file_data`` is the --config file's content."""
    data: dict[str, Any] = {"experiment": name}
    source = "defaults"
    if quick:
        data = apply_overrides(data, cls.QUICK)
    if file_data is not None:
        if "experiment" in file_data and file_data["experiment"] != name:
            other = shown(file_data["experiment"])
            raise ConfigError(f"{file_source}: is a config for '{other}', not '{name}'")
        data = _merge(data, file_data)
        source = file_source
    if options:
        data = apply_overrides(data, {k: v for k, v in options.items() if v is not None})
    if overrides:
        data = apply_overrides(data, overrides, source="override")
        source = f"{source} + overrides" if file_data is not None else "overrides"
    return build_config(cls, data, source)


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
