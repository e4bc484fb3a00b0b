"""Checkpoints: atomic safe round trip; every bad file is one CheckpointError; pickle payloads never run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlrl.errors import CheckpointError
from dlrl.rl.agent import check_checkpoint
from dlrl.train.checkpoint import load_checkpoint, restore_model, save_checkpoint


class Payload:
    """Unpickling this creates a marker file: proof that code in a checkpoint ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def _error(path: Path, match: str) -> str:
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_round_trip(tmp_path: Path) -> None:
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    path = tmp_path / "ck" / "last.pt"
    save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": 3,
            "history": [{"loss": 0.5}],
            "config": {"a": [1, 2]},
        },
    )
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp files left
    other = _model()
    state = restore_model(other, path)
    assert state["epoch"] == 3 and state["config"] == {"a": [1, 2]}
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_saving_unloadable_content_is_a_bug_caught_at_save(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"metrics\.best is a float64"):
        save_checkpoint(tmp_path / "x.pt", {"metrics": {"best": np.float64(0.5)}})
    with pytest.raises(TypeError, match="is a Payload"):
        save_checkpoint(tmp_path / "x.pt", {"bad": Payload(tmp_path / "m")})
    assert not (tmp_path / "x.pt").exists()


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    _error(path, "not a PyTorch checkpoint")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    _error(path, "not a PyTorch checkpoint")


def test_truncated(tmp_path: Path) -> None:
    path = tmp_path / "t.pt"
    save_checkpoint(path, {"model": _model().state_dict()})
    raw = path.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 30):
        path.write_bytes(raw[:cut])
        _error(path, "truncated")


def test_corrupt_inside_zip(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.arange(10_000, dtype=torch.float32)})
    raw = bytearray(path.read_bytes())
    start = raw.find(b"data.pkl") + 100
    raw[start : start + 40] = b"\xff" * 40
    path.write_bytes(bytes(raw))
    _error(path, "corrupt|truncated|refused")


def test_list_instead_of_dict(tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2), 1], path)
    _error(path, "expected a dict, got list")


def test_missing_file(tmp_path: Path) -> None:
    _error(tmp_path / "nope.pt", "not found")


def test_missing_model_entry(tmp_path: Path) -> None:
    path = tmp_path / "nomodel.pt"
    torch.save({"epoch": 1}, path)
    with pytest.raises(CheckpointError, match="missing model"):
        restore_model(_model(), path)


def test_state_dict_of_another_architecture(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"model": nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).state_dict()}, path)
    with pytest.raises(
        CheckpointError, match=r"another architecture \(0.weight: \(8, 4\) vs \(3, 4\)\)"
    ) as info:
        restore_model(_model(), path)
    assert "\n" not in str(info.value)
    torch.save({"model": nn.Sequential(nn.Linear(4, 2)).state_dict()}, path)
    with pytest.raises(CheckpointError, match="another architecture"):
        restore_model(_model(), path)
    torch.save({"model": {"0.weight": 1}}, path)
    with pytest.raises(CheckpointError, match="not a state dict of tensors"):
        restore_model(_model(), path)


