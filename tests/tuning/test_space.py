"""Search spaces and settings: validation before Ray, layering, encoding, reproducible sampling."""

from __future__ import annotations

import pytest

from dlrl.config.regression import RegressionConfig
from dlrl.config.tune import ParamSpec
from dlrl.errors import ConfigError
from dlrl.experiments.search import resolve_search
from dlrl.tuning.space import apply_params, decode, encode, grid_size, load_tune_config, optuna_space

BASE = RegressionConfig().model_dump(mode="json")


def _tune(overrides: list[str] | None = None, **kwargs):
    return load_tune_config("regression", RegressionConfig, BASE, overrides=overrides, **kwargs)


def test_shipped_spaces_are_valid_and_quick_is_small():
    full, quick = _tune(), _tune(quick=True)
    assert "optim.lr" in full.space and full.space["optim.lr"].type == "loguniform"
    assert quick.num_samples == 8 and quick.folds == 3
    assert full.num_samples > quick.num_samples


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "uniform", "low": 1.0, "high": 1.0}, "empty range"),
        ({"type": "loguniform", "low": 0.0, "high": 1.0}, "positive bounds"),
        ({"type": "logint", "low": -2, "high": 4}, "positive bounds"),
        ({"type": "choice", "values": []}, "non-empty"),
        ({"type": "uniform", "low": 0.1}, "both 'low' and 'high'"),
        ({"type": "int", "low": 1.5, "high": 4}, "integers"),
        ({"type": "gaussian", "low": 0, "high": 1}, "type"),
    ],
)
def test_unsampleable_parameter_is_one_line(spec, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_tune_config("regression", RegressionConfig, BASE, {"space": {"optim.lr": spec}}, "my.yaml")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("my.yaml: tune.space.optim.lr")


def test_unknown_parameter_suggests_the_close_one():
    with pytest.raises(ConfigError, match=r"unknown parameter 'optim.lrate' .*did you mean 'optim.lr'"):
        _tune(["space.optim.lrate={type: uniform, low: 0.1, high: 0.2}"])
    with pytest.raises(ConfigError, match="unknown parameter 'optim'"):  # a section, not a value
        _tune(["space.optim={type: uniform, low: 0.1, high: 0.2}"])


def test_bounds_must_be_valid_values_of_the_field():
    with pytest.raises(ConfigError, match=r"tune.space.model.dropout: 1.5 is not a valid value"):
        _tune(["space.model.dropout={type: uniform, low: 0.0, high: 1.5}"])
    with pytest.raises(ConfigError, match=r"tune.space.model.activation: 'sigmoid' is not a valid value"):
        _tune(["space.model.activation={type: choice, values: [tanh, sigmoid]}"])


def test_overrides_change_one_field_add_and_remove_parameters():
    cfg = _tune(
        [
            "space.optim.lr.high=0.1",
            "space.model.dropout={type: uniform, low: 0, high: 0.3}",
            "space.batch_size=null",
            "num_samples=5",
        ]
    )
    assert cfg.space["optim.lr"].high == 0.1 and cfg.space["optim.lr"].low == 1e-3
    assert "model.dropout" in cfg.space and "batch_size" not in cfg.space
    assert cfg.num_samples == 5


def test_user_section_replaces_the_space_and_keeps_other_shipped_keys():
    cfg = load_tune_config(
        "regression",
        RegressionConfig,
        BASE,
        {"space": {"optim.lr": {"type": "loguniform", "low": 1e-3, "high": 1e-2}}},
        "u.yaml",
    )
    assert list(cfg.space) == ["optim.lr"]
    assert cfg.metric == "val_mse"  # from the shipped file
    with pytest.raises(ConfigError, match=r"tune\.space is empty"):
        load_tune_config("regression", RegressionConfig, BASE, {"space": {}}, "u.yaml")
    with pytest.raises(ConfigError, match="unknown key 'num_sample'"):
        load_tune_config("regression", RegressionConfig, BASE, {"num_sample": 3}, "u.yaml")


def test_resolve_search_splits_experiment_and_tune_overrides(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "epochs: 7\ntune:\n  folds: 4\n  space:\n    optim.lr: {type: loguniform, low: 0.001, high: 0.01}\n"
    )
    setup = resolve_search("regression", config, ["batch_size=8", "tune.num_samples=3"], options={"seed": 5})
    assert (setup.base.epochs, setup.base.batch_size, setup.base.seed) == (7, 8, 5)
    assert (setup.tune.folds, setup.tune.num_samples, list(setup.tune.space)) == (4, 3, ["optim.lr"])
    assert (setup.metric, setup.mode) == ("val_mse", "min")
    assert resolve_search("classifier", quick=True).mode == "max"
    assert resolve_search("classifier", tune_options={"metric": "val_loss"}).mode == "min"
    with pytest.raises(ConfigError, match="--metric val_acc: classifier reports"):
        resolve_search("classifier", tune_options={"metric": "val_acc"})
    other = tmp_path / "other.yaml"
    other.write_text("experiment: classifier\n")
    with pytest.raises(ConfigError, match="is a config for 'classifier', not 'regression'"):
        resolve_search("regression", other)


def test_list_choices_travel_as_json_and_come_back():
    assert encode([64, 64]) == "[64, 64]" and encode("tanh") == "tanh" and encode(3) == 3
    assert decode("[64, 64]") == [64, 64] and decode("tanh") == "tanh"
    cfg = apply_params(RegressionConfig, BASE, {"model.hidden_sizes": "[8, 4]", "optim.lr": 0.01})
    assert cfg.model.hidden_sizes == [8, 4] and cfg.optim.lr == 0.01


def test_grid_values():
    assert ParamSpec(type="loguniform", low=1e-4, high=1e-2, grid=3).grid_values() == pytest.approx(
        [1e-4, 1e-3, 1e-2]
    )
    assert ParamSpec(type="int", low=1, high=3, grid=5).grid_values() == [1, 2, 3]
    assert ParamSpec(type="choice", values=[[1], [2, 2]]).grid_values() == [[1], [2, 2]]
    assert grid_size(_tune(["space.optim.lr.grid=2"])) == 2 * 3 * 4 * 3 * 3


def _suggestions(seed: int, sampler: str, n: int = 4) -> list[dict]:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    cfg = _tune()
    make = optuna.samplers.RandomSampler if sampler == "random" else optuna.samplers.TPESampler
    search = OptunaSearch(space=optuna_space(cfg), metric="val_mse", mode="min", sampler=make(seed=seed))
    out = []
    for i in range(n):
        out.append(search.suggest(f"t{i}"))
        search.on_trial_complete(f"t{i}", {"val_mse": 1.0 / (i + 1)})
    return out


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_same_seed_same_sampled_configs(sampler):
    first, again, other = _suggestions(3, sampler), _suggestions(3, sampler), _suggestions(4, sampler)
    assert first == again
    assert first != other
    assert all(
        decode(s["model.hidden_sizes"]) in ([32, 32], [64, 64], [64, 64, 64], [128, 128, 128]) for s in first
    )
