"""Checkpoints as they may arrive where dlrl reads one: `dlrl evaluate RUN`, `--resume`, `dlrl finetune
--encoder-run`. A real checkpoint of the run, changed: entries dropped or replaced by other values, tensors of
other shapes and dtypes, foreign state dicts, optimizer and RNG states that do not fit; or its bytes
changed: truncated, flipped, zip members removed, renamed, duplicated or replaced. Each ends in success or
one DlrlError line, and nothing is written outside the run directory."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from fuzz_runs import DQN, REGRESSION, copy_of
from fuzz_support import fuzz_settings, outcome, snapshot, tried, written_outside
from hypothesis import given
from hypothesis import strategies as st

from dlrl.api.experiments import evaluate
from dlrl.cli import main
from dlrl.config.autoencoder import FinetuneConfig
from dlrl.errors import DlrlError
from dlrl.experiments import finetune

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.uint8, torch.bool]
DTYPES += [torch.complex64]
PLAIN = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_subnormal=False),  # torch flushes subnormals once a run configured it
    st.text(max_size=6),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.sampled_from(["a", "state", "param_groups", "model"]), st.integers(0, 2), max_size=2),
)


@st.composite
def tensor_like(draw: st.DrawFn, like: torch.Tensor | None = None) -> torch.Tensor:
    """A tensor: ``like`` in another dtype, shape or with NaN/inf, or one of any small shape."""
    shape = tuple(like.shape) if like is not None else ()
    how = draw(st.sampled_from(["dtype", "shape", "values", "scalar", "empty"]))
    if how == "shape" or like is None:
        shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
    if how == "scalar":
        shape = ()
    if how == "empty":
        shape = (0,)
    dtype = draw(st.sampled_from(DTYPES)) if how in ("dtype", "shape") or like is None else like.dtype
    tensor = torch.zeros(shape, dtype=dtype)
    if how == "values" and like is not None and like.is_floating_point() and like.numel():
        tensor = like.clone()
        tensor.view(-1)[0] = draw(st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e38]))
    return tensor


def _mutate_state_dict(draw: st.DrawFn, state: dict[str, Any]) -> dict[str, Any]:
    state = dict(state)
    keys = sorted(state)
    action = draw(st.sampled_from(["drop", "rename", "tensor", "extra", "plain", "foreign"]))
    if action == "foreign":
        return torch.nn.Linear(draw(st.integers(1, 3)), 2).state_dict()
    if not keys:
        return state
    key = draw(st.sampled_from(keys))
    if action == "drop":
        del state[key]
    elif action == "rename":
        state[key + draw(st.sampled_from(["_", ".x", "0"]))] = state.pop(key)
    elif action == "tensor":
        state[key] = draw(tensor_like(state[key] if isinstance(state[key], torch.Tensor) else None))
    elif action == "extra":
        state["extra.weight"] = torch.zeros(2)
    else:
        state[key] = draw(PLAIN)
    return state


def _mutate_optimizer(draw: st.DrawFn, optimizer: dict[str, Any]) -> Any:
    # A previous round may have left anything in these entries: change only what is still the real shape.
    state, groups = optimizer.get("state"), optimizer.get("param_groups")
    optimizer = {**optimizer, "state": dict(state) if isinstance(state, dict) else {}}
    groups = [dict(g) for g in groups if isinstance(g, dict)] if isinstance(groups, list) else []
    optimizer["param_groups"] = groups
    action = draw(st.sampled_from(["state-tensor", "state-drop", "step", "lr", "params", "groups", "plain"]))
    states = sorted(optimizer["state"])
    if action in ("state-tensor", "step") and states:
        index = draw(st.sampled_from(states))
        entry = optimizer["state"][index]
        entry = dict(entry) if isinstance(entry, dict) else {}
        name = "step" if action == "step" else draw(st.sampled_from(sorted(entry) or ["exp_avg"]))
        entry[name] = draw(st.one_of(tensor_like(entry.get(name)), PLAIN))
        optimizer["state"][index] = entry
    elif action == "state-drop" and states:
        del optimizer["state"][draw(st.sampled_from(states))]
    elif action == "lr" and groups:
        groups[0]["lr"] = draw(PLAIN)
    elif action == "params" and groups:
        groups[0]["params"] = draw(st.lists(st.integers(-1, 20), max_size=4))
    elif action == "groups":
        optimizer["param_groups"] = draw(st.one_of(st.just([]), st.just(groups * 2), PLAIN))
    elif action == "plain":
        return draw(PLAIN)
    return optimizer


@st.composite
def changed_state(draw: st.DrawFn, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with one to three of its entries changed."""
    state = dict(state)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*sorted(state), "model", "optimizer", "epoch", "torch_rng", "history"]))
        value = state.get(key)
        action = draw(st.sampled_from(["change", "change", "drop", "plain", "tensor"]))
        if action == "drop":
            state.pop(key, None)
        elif action == "plain":
            state[key] = draw(PLAIN)
        elif action == "tensor":
            state[key] = draw(tensor_like(value if isinstance(value, torch.Tensor) else None))
        elif key in ("model", "target", "ema") and isinstance(value, dict):
            state[key] = _mutate_state_dict(draw, value)
        elif key == "optimizer" and isinstance(value, dict):
            state[key] = _mutate_optimizer(draw, value)
        elif key == "torch_rng":
            state[key] = draw(
                st.sampled_from(
                    [torch.zeros(3, dtype=torch.uint8), torch.zeros(5056), torch.ones(5056).byte()]
                )
            )
        elif key == "history" and isinstance(value, list):
            state[key] = draw(
                st.sampled_from(
                    [[], value[:1], [*value, value[-1] if value else {}], [1, "x"], [{"epoch": "x"}]]
                )
            )
        elif key in ("epoch", "best_epoch", "waited"):
            state[key] = draw(st.integers(-3, 50))
        else:
            state[key] = draw(PLAIN)
    return state


