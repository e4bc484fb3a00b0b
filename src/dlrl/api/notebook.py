"""What the notebooks need beyond the experiment functions: parameters checked before anything runs, and a
``DlrlError`` shown as the CLI's one line instead of a traceback.

    from dlrl.api import check, one_line_errors
    one_line_errors()                                  # in Jupyter: 'dlrl: error: ...' and the notebook stops
    check("regression", quick=True, epochs="many")     # ConfigError: overrides: epochs: Input should be ...
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dlrl.api.experiments import ConfigInput, check_options, resolve_config
from dlrl.api.search import resolve as resolve_search
from dlrl.config import ExperimentConfig
from dlrl.errors import DlrlError
from dlrl.experiments import get_experiment
from dlrl.tuning.setup import SearchSetup


def check(
    experiment: str,
    config: ConfigInput = None,
    *,
    out: str | Path | None = None,
    quick: bool = False,
    search: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> ExperimentConfig | SearchSetup:
    """Validate the arguments of an experiment function (``experiment`` is its registry name: "regression",
    "classifier", "autoencoder", "finetune", "dqn") without running anything, and return the resolved config;
    with ``search`` (a dict, possibly empty), the arguments of ``dlrl.tune(experiment, ...)`` instead, and
    return the search setup. The first problem raises the same DlrlError, with the same one-line message, as
    the call itself would. Checks that need files (a CSV, a parent run) are left to the call."""
    check_options(out, False, quick)
    if search is not None:
        if not isinstance(search, Mapping):
            raise DlrlError(f"search: expected a dict of search settings, got {type(search).__name__}")
        return resolve_search(experiment, config, quick, search, overrides)
    return resolve_config(get_experiment(experiment), config, quick, overrides)


def _one_line(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list:
    """IPython's handler of a DlrlError: the cell fails (Run All stops there) showing one line."""
    lines = [f"dlrl: error: {value}"]
    value._render_traceback_ = lambda: lines  # type: ignore[attr-defined]  # what IPython shows instead
    shell.showtraceback((etype, value, tb))
    return lines


def one_line_errors(enable: bool = True) -> bool:
    """In IPython or Jupyter, show every ``DlrlError`` raised by a cell as its one-line message
    (``dlrl: error: ...``, as the CLI prints it) instead of a traceback from deep inside the library; the cell
    still fails, so Run All stops there. Other exceptions keep their tracebacks. ``enable=False`` restores
    IPython's default. Returns False outside IPython (nothing to do)."""
    try:
        from IPython import get_ipython  # why here: only notebooks call this, and IPython may be absent
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    if enable:
        shell.set_custom_exc((DlrlError,), _one_line)
    else:
        shell.set_custom_exc((), None)
    return True
