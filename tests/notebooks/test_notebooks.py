"""The three notebooks: committed without outputs, executed at quick budgets in a real kernel without an
error, with the same numbers as the `dlrl` commands, progress as widgets and no Ray output, and a wrong
parameter stopping them at their first code cell with the command line's one-line error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from dlrl.cli import main

from .conftest import NAMES, NOTEBOOKS_DIR

# Per notebook: (its run directory, the dlrl command that runs the same config, overrides) compared number
# for number; figures=false where that leaves the numbers as they are: figures are half of a tiny run.
NO_FIGURES = ["figures=false"]
COMMANDS = {
    "part1_regression_ffn": [
        ("regression", ["regression"], NO_FIGURES),
        ("classifier", ["classify"], NO_FIGURES),
    ],
    "part2_autoencoders": [("autoencoder", ["autoencoder"], NO_FIGURES), ("finetune", ["finetune"], [])],
    "part3_dqn": [("dqn", ["rl", "train"], NO_FIGURES)],
}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def code_cells(nb: Any) -> list[tuple[int, Any]]:
    return [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]


def numbers(summary: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A summary flattened, without wall and CPU times (they differ between any two runs), checkpoint sizes
    (pickle writes a string once per object: the same checkpoint, strings shared or not, differs) and the
    settings of the t-SNE figure (absent with figures=false)."""
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        if "second" in key or "bytes" in key or key.startswith("tsne_"):
            continue
        if isinstance(value, dict):
            flat.update(numbers(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_has_no_outputs_and_one_parameters_cell(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in code_cells(nb) if cell.outputs or cell.execution_count is not None]
    assert dirty == [], (
        f"{name}: cells {dirty} carry outputs or execution counts (clear them before committing)"
    )
    assert "widgets" not in nb.metadata
    tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    # The first code cell after the parameters turns dlrl errors into one line and checks every parameter.
    following = next(cell for i, cell in code_cells(nb) if i > tagged[0])
    assert "one_line_errors()" in following.source and "check(" in following.source


def test_every_notebook_is_in_the_tests() -> None:
    assert sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_at_quick_budget(name: str, executed) -> None:
    run = executed(name)
    assert run.error is None, "\n".join(run.error["traceback"])
    unexecuted = [i for i, cell in code_cells(run.nb) if cell.execution_count is None]
    assert unexecuted == []
    figures = [
        o
        for _, cell in code_cells(run.nb)
        for o in cell.outputs
        if {"image/png", "image/gif"} & set(o.get("data", {}))
    ]
    assert len(figures) >= 8
    print(f"{name}: {run.seconds:.1f} s at quick budget")


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", NAMES)
def test_headline_numbers_equal_the_cli(name: str, executed, tmp_path: Path, capsys) -> None:
    run = executed(name)
    assert run.error is None
    for section, command, overrides in COMMANDS[name]:
        notebook_dir = run.runs / section
        cli_dir = tmp_path / section
        config = ["--config", str(notebook_dir / "config.yaml")]
        assert main([*command, *config, "--out", str(cli_dir), *overrides]) == 0
        notebook = json.loads((notebook_dir / "summary.json").read_text())
        cli = json.loads((cli_dir / "summary.json").read_text())
        assert numbers(notebook) == numbers(cli), section  # same seed and config: bit for bit
    capsys.readouterr()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_progress_bars_are_widgets_and_ray_stays_in_its_log(executed) -> None:
    run = executed("part1_regression_ffn")
    cells = {cell.source.split("(")[0].strip(): cell for _, cell in code_cells(run.nb)}
    classify = next(cell for source, cell in cells.items() if source.startswith("mnist = dlrl.classify"))
    assert any(WIDGET_VIEW in o.get("data", {}) for o in classify.outputs)  # per-epoch bar: a widget
    streams = [o for _, cell in code_cells(run.nb) for o in cell.outputs if o.output_type == "stream"]
    assert not any("\r" in o.text for o in streams)  # no text progress bars
    search = next(cell for source, cell in cells.items() if source.startswith("found = dlrl.tune"))
    text = "".join(o.text for o in search.outputs if o.output_type == "stream")
    assert [o.name for o in search.outputs if o.output_type == "stream"] == ["stdout"]
    assert len(text.splitlines()) == 2, text  # the notebook's own two lines; Ray's output is in RUN/ray.log
    assert (run.runs / "search" / "ray.log").stat().st_size > 0
    # stderr carries dlrl's own warnings only, one line each (here: MNIST from the shipped sample)
    warnings = [o.text for o in streams if o.name == "stderr"]
    assert all(len(text.splitlines()) == 1 and "ray" not in text.lower() for text in warnings), warnings


# One kind of wrong parameter in a real kernel (seconds each); the other kinds (a wrong type, a wrong
# search setting) go through the same check() of the same cell: tests/notebooks/test_api_helpers.py.
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_wrong_parameter_stops_at_the_first_code_cell_with_the_cli_line(
    executor, tmp_path: Path, capsys
) -> None:
    parameters: dict[str, Any] = {"regression": {"epochz": 3}}
    cli = ["regression", "epochz=3"]
    assert main([*cli, "--out", str(tmp_path / "cli")]) == 2
    cli_line = capsys.readouterr().err.strip()
    assert cli_line.startswith("dlrl: error: ") and "\n" not in cli_line

    path = NOTEBOOKS_DIR / "part1_regression_ffn.ipynb"
    nb = executor.execute(path, {**parameters, "out": str(tmp_path / "runs")}, timeout=300)
    error = executor.first_error(nb)
    first_code = next(i for i, cell in code_cells(nb) if i > executor.parameters_cell(nb) + 1)
    assert error is not None and error["cell"] == first_code
    assert error["traceback"] == [cli_line]  # one line, the CLI's, no traceback
    assert all(cell.execution_count is None for i, cell in code_cells(nb) if i > first_code)
    assert not (tmp_path / "runs").exists()


def test_execute_refuses_a_parameter_the_notebook_does_not_have(executor, capsys) -> None:
    code = executor.main(["part1_regression_ffn.ipynb", "-p", "epochs=3", "--out", "unused"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("execute.py: error: -p epochs: not a parameter") and "\n" not in err
    assert not Path("unused").exists()