@st.composite
def changed_bytes(draw: st.DrawFn, raw: bytes) -> bytes:
    """The checkpoint file's bytes cut, flipped, or its zip archive rewritten with members changed."""
    how = draw(
        st.sampled_from(["cut", "flip", "drop-member", "rename-member", "dup-member", "replace-member"])
    )
    if how == "cut":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if how == "flip":
        data = bytearray(raw)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        return bytes(data)
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        members = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
    index = draw(st.integers(0, len(members) - 1))
    name, data = members[index]
    if how == "drop-member":
        del members[index]
    elif how == "rename-member":
        members[index] = (name + draw(st.sampled_from(["x", "/y", ""])) + "0", data)
    elif how == "dup-member":
        members.append((name, draw(st.binary(max_size=64))))
    else:
        members[index] = (name, draw(st.binary(min_size=len(data), max_size=len(data))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for member, content in members:
            archive.writestr(member, content)
    return out.getvalue()


def _write_changed(path: Path, data: st.DataObject) -> None:
    """Replace the checkpoint at ``path`` with a changed one: its dict changed, or its bytes."""
    if data.draw(st.booleans(), label="change bytes"):
        path.write_bytes(data.draw(changed_bytes(path.read_bytes()), label="bytes"))
    else:
        state = torch.load(path, weights_only=True)
        torch.save(data.draw(changed_state(state), label="state"), path)


def _roots(workspace: Path) -> list[Path]:
    return [workspace, Path(os.environ["XDG_CACHE_HOME"])]


@pytest.fixture(autouse=True)
def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a default runs/ directory would show up here


EVALUATED = {
    "regression": ["best.pt", "ensemble/best.pt"],
    "classifier": ["last.pt"],
    "autoencoder": ["best.pt"],
    "finetune": ["frozen-10.pt", "finetuned-10.pt", "scratch-10.pt"],
}


@fuzz_settings(12)
@given(name=st.sampled_from(sorted(EVALUATED)), data=st.data())
def test_evaluate_on_any_changed_checkpoint_succeeds_or_is_one_error(
    finished_runs: dict[str, Path], name: str, data: st.DataObject
) -> None:
    tried("checkpoint: evaluate")
    with copy_of(finished_runs[name]) as (workspace, run):
        path = run / "checkpoints" / data.draw(st.sampled_from(EVALUATED[name]), label="checkpoint")
        _write_changed(path, data)
        before = snapshot(_roots(workspace))
        outcome("checkpoint: evaluate", lambda: evaluate(run))
        assert not written_outside(before, snapshot(_roots(workspace)), allowed=workspace / "nothing")


@fuzz_settings(8)
@given(which=st.sampled_from(["last.pt", "ensemble/last.pt", "best.pt"]), data=st.data())
def test_resume_from_any_changed_checkpoint_finishes_or_is_one_error(
    finished_runs: dict[str, Path], which: str, data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    """A regression run interrupted after its first epoch (as a copy of a finished one with its last.pt
    turned back), resumed with a changed checkpoint."""
    tried("checkpoint: --resume")
    with copy_of(finished_runs["regression"]) as (workspace, run):
        (run / "summary.json").unlink()
        for name in ("last.pt", "ensemble/last.pt"):
            state = torch.load(run / "checkpoints" / name, weights_only=True)
            torch.save(
                {**state, "finished": False, "epoch": 1, "history": state["history"][:1]},
                run / "checkpoints" / name,
            )
        _write_changed(run / "checkpoints" / which, data)
        before = snapshot(_roots(workspace))
        capsys.readouterr()
        code = main(["-q", "regression", "--out", str(run), "--resume", *REGRESSION])
        err = capsys.readouterr().err
        if code != 0:  # 2: bad input (1, a failed write, cannot happen here; an internal error never may)
            assert code == 2 and err.count("\n") == 1 and err.startswith("dlrl: error: "), err
        else:
            assert (run / "summary.json").is_file()
        assert not written_outside(before, snapshot(_roots(workspace)), allowed=run)


@fuzz_settings(10)
@given(data=st.data())
def test_finetune_from_any_changed_autoencoder_checkpoint_loads_or_is_one_error(
    finished_runs: dict[str, Path], data: st.DataObject
) -> None:
    tried("checkpoint: finetune --encoder-run")
    with copy_of(finished_runs["autoencoder"]) as (workspace, run):
        _write_changed(run / "checkpoints" / "best.pt", data)
        before = snapshot(_roots(workspace))
        cfg = FinetuneConfig(experiment="finetune", encoder_run=str(run))
        loaded = outcome(
            "checkpoint: finetune --encoder-run", lambda: finetune.load_encoder_run(run, torch.device("cpu"))
        )
        if not isinstance(loaded, DlrlError):
            ae_cfg, model = loaded
            for mode in finetune.MODES:  # the classifier each mode starts from, and a forward pass
                classifier = finetune.make_classifier(ae_cfg, cfg, 10, mode, model)
                classifier(torch.rand(2, 1, 28, 28))
        assert not written_outside(before, snapshot(_roots(workspace)), allowed=workspace / "nothing")


@fuzz_settings(8)
@given(data=st.data())
def test_dqn_resume_from_any_changed_checkpoint_finishes_or_is_one_error(
    finished_runs: dict[str, Path], data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DQN agent's last.pt (replay memory, generators, the episode under way) changed, then the agent
    trained again from it with --resume."""
    tried("checkpoint: dqn --resume")
    with copy_of(finished_runs["dqn"]) as (workspace, run):
        (run / "summary.json").unlink()
        (run / "epsilon-seed0" / "result.json").unlink()  # so that the agent is trained from its last.pt
        _write_changed(run / "epsilon-seed0" / "checkpoints" / "last.pt", data)
        before = snapshot(_roots(workspace))
        capsys.readouterr()
        code = main(["-q", "rl", "train", "--out", str(run), "--resume", *DQN])
        err = capsys.readouterr().err
        if code != 0:
            assert code == 2 and err.count("\n") == 1 and err.startswith("dlrl: error: "), err
        assert not written_outside(before, snapshot(_roots(workspace)), allowed=run)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("stopped_early", torch.tensor([]), "stopped_early is a Tensor, not a bool"),  # found by the fuzzer
        ("torch_global_rng", [0, 1], "torch_global_rng is a list, not a tensor"),
        ("obs_type", 3, "obs_type is an int, not a str"),
    ],
)
def test_dqn_resume_names_an_entry_of_the_wrong_type(
    finished_runs: dict[str, Path], key: str, value: Any, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with copy_of(finished_runs["dqn"]) as (_, run):
        (run / "summary.json").unlink()
        (run / "epsilon-seed0" / "result.json").unlink()
        last = run / "epsilon-seed0" / "checkpoints" / "last.pt"
        torch.save({**torch.load(last, weights_only=True), key: value}, last)
        capsys.readouterr()
        assert main(["-q", "rl", "train", "--out", str(run), "--resume", *DQN]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{last}: not a dlrl checkpoint ({problem})" in err, err
