"""The public Python API: the CLI's validation and messages, typed results, nothing written on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure

import dlrl
from dlrl.cli import main
from dlrl.config.classifier import ClassifierConfig
from dlrl.config.regression import RegressionConfig

# A regression run of a second or two.
TINY = {"epochs": 3, "ensemble": 0, "data": {"num_points": 120, "test_points": 60}, "device": "cpu"}
TINY_CLI = ["epochs=3", "ensemble=0", "data.num_points=120", "data.test_points=60", "device=cpu"]


def test_import_dlrl_is_cheap_and_names_stay_functions() -> None:
    code = (
        "import sys, dlrl; assert 'torch' not in sys.modules, 'import dlrl imported torch'; "
        "f = dlrl.run; import dlrl.pipeline, dlrl.tuning; "
        "assert callable(dlrl.run) and callable(dlrl.tune), (dlrl.run, dlrl.tune)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_package_exposes_the_whole_api() -> None:
    import dlrl.api

    assert sorted(dlrl.__all__) == sorted(["__version__", *dlrl.api.__all__])
    assert all(getattr(dlrl, name) is getattr(dlrl.api, name) for name in dlrl.api.__all__)


def test_result_equals_the_cli_run(tmp_path: Path, capsys) -> None:
    result = dlrl.regression(TINY, out=tmp_path / "api")
    assert main(["regression", "--out", str(tmp_path / "cli"), *TINY_CLI, "figures=false"]) == 0
    cli_summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert result["test_mse"] == cli_summary["test_mse"]  # same seed, same numbers, bit for bit
    assert result.summary == json.loads((tmp_path / "api" / "summary.json").read_text())
    assert isinstance(result.config, RegressionConfig) and result.config.epochs == 3
    assert {"fit", "weight_histograms", "activations"} <= set(result.figures)
    assert all(isinstance(fig, Figure) for fig in result.figures.values())
    capsys.readouterr()
    result.show("fit", "activations")  # in a notebook the PNGs as written; outside a kernel, their repr
    assert capsys.readouterr().out.count("IPython.core.display.Image object") == 2
    with pytest.raises(dlrl.DlrlError, match=r"no figure fitt \(written: activations, fit, "):
        result.show("fit", "fitt")
    assert result.model.hidden_activations is not None  # the trained RegressionNet
    assert result.targets and result.targets[0]["metric"] == "test_mse_over_noise_var"


def test_config_object_dict_and_file_layer_like_the_cli(tmp_path: Path) -> None:
    config_file = tmp_path / "cfg.yaml"
    config_file.write_text("experiment: regression\nepochs: 7\noptim:\n  lr: 0.01\n")
    from dlrl.api.experiments import resolve_config
    from dlrl.experiments import get_experiment

    entry = get_experiment("regression")
    from_file = resolve_config(entry, config_file, overrides={"optim": {"lr": 0.02}})
    assert (from_file.epochs, from_file.optim.lr) == (7, 0.02)  # the override wins over the file
    from_object = resolve_config(entry, from_file, quick=True)
    assert from_object == from_file  # quick is below the config
    assert resolve_config(entry, {"epochs": 9}).epochs == 9


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda out: dlrl.regression(out=out, optim={"lrr": 1}),
            "unknown key 'optim.lrr' (did you mean 'optim.lr'?)",
        ),
        (lambda out: dlrl.regression(out=out, epochs="many"), "epochs: Input should be a valid integer"),
        (lambda out: dlrl.regression(out=out, epochs=0), "epochs: Input should be greater than 0"),
        (lambda out: dlrl.regression(5, out=out), "config: expected a RegressionConfig, a dict or a YAML"),
        (
            lambda out: dlrl.regression(ClassifierConfig(experiment="classifier"), out=out),
            "takes a RegressionConfig",
        ),
        (lambda out: dlrl.regression(out=out, resume="yes"), "resume: expected True or False"),
        (lambda out: dlrl.tune("nope", out=out), "unknown experiment 'nope'"),
        (lambda out: dlrl.tune("regression", out=out, search={"folds": 1}), "folds"),
        (lambda out: dlrl.run(out=out, only="part9"), "unknown section 'part9'"),
        (lambda out: dlrl.run(out=out, sets={"classifier": 3}), "sets['classifier']"),
    ],
)
def test_bad_input_is_one_dlrl_error_and_writes_nothing(tmp_path: Path, call, message) -> None:
    out = tmp_path / "out"
    with pytest.raises(dlrl.DlrlError) as caught:
        call(out)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not out.exists()


def test_same_message_as_the_cli(tmp_path: Path, capsys) -> None:
    assert main(["regression", "--out", str(tmp_path / "cli"), "optim.lrr=1"]) == 2
    cli_line = capsys.readouterr().err.strip().removeprefix("dlrl: error: ")
    with pytest.raises(dlrl.ConfigError) as caught:
        dlrl.regression(out=tmp_path / "api", **{"optim.lrr": 1})
    assert str(caught.value) == cli_line


def test_an_occupied_out_is_a_run_dir_error(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(dlrl.RunDirError, match="directory exists and is not empty"):
        dlrl.regression(TINY, out=tmp_path / "taken")
