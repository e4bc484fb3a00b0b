"""Run directories as they may arrive at `dlrl evaluate`, `dlrl report`, `--resume` and `dlrl finetune
--encoder-run`: a real finished run with its files changed (config.yaml, summary.json, targets.json,
env.json, metrics.csv, sections.json, run.json given other content), removed, replaced by a directory (or a
directory by a file), with stray files added. Each ends in success or one DlrlError line; `dlrl report`
writes only report.html into the run, `dlrl evaluate` and finetune's check write nothing at all."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from fuzz_runs import REGRESSION, copy_of
from fuzz_support import fuzz_settings, outcome, snapshot, tried, written_outside
from hypothesis import given
from hypothesis import strategies as st

from dlrl.api.experiments import evaluate
from dlrl.cli import main
from dlrl.errors import DlrlError
from dlrl.experiments import finetune
from dlrl.report import build_report

# Values a changed file may hold at a key: the right kind, the wrong kind, nothing, odd numbers. Sizes stay
# small: a config asking for a network of 10^12 weights is another failure (memory), not this test's.
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, 2, 3, -1, 7, 2**31, 0.5, -0.0, 1e-9, 3.5]),
    st.floats(allow_subnormal=False, width=32),
    st.text(max_size=8),
    st.sampled_from(["auto", "ae", "vae", "dae", "cpu", "mnist", "regression", "classifier", "autoencoder"]),
    st.lists(st.sampled_from([1, 2, 4, "x", None]), max_size=3),
    st.dictionaries(st.sampled_from(["a", "lr", "epoch", "kind"]), st.integers(-1, 3), max_size=2),
)


def _leaves(data: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(data, dict) and data:
        return [leaf for key, value in data.items() for leaf in _leaves(value, (*prefix, key))]
    return [prefix] if prefix else []


def _set(data: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    data = dict(data) if isinstance(data, dict) else {}
    data[path[0]] = _set(data.get(path[0]), path[1:], value)
    return data


@st.composite
def changed_mapping(draw: st.DrawFn, data: Any) -> Any:
    """``data`` (a parsed file) with one to three leaves changed or dropped, or all of it replaced."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(ODD, st.lists(ODD, max_size=2)))
    for _ in range(draw(st.integers(1, 3))):
        leaves = _leaves(data)
        if not leaves:
            break
        path = draw(st.sampled_from(leaves))
        data = _set(data, path, draw(ODD)) if draw(st.booleans()) else _dropped(data, path)
    return data


def _dropped(data: Any, path: tuple) -> Any:
    if not isinstance(data, dict) or not path:
        return data
    data = dict(data)
    if len(path) == 1:
        data.pop(path[0], None)
    else:
        data[path[0]] = _dropped(data.get(path[0]), path[1:])
    return data


@st.composite
def changed_csv(draw: st.DrawFn, text: str) -> str:
    lines = text.splitlines()
    how = draw(st.sampled_from(["cell", "row", "header", "cut", "random"]))
    if how == "random" or not lines:
        return draw(st.text(alphabet='ab,1.\n"e-', max_size=80))
    index = draw(st.integers(0, len(lines) - 1))
    if how == "cell":
        cells = lines[index].split(",")
        cells[draw(st.integers(0, len(cells) - 1))] = draw(
            st.sampled_from(["", "x", "nan", "1e999", '"', "-1"])
        )
        lines[index] = ",".join(cells)
    elif how == "row":
        lines.insert(index, draw(st.sampled_from(["1,2", "", "x", ",,,,,,,,,,,,", "epoch"])))
    elif how == "header":
        lines[0] = draw(st.sampled_from(["epoch", "a,b", "", "epoch,epoch,x"]))
    else:
        return text[: draw(st.integers(0, len(text)))]
    return "\n".join(lines) + "\n"


def change_file(run: Path, relative: str, data: st.DataObject) -> None:
    """Change one file of ``run``: its content (as what it is), or what it is (gone, a directory)."""
    path = run / relative
    how = data.draw(
        st.sampled_from(["content", "content", "content", "remove", "directory", "bytes"]), label="how"
    )
    if how == "remove":
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    elif how == "directory":
        if path.is_dir():
            shutil.rmtree(path)
            path.write_text("a file where a directory was")
        else:
            path.unlink(missing_ok=True)
            path.mkdir()
    elif how == "bytes":
        if path.is_dir():
            shutil.rmtree(path)
        path.write_bytes(data.draw(st.binary(max_size=60), label="bytes"))
    elif path.suffix == ".csv" and path.is_file():
        path.write_text(data.draw(changed_csv(path.read_text()), label="csv"))
    elif path.suffix in (".yaml", ".json") and path.is_file():
        try:  # changed once already, perhaps into something that is no longer YAML or JSON
            text = path.read_text()
            original = yaml.safe_load(text) if path.suffix == ".yaml" else json.loads(text)
        except (ValueError, yaml.YAMLError):
            original = {}
        changed = data.draw(changed_mapping(original), label="content")
        if path.suffix == ".yaml":
            path.write_text(yaml.safe_dump(changed))
        else:
            path.write_text(json.dumps(changed))
    elif path.is_dir():
        (path / "stray.png").write_bytes(data.draw(st.binary(max_size=40), label="stray"))


