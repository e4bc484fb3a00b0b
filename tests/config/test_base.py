"""Config files and overrides: every bad input is one ConfigError naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlrl.config import apply_overrides, build_config, config_to_yaml, read_config_file
from dlrl.config.classifier import ClassifierConfig
from dlrl.errors import ConfigError
from dlrl.experiments import EXPERIMENTS
from dlrl.experiments.runner import resolve_config

CLASSIFIER = EXPERIMENTS["classifier"]


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _error(tmp_path: Path, name: str, text: str | bytes, *overrides: str) -> str:
    path = _write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        resolve_config(CLASSIFIER, path, list(overrides))
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_yaml_and_toml_load_the_same(tmp_path: Path) -> None:
    yaml_cfg = resolve_config(CLASSIFIER, _write(tmp_path, "c.yaml", "epochs: 3\noptim:\n  lr: 0.01\n"))
    toml_cfg = resolve_config(CLASSIFIER, _write(tmp_path, "c.toml", "epochs = 3\n[optim]\nlr = 0.01\n"))
    assert yaml_cfg == toml_cfg
    assert yaml_cfg.epochs == 3 and yaml_cfg.optim.lr == 0.01
    assert yaml_cfg.optim.schedule == ClassifierConfig().optim.schedule  # nested defaults kept


def test_utf8_bom_and_empty_file(tmp_path: Path) -> None:
    assert resolve_config(CLASSIFIER, _write(tmp_path, "b.yaml", "\ufeffepochs: 4\n")).epochs == 4
    assert resolve_config(CLASSIFIER, _write(tmp_path, "e.yaml", "")) == ClassifierConfig()


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    message = _error(tmp_path, "c.yaml", "optim:\n  lerning_rate: 0.1\nepochs: 2\n")
    assert "optim.lerning_rate" in message
    message = _error(tmp_path, "c.yaml", "epoch: 2\n")
    assert "unknown key 'epoch'" in message and "did you mean 'epochs'" in message
    message = _error(tmp_path, "c.yaml", "hidden_sizes: [8]\n")
    assert "did you mean 'model.hidden_sizes'" in message


def test_unknown_key_without_close_match(tmp_path: Path) -> None:
    message = _error(tmp_path, "c.toml", "zzz_qqq = 1\n")
    assert "unknown key 'zzz_qqq'" in message and "did you mean" not in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("epochs: ten\n", "epochs"),
        ("epochs: -3\n", "epochs"),
        ("epochs: 2.5\n", "epochs"),
        ("optim:\n  lr: 0\n", "optim.lr"),
        ("optim:\n  optimizer: rmsprop\n", "optim.optimizer"),
        ("model:\n  hidden_sizes: [64, -1]\n", "model.hidden_sizes.1"),
        ("model: 5\n", "model"),
        ("model:\n  dropout: 1.5\n", "model.dropout"),
    ],
)
def test_wrong_values(tmp_path: Path, text: str, key: str) -> None:
    assert f": {key}: " in _error(tmp_path, "c.yaml", text)


def test_unparsable_yaml(tmp_path: Path) -> None:
    message = _error(tmp_path, "c.yaml", "epochs: [1, 2\nseed: 3\n")
    assert "cannot parse YAML" in message and "line 2" in message


def test_unparsable_toml(tmp_path: Path) -> None:
    message = _error(tmp_path, "c.toml", "epochs = \n")
    assert "cannot parse TOML" in message and "line 1" in message


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "just a string\n", "42\n"])
def test_non_mapping_top_level(tmp_path: Path, text: str) -> None:
    assert "must be a mapping" in _error(tmp_path, "c.yaml", text)


def test_not_utf8(tmp_path: Path) -> None:
    assert "not UTF-8" in _error(tmp_path, "c.yaml", b"epochs: 3\n# \xff\xfe caf\xe9\n")


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_config_file(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        read_config_file(tmp_path)


def test_config_of_another_experiment_is_refused(tmp_path: Path) -> None:
    assert "config for 'regression', not 'classifier'" in _error(
        tmp_path, "c.yaml", "experiment: regression\n"
    )


def test_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.yaml", "epochs: 3\noptim:\n  lr: 0.01\n")
    cfg = resolve_config(
        CLASSIFIER, path, ["optim.lr=3e-4", "model.hidden_sizes=[32, 16]"], options={"seed": 7}
    )
    assert (cfg.epochs, cfg.optim.lr, cfg.model.hidden_sizes, cfg.seed) == (3, 3e-4, [32, 16], 7)
    # A partial section keeps the experiment's own section defaults (onecycle, weight decay), not the class's.
    from dlrl.config import OptimConfig
    from dlrl.config.classifier import ClassifierConfig

    own = ClassifierConfig().optim
    assert (own.schedule, own.weight_decay) != (OptimConfig().schedule, OptimConfig().weight_decay)
    assert (cfg.optim.schedule, cfg.optim.weight_decay) == (own.schedule, own.weight_decay)
    with pytest.raises(ConfigError, match="expected key=value"):
        resolve_config(CLASSIFIER, None, ["epochs"])
    with pytest.raises(
        ConfigError, match=r"overrides: unknown key 'optim.lrr' \(did you mean 'optim.lr'\?\)"
    ):
        resolve_config(CLASSIFIER, None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="'epochs' is not a section"):
        apply_overrides({"epochs": 3}, ["epochs.x=1"])


def test_quick_profile_then_file_then_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.yaml", "epochs: 5\n")
    cfg = resolve_config(CLASSIFIER, path, ["batch_size=32"], quick=True)
    assert cfg.epochs == 5  # the file beats --quick
    assert cfg.data.limit == ClassifierConfig.QUICK["data.limit"]  # --quick still applies elsewhere
    assert cfg.batch_size == 32


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_written_config_reloads_to_the_same_config(tmp_path: Path, name: str) -> None:
    entry = EXPERIMENTS[name]
    for quick in (False, True):
        cfg = resolve_config(entry, None, ["seed=11"], quick=quick)
        path = _write(tmp_path, "config.yaml", config_to_yaml(cfg))
        assert resolve_config(entry, path) == cfg
        assert build_config(entry.config_cls(), read_config_file(path), str(path)) == cfg


@pytest.mark.parametrize(
    "name, text",
    [
        ("deep.yaml", "optim: " + "[" * 3000 + "]" * 3000),
        ("deep-map.yaml", "{a: " * 3000 + "1" + "}" * 3000),
        ("deep.toml", "a = " + "[" * 3000 + "]" * 3000),
        ("deep-table.toml", "a = " + "{b = " * 3000),
    ],
)
def test_nesting_too_deep_to_parse_is_one_config_error(tmp_path: Path, name: str, text: str) -> None:
    """Found by tests/fuzz: the YAML and TOML parsers recurse per level and ended in RecursionError."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"{path}: cannot parse (YAML|TOML): nested too deeply") as info:
        read_config_file(path)
    assert "\n" not in str(info.value)


def test_an_override_nested_too_deeply_is_one_config_error() -> None:
    for value in ("[" * 3000, "[" * 3000 + "]" * 3000, "{a: " * 3000):
        with pytest.raises(ConfigError) as info:
            apply_overrides({}, [f"model.hidden_sizes={value}"])
        assert str(info.value) == f"override 'model.hidden_sizes={value[:38]}...': value nested too deeply"


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_a_list_or_a_mapping_at_any_key_is_a_config_error(tmp_path: Path, name: str) -> None:
    """Found by tests/fuzz: 'env: []' reached a preset lookup that hashes the value (TypeError)."""
    from dlrl.config.base import _leaf_keys

    entry = EXPERIMENTS[name]
    for key in _leaf_keys(entry.config_cls()):
        for value in ("[]", "{}", "[[1]]", "{a: 1}"):
            path = tmp_path / "config.yaml"
            top, _, rest = key.partition(".")
            path.write_text(f"{top}: {{{rest}: {value}}}\n" if rest else f"{top}: {value}\n")
            try:
                resolve_config(entry, path)
            except ConfigError as err:
                assert "\n" not in str(err)
