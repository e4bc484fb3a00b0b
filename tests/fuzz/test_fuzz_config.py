"""Configs as they may arrive: any YAML or TOML text, files shaped like configs with any value at any real
key (or a near-miss key), and key=value overrides from the command line or `dlrl run --set`. Each ends in a
validated config (one that config.yaml re-creates exactly) or in one ConfigError (DlrlError) line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from fuzz_support import fuzz_settings, outcome, tried
from hypothesis import given
from hypothesis import strategies as st

from dlrl.config import build_config, config_to_yaml, read_config_file
from dlrl.config.base import _leaf_keys
from dlrl.errors import DlrlError
from dlrl.experiments import EXPERIMENTS
from dlrl.experiments.runner import resolve_config
from dlrl.pipeline.sections import parse_sets

NAMES = sorted(EXPERIMENTS)
KEYS = {name: _leaf_keys(EXPERIMENTS[name].config_cls()) for name in NAMES}
ALL_KEYS = sorted({key for keys in KEYS.values() for key in keys})

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 2, -1, 3, 10, 1000]),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),
    st.sampled_from([0.0, 0.5, 1e-3, 1e300, -1e-300]),
    st.text(max_size=12),
    st.sampled_from(
        ["auto", "cpu", "cuda", "mnist", "fashion-mnist", "ae", "vae", "dae", "CartPole-v1", "all"]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
# Keys near the real ones: a typo, another section, another case.
KEY_NAMES = st.one_of(
    st.sampled_from(ALL_KEYS),
    st.sampled_from(ALL_KEYS).map(lambda k: k.upper()),
    st.sampled_from(ALL_KEYS).map(lambda k: k.rpartition(".")[2]),
    st.sampled_from(ALL_KEYS).map(lambda k: k[:-1] or "x"),
    st.sampled_from(ALL_KEYS).map(lambda k: f"{k}.extra"),
    st.text(alphabet="abc._", min_size=1, max_size=6),
)
# Nesting deep enough to exhaust a recursive parser, and what YAML can express beyond JSON.
NESTED = st.integers(1, 3000).flatmap(
    lambda depth: st.sampled_from(
        ["[" * depth + "]" * depth, "{a: " * depth + "1" + "}" * depth, "[" * depth]
    )
)
YAML_ODDITIES = st.sampled_from(
    [
        "!!python/object/apply:os.system ['true']",
        "&a [*a]",
        "&a {x: *a}",
        "!!binary aGVsbG8=",
        "!!set {a, b}",
        "2001-12-14t21:59:43.10-05:00",
        "0x1F",
        "0o17",
        ".nan",
        "-.inf",
        "1_000",
        "~",
        "'",
        '"\\x00"',
        "? [a]\n: 1",
        "{[1]: 2}",
        "a: 1\na: 2",
        "--- 1\n--- 2",
    ]
)


def _dotted_to_nested(items: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in items:
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return data


def _check_config(config: Any) -> None:
    """A valid config re-creates itself from its config.yaml (what `--config RUN/config.yaml` does)."""
    text = config_to_yaml(config)
    again = build_config(type(config), yaml.safe_load(text), "config.yaml")
    assert again == config, (config, again)


def _validate(name: str, config: Any) -> None:
    """The experiment's own checks (files, envs, parent runs) that run before anything is written."""
    module = EXPERIMENTS[name].load()
    if hasattr(module, "validate"):
        module.validate(config)


@fuzz_settings(60)
@given(
    text=st.one_of(
        st.text(max_size=300),
        NESTED,
        YAML_ODDITIES,
        st.builds(lambda a, b: f"{a}: {b}", st.sampled_from(ALL_KEYS), st.one_of(NESTED, YAML_ODDITIES)),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    ),
    suffix=st.sampled_from([".yaml", ".yml", ".toml", ".YAML", ".txt"]),
    raw=st.booleans(),
)
def test_any_config_text_reads_as_a_mapping_or_is_one_config_error(text: str, suffix: str, raw: bool) -> None:
    tried("config file")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"config{suffix}"
        if raw:
            path.write_bytes(text.encode("utf-8", "surrogatepass"))
        else:
            path.write_text(text, encoding="utf-8", errors="replace")
        result = outcome("config file", lambda: read_config_file(path))
        if not isinstance(result, DlrlError):
            assert isinstance(result, dict)
            for name in NAMES:
                entry = EXPERIMENTS[name]
                config = outcome("config file", lambda e=entry: resolve_config(e, path))
                if not isinstance(config, DlrlError):
                    _check_config(config)