FILES = {
    "regression": ["config.yaml", "summary.json", "targets.json", "env.json", "metrics.csv", "checkpoints"],
    "classifier": ["config.yaml", "summary.json", "metrics.csv", "figures", "checkpoints"],
    "autoencoder": ["config.yaml", "summary.json", "metrics.csv", "figures", "env.json"],
    "finetune": ["config.yaml", "summary.json", "metrics.csv", "checkpoints", "figures"],
}


def _roots(workspace: Path) -> list[Path]:
    return [workspace, Path(os.environ["XDG_CACHE_HOME"]), Path.cwd()]


@pytest.fixture(autouse=True)
def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a default runs/ directory would show up here


def _change_some(run: Path, name: str, data: st.DataObject) -> None:
    for relative in data.draw(st.lists(st.sampled_from(FILES[name]), min_size=1, max_size=3, unique=True)):
        change_file(run, relative, data)


@fuzz_settings(10)
@given(name=st.sampled_from(sorted(FILES)), data=st.data())
def test_evaluate_and_report_of_any_changed_run_directory(
    finished_runs: dict[str, Path], name: str, data: st.DataObject
) -> None:
    tried("run dir: evaluate + report")
    with copy_of(finished_runs[name]) as (workspace, run):
        _change_some(run, name, data)
        before = snapshot(_roots(workspace))
        outcome("run dir: evaluate", lambda: evaluate(run))
        assert not written_outside(before, snapshot(_roots(workspace)), allowed=workspace / "nothing")
        report = outcome("run dir: report", lambda: build_report(run))
        if not isinstance(report, DlrlError):
            assert report == run / "report.html" and report.read_text().startswith("<!doctype html>")
        assert not written_outside(before, snapshot(_roots(workspace)), allowed=run / "report.html")


@fuzz_settings(6)
@given(data=st.data())
def test_report_of_any_changed_dlrl_run_directory(
    finished_runs: dict[str, Path], data: st.DataObject
) -> None:
    """A `dlrl run` directory made of the finished runs as its sections, with run.json and sections.json."""
    tried("run dir: dlrl run report")
    with copy_of(finished_runs["regression"]) as (workspace, _):
        run = workspace / "run"
        for name, path in finished_runs.items():
            if name != "dqn":
                shutil.copytree(path, run / name)
        sections = {name: {"status": "done", "seconds": 1.0, "part": "part1"} for name in finished_runs}
        (run / "sections.json").write_text(json.dumps(sections))
        (run / "run.json").write_text(
            json.dumps({"kind": "run", "sections": list(finished_runs), "seconds": 4})
        )
        for relative in data.draw(
            st.lists(
                st.sampled_from(["sections.json", "run.json", "regression", "classifier/summary.json"]),
                max_size=3,
            )
        ):
            change_file(run, relative, data)
        before = snapshot(_roots(workspace))
        report = outcome("run dir: dlrl run report", lambda: build_report(run))
        assert not written_outside(before, snapshot(_roots(workspace)), allowed=run / "report.html")
        if not isinstance(report, DlrlError):
            assert report.read_text().startswith("<!doctype html>")


@fuzz_settings(5)
@given(data=st.data())
def test_resume_of_any_changed_run_directory(
    finished_runs: dict[str, Path], data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    """A regression run interrupted after its first epoch, resumed with changed files."""
    tried("run dir: --resume")
    with copy_of(finished_runs["regression"]) as (workspace, run):
        (run / "summary.json").unlink()
        for name in ("last.pt", "ensemble/last.pt"):
            state = torch.load(run / "checkpoints" / name, weights_only=True)
            state.update(finished=False, epoch=1, history=state["history"][:1])
            torch.save(state, run / "checkpoints" / name)
        _change_some(run, "regression", data)
        before = snapshot(_roots(workspace))
        capsys.readouterr()
        code = main(["-q", "regression", "--out", str(run), "--resume", *REGRESSION])
        err = capsys.readouterr().err
        if code != 0:  # 2: bad input; 1: a file that cannot be written (a directory where summary.json goes)
            assert code in (1, 2) and err.count("\n") == 1 and err.startswith("dlrl: error: "), err
        assert not written_outside(before, snapshot(_roots(workspace)), allowed=run)


@fuzz_settings(8)
@given(data=st.data())
def test_finetune_from_any_changed_autoencoder_run_loads_or_is_one_error(
    finished_runs: dict[str, Path], data: st.DataObject
) -> None:
    tried("run dir: finetune --encoder-run")
    with copy_of(finished_runs["autoencoder"]) as (workspace, run):
        _change_some(run, "autoencoder", data)
        before = snapshot(_roots(workspace))
        outcome(
            "run dir: finetune --encoder-run", lambda: finetune.load_encoder_run(run, torch.device("cpu"))
        )
        assert not written_outside(before, snapshot(_roots(workspace)), allowed=workspace / "nothing")