@pytest.mark.parametrize("where", ["top", "nested"])
def test_pickle_payload_is_refused_and_not_executed(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    content = Payload(marker)
    torch.save(content if where == "top" else {"model": _model().state_dict(), "extra": content}, path)
    message = _error(path, "refused")
    assert "system" in message  # names what it refused
    assert not marker.exists()


def test_legacy_pickle_payload_is_refused_and_not_executed(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "pwned"
    path = tmp_path / "legacy.pt"
    path.write_bytes(pickle.dumps({"model": Payload(marker)}))
    _error(path, "not a PyTorch checkpoint")
    assert not marker.exists()


# Valid weights-only PyTorch files that are not dlrl checkpoints (issue 14: KeyError 'model' downstream).
FOREIGN = {
    "a-bare-state-dict": (lambda: nn.Linear(2, 2).state_dict(), "missing model"),
    "another-dict": (lambda: {"foo": torch.zeros(1)}, "missing model"),
    "model-is-a-list": (lambda: {"model": [torch.zeros(1)]}, "model is a list, not a state dict"),
    "model-of-numbers": (
        lambda: {"model": {"0.weight": 1}},
        "model is not a state dict of tensors (0.weight is an int)",
    ),
    "model-with-int-keys": (
        lambda: {"model": {0: torch.zeros(1)}},
        "model is not a state dict of tensors (key 0 is an int)",
    ),
    # A name with a line break is shown escaped: the error stays one line (found by the Hypothesis test below)
    "model-with-a-line-break-in-a-name": (
        lambda: {"model": {"\n": None}},
        "model is not a state dict of tensors (\\n is a NoneType)",
    ),
}


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_foreign_checkpoint_is_refused_by_the_reader(tmp_path: Path, name: str) -> None:
    make, detail = FOREIGN[name]
    path = tmp_path / f"{name}.pt"
    torch.save(make(), path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, required=("model",))
    message = str(info.value)
    assert message.startswith(f"{path}: not a dlrl checkpoint (") and detail in message, message
    assert "\n" not in message
    with pytest.raises(CheckpointError, match="not a dlrl checkpoint"):
        restore_model(_model(), path)
    assert isinstance(load_checkpoint(path), dict)  # without requirements: any dict


def test_required_entries_have_their_types(tmp_path: Path) -> None:
    path = tmp_path / "typed.pt"
    good = {"model": _model().state_dict(), "optimizer": {}, "epoch": 3, "history": [], "env": "CartPole-v1"}
    required = ("model", "optimizer", "epoch", "history", "env")
    save_checkpoint(path, good)
    assert load_checkpoint(path, required=required)["epoch"] == 3
    for key, value, detail in (
        ("epoch", "3", "epoch is a str, not an int"),
        ("epoch", True, "epoch is a bool, not an int"),
        ("history", 5, "history is an int, not a list or dict"),
        ("env", torch.zeros(1), "env is a Tensor, not a str"),
        ("optimizer", [1], "optimizer is a list, not a dict"),
    ):
        torch.save({**good, key: value}, path)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path, required=required)
        assert str(info.value) == f"{path}: not a dlrl checkpoint ({detail})"


# --- property: any dict of tensors and plain values loads, or is one CheckpointError --------------------

_TENSORS = st.one_of(
    st.lists(st.floats(width=32), max_size=6).map(lambda v: torch.tensor(v, dtype=torch.float32)),
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6).map(torch.tensor),
    st.booleans().map(torch.tensor),
    st.sampled_from([(3, 4), (3,), (2, 3), (2,), (4, 3)]).map(torch.zeros),  # shapes of _model() and near
)
_PLAIN = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8), _TENSORS)
_VALUES = st.recursive(
    _PLAIN,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=3),
    ),
    max_leaves=8,
)
_KEYS = st.one_of(
    st.sampled_from(["model", "optimizer", "epoch", "history", "env", "variant", "target", "scheduler"]),
    st.text(max_size=8),
)
# Sometimes a 'model' entry with _model()'s parameter names (shapes and dtypes drawn).
_MODEL_LIKE = st.dictionaries(st.sampled_from(list(_model().state_dict())), _TENSORS, max_size=4)


@settings(max_examples=50, deadline=None)
@given(
    state=st.dictionaries(_KEYS, _VALUES, max_size=5),
    model_entry=st.one_of(st.none(), _MODEL_LIKE, _VALUES),
)
def test_any_saved_dict_loads_or_is_a_checkpoint_error(
    tmp_path_factory: pytest.TempPathFactory, state: dict, model_entry: object
) -> None:
    if model_entry is not None:
        state["model"] = model_entry
    path = tmp_path_factory.mktemp("ck") / "any.pt"
    torch.save(state, path)
    for load in (
        lambda: load_checkpoint(path, required=("model",)),
        lambda: load_checkpoint(path, required=("model", "optimizer", "epoch", "history")),
        lambda: restore_model(_model(), path),
    ):
        try:
            assert isinstance(load(), dict)
        except CheckpointError as err:
            assert str(err).startswith(f"{path}: ") and "\n" not in str(err)


@pytest.mark.parametrize(
    "pickle_bytes",
    [b"\x80\x02R.", b"\x80\x02t.", b"\x80\x02(u.", b"\x80\x02\x85.", b"\x80\x02q\x00h\x05."],
    ids=["reduce", "tuple", "setitems", "tuple1", "memo"],
)
def test_a_malformed_pickle_inside_the_zip_is_a_checkpoint_error(tmp_path: Path, pickle_bytes: bytes) -> None:
    """Found by tests/fuzz: pickle opcodes with too few operands made the weights-only unpickler raise
    IndexError (pop from an empty stack, a memo index out of range)."""
    import io
    import zipfile

    good = tmp_path / "good.pt"
    save_checkpoint(good, {"model": _model().state_dict()})
    path = tmp_path / "bad.pt"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for info in source.infolist():
            content = pickle_bytes if info.filename.endswith("data.pkl") else source.read(info.filename)
            archive.writestr(info.filename, content)
    assert io.BytesIO(path.read_bytes()).read(2) == b"PK"
    _error(path, "corrupt or truncated checkpoint")


def test_a_stored_name_with_a_line_break_stays_on_one_line(tmp_path: Path) -> None:
    net = _model()
    path = tmp_path / "agent.pt"
    state = {"model": net.state_dict(), "env": "CartPole-v1\nTraceback (most recent call last):"}
    with pytest.raises(CheckpointError) as info:
        check_checkpoint(state, path, "CartPole-v1", net)
    assert str(info.value) == (
        f"{path}: checkpoint is for env 'CartPole-v1\\nTraceback (most recent call last):', not 'CartPole-v1'"
    )
    # a state dict whose names the network does not have: the first one, escaped
    save_checkpoint(path, {"model": {**net.state_dict(), "x\ny": torch.zeros(1)}})
    with pytest.raises(CheckpointError) as info:
        restore_model(net, path)
    assert "\n" not in str(info.value) and "unexpected x\\ny" in str(info.value)