@fuzz_settings(80)
@given(
    name=st.sampled_from(NAMES),
    items=st.lists(st.tuples(KEY_NAMES, VALUES), max_size=6),
    fmt=st.sampled_from(["yaml", "json", "toml"]),
    quick=st.booleans(),
)
def test_any_config_file_shaped_like_a_config_is_valid_or_one_config_error(
    name: str, items: list[tuple[str, Any]], fmt: str, quick: bool
) -> None:
    tried("config values")
    data = _dotted_to_nested(items)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"config.{'toml' if fmt == 'toml' else 'yaml'}"
        if fmt == "toml":
            path.write_text(_toml(data), encoding="utf-8")
        elif fmt == "json":
            path.write_text(json.dumps(data, default=str), encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(data), encoding="utf-8")
        config = outcome("config values", lambda: resolve_config(EXPERIMENTS[name], path, None, quick))
        if not isinstance(config, DlrlError):
            _check_config(config)
            outcome("config values", lambda: _validate(name, config))


OVERRIDE_VALUES = st.one_of(
    st.text(max_size=20),
    NESTED,
    YAML_ODDITIES,
    SCALARS.map(lambda v: json.dumps(v) if not isinstance(v, str) else v),
    st.lists(st.integers(-5, 600), max_size=4).map(lambda v: json.dumps(v)),
)


@fuzz_settings(80)
@given(
    name=st.sampled_from(NAMES),
    overrides=st.lists(
        st.one_of(
            st.builds(lambda k, v: f"{k}={v}", KEY_NAMES, OVERRIDE_VALUES),
            st.text(max_size=20),  # no '=' at all, '=' first, spaces...
        ),
        max_size=5,
    ),
    quick=st.booleans(),
)
def test_any_key_value_overrides_give_a_valid_config_or_one_config_error(
    name: str, overrides: list[str], quick: bool
) -> None:
    tried("overrides")
    config = outcome("overrides", lambda: resolve_config(EXPERIMENTS[name], None, overrides, quick))
    if not isinstance(config, DlrlError):
        _check_config(config)


@fuzz_settings(40)
@given(
    sets=st.lists(
        st.one_of(
            st.builds(
                lambda s, k, v: f"{s}.{k}={v}",
                st.sampled_from(["regression", "classifier", "autoencoder", "dae", "vae", "dqn", "x", ""]),
                KEY_NAMES,
                OVERRIDE_VALUES,
            ),
            st.text(max_size=20),
        ),
        max_size=4,
    )
)
def test_any_dlrl_run_set_gives_valid_sections_or_one_error(sets: list[str]) -> None:
    from dlrl.pipeline.section import resolve_configs
    from dlrl.pipeline.sections import select_sections
    from dlrl.pipeline.state import RunSettings

    tried("dlrl run --set")
    parsed = outcome("dlrl run --set", lambda: parse_sets(sets))
    if isinstance(parsed, DlrlError):
        return
    names = sorted(parsed) or ["regression"]
    settings = RunSettings(select_sections(",".join(n for n in names if n != "search") or "regression", None))
    settings.sets = parsed
    settings.quick = True
    outcome("dlrl run --set", lambda: resolve_configs(settings))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if value == value and abs(value) != float("inf") else json.dumps(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        inner = ", ".join(
            f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None
        )
        return "{" + inner + "}"
    return json.dumps(str(value))


def _toml(data: dict[str, Any]) -> str:
    """A small TOML writer (inline tables) for the generated dicts; None values are left out."""
    return "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in data.items() if v is not None)
