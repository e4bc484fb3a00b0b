"""The API's helpers for notebooks: check() validates like the call it stands for, one_line_errors() turns a
DlrlError into the CLI's one line in IPython, play() refuses bad arguments in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

import dlrl
from dlrl.api import check, one_line_errors, play
from dlrl.config.regression import RegressionConfig


def test_check_returns_the_config_the_call_would_run() -> None:
    config = check("regression", {"epochs": 7}, quick=True, optim={"lr": 0.01})
    assert isinstance(config, RegressionConfig)
    assert (config.epochs, config.optim.lr, config.patience) == (7, 0.01, None)  # quick, config, overrides
    setup = check("regression", quick=True, search={"num_samples": 3}, epochs=5)
    assert (setup.tune.num_samples, setup.base.epochs) == (3, 5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optim": {"lrr": 1}}, "overrides: unknown key 'optim.lrr' (did you mean 'optim.lr'?)"),
        ({"seed": "one"}, "overrides: seed: Input should be a valid integer"),
        ({"quick": "yes"}, "quick: expected True or False, got 'yes'"),
        ({"out": 5}, "out: expected a directory path, got int"),
        ({"search": "fast"}, "search: expected a dict of search settings, got str"),
        ({"search": {"num_sample": 3}}, "unknown key 'num_sample' (did you mean 'num_samples'?)"),
    ],
)
def test_check_raises_what_the_call_raises(kwargs: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(dlrl.DlrlError) as checked:
        check("regression", **kwargs)
    assert message in str(checked.value) and "\n" not in str(checked.value)
    if "search" not in kwargs and "out" not in kwargs:
        with pytest.raises(dlrl.DlrlError) as called:
            dlrl.regression(out=tmp_path / "run", **kwargs)
        assert str(called.value) == str(checked.value)
        assert not (tmp_path / "run").exists()


def test_one_line_errors_shows_a_dlrl_error_as_one_line_in_ipython(capsys) -> None:
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    shell = interactiveshell.InteractiveShell.instance()
    try:
        assert one_line_errors() is True
        result = shell.run_cell("from dlrl.api import check\ncheck('regression', epochz=3)")
        assert isinstance(result.error_in_exec, dlrl.ConfigError)  # the cell still fails: Run All stops
        out = capsys.readouterr()
        shown = (out.out + out.err).strip()
        assert shown == "dlrl: error: overrides: unknown key 'epochz' (did you mean 'epochs'?)"
        result = shell.run_cell("1 / 0")  # other errors keep their traceback
        assert isinstance(result.error_in_exec, ZeroDivisionError)
        assert "Traceback" in capsys.readouterr().out
    finally:
        one_line_errors(enable=False)
        interactiveshell.InteractiveShell.clear_instance()


def test_one_line_errors_outside_ipython_does_nothing() -> None:
    assert one_line_errors() is False


@pytest.mark.parametrize(("kwargs", "message"), [({"episodes": 0}, "episodes"), ({"every": "2"}, "every")])
def test_play_refuses_bad_arguments_in_one_line(kwargs: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(dlrl.DlrlError, match=f"^{message}: must be a positive integer"):
        play(tmp_path, **kwargs)


def test_play_needs_a_dqn_run(tmp_path: Path) -> None:
    with pytest.raises(dlrl.DlrlError, match="not a dlrl run directory"):
        play(tmp_path)
