"""Checkpoints: plain tensors and types only, written atomically, read with ``weights_only=True``.

Never unpickle arbitrary objects: a checkpoint carrying a pickled callable is refused, not executed.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlrl.errors import CheckpointError, shown
from dlrl.utils import atomic_path

# What a checkpoint may hold: exactly what torch.load(weights_only=True) reads back.
_PLAIN = (str, int, float, bool, type(None), torch.Tensor, torch.Size, torch.dtype, torch.device)


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise TypeError(f"checkpoint key {where}{key!r} is a {type(key).__name__}, not str or int")
            _check_plain(item, f"{where}{key}.")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}{index}.")
    elif not isinstance(value, _PLAIN) or isinstance(value, np.generic):  # np.float64 is a float subclass
        raise TypeError(
            f"checkpoint entry {where.rstrip('.')} is a {type(value).__name__}: store plain types and "
            "tensors only (e.g. float(x) for numpy scalars), or it cannot be loaded with weights_only=True"
        )


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` via a temporary file and a rename.

    Raises TypeError (a bug, not a user error) if ``state`` holds anything a safe load would refuse, and
    OutputError if the file cannot be written (the previous file at ``path`` is then intact).
    """
    _check_plain(state, "")
    # Through a Python file object: a full disk is then an OSError (an OutputError here) rather than
    # torch's RuntimeError from its own writer.
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        torch.save(state, handle)


def _first_line(err: BaseException, prefer: str = "") -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    chosen = next((line for line in lines if prefer and prefer in line.lower()), lines[0] if lines else "")
    return (chosen or type(err).__name__)[:200]


def load_checkpoint(path: str | Path, required: Iterable[str] = ()) -> dict[str, Any]:
    """Load a checkpoint dict safely; any problem is a CheckpointError naming the file.

    With ``required`` (e.g. ``("model",)``) it must also be one of dlrl's: see :func:`require_keys`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        # torch.save writes a zip archive; anything else (truncated, random bytes, a legacy pickle) is refused
        # before torch's unpickler sees it.
        is_zip = zipfile.is_zipfile(path)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read checkpoint ({err.strerror or err})") from None
    if not is_zip:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint, or truncated (no zip archive)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = _first_line(err, prefer="global")
        raise CheckpointError(f"{path}: refused to load: not a plain-tensor checkpoint ({detail})") from None
    except MemoryError:  # not the file's fault
        raise
    except Exception as err:  # any other failure to read the archive or its pickle: the file is corrupt
        # (seen: RuntimeError, EOFError, BadZipFile, ValueError, OSError, KeyError, and IndexError from the
        # weights-only unpickler popping an empty stack)
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({_first_line(err)})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a checkpoint (expected a dict, got {type(state).__name__})")
    required = tuple(required)
    if required:
        require_keys(state, required, path)
    return state


# Entries holding a model's state dict (str keys, tensor values).
STATE_DICT_ENTRIES = ("model", "target")
# What the other entries dlrl writes hold (bool is not an int here, though Python says it is).
_INT, _NUMBER, _STR, _DICT = (
    ((int,), "an int"),
    ((int, float), "a number"),
    ((str,), "a str"),
    ((dict,), "a dict"),
)
ENTRY_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    **dict.fromkeys(["epoch", "best_epoch", "waited", "step", "episode", "seed", "best_step"], _INT),
    **dict.fromkeys(["labels", "num_classes"], _INT),
    **dict.fromkeys(["best_metric", "best_eval", "train_seconds", "test_accuracy"], _NUMBER),
    **dict.fromkeys(["env", "exploration", "mode", "variant", "obs_type"], _STR),
    **dict.fromkeys(["optimizer", "config", "autoencoder_config", "numpy_rng"], _DICT),
    "scheduler": ((dict, type(None)), "a dict or None"),
    "solved_step": ((int, type(None)), "an int or None"),
    "history": ((list, dict), "a list or dict"),
    **dict.fromkeys(["torch_rng", "torch_global_rng"], ((torch.Tensor,), "a tensor")),
    **dict.fromkeys(["finished", "stopped_early"], ((bool,), "a bool")),
}


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _entry_problem(key: str, value: Any) -> str | None:
    """Why ``value`` cannot be checkpoint entry ``key`` (None if it can, or if ``key`` is not known)."""
    kind = _a(type(value).__name__)
    if key in STATE_DICT_ENTRIES:
        if not isinstance(value, dict):
            return f"{key} is {kind}, not a state dict of tensors"
        for name, tensor in value.items():
            if not isinstance(name, str):
                return f"{key} is not a state dict of tensors (key {name!r} is {_a(type(name).__name__)})"
            if not isinstance(tensor, torch.Tensor):
                return f"{key} is not a state dict of tensors ({shown(name)} is {_a(type(tensor).__name__)})"
        return None
    if key not in ENTRY_TYPES:
        return None
    types, described = ENTRY_TYPES[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        return f"{key} is {kind}, not {described}"
    return None


def require_keys(state: dict[str, Any], keys: Iterable[str], path: str | Path) -> None:
    """One-line CheckpointError unless ``state`` holds ``keys`` and every entry dlrl knows has its type
    (model weights are a state dict of tensors, an epoch an int, ...)."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a dlrl checkpoint (missing {', '.join(missing)})")
    for key, value in state.items():
        problem = _entry_problem(key, value) if isinstance(key, str) else None
        if problem:
            raise CheckpointError(f"{path}: not a dlrl checkpoint ({problem})")


def load_model_state(model: nn.Module, state_dict: Any, path: str | Path) -> None:
    """Load a state dict into ``model``; a mismatch is one line naming the first differing tensor."""
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{path}: model entry is not a state dict of tensors")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        detail = f"missing {missing[0]}" if missing else f"unexpected {shown(unexpected[0])}"
        raise CheckpointError(f"{path}: checkpoint belongs to another architecture ({detail})")
    for key, tensor in expected.items():
        if state_dict[key].shape != tensor.shape:
            raise CheckpointError(
                f"{path}: checkpoint belongs to another architecture ({key}: "
                f"{tuple(state_dict[key].shape)} vs {tuple(tensor.shape)})"
            )
        if _kind(state_dict[key]) != _kind(tensor):  # float16 for float32 loads; complex or bool does not
            raise CheckpointError(f"{path}: {key} holds {state_dict[key].dtype} values, not {tensor.dtype}")
    model.load_state_dict(state_dict)


def _kind(tensor: torch.Tensor) -> str:
    if tensor.is_complex():
        return "complex"
    if tensor.is_floating_point():
        return "float"
    return "bool" if tensor.dtype == torch.bool else "integer"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_kind(saved: Any, live: Any) -> bool:
    """Whether a saved hyperparameter can stand where the live optimizer or scheduler has ``live``."""
    if isinstance(live, bool) or live is None:
        return saved is None or isinstance(saved, bool) or (live is None and _is_number(saved))
    if _is_number(live) or isinstance(live, torch.Tensor):
        return _is_number(saved) or (isinstance(saved, torch.Tensor) and saved.numel() == 1)
    if isinstance(live, list | tuple):
        return isinstance(saved, list | tuple) and len(saved) == len(live)
    return isinstance(saved, type(live))


def check_optimizer_state(optimizer: torch.optim.Optimizer, saved: Any, path: str | Path) -> None:
    """One CheckpointError unless ``saved`` is a state dict this optimizer can continue from: its groups,
    their hyperparameters' types and every per-parameter tensor's shape (load_state_dict checks only the
    number of parameters, and a wrong moment tensor fails at the next step)."""

    def bad(detail: str) -> CheckpointError:
        return CheckpointError(f"{path}: optimizer state does not match ({detail})")

    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
        raise bad("not an optimizer state dict")
    groups = saved.get("param_groups")
    if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
        raise bad(f"expected {len(optimizer.param_groups)} parameter group(s)")
    params: dict[Any, torch.Tensor] = {}
    for index, (group, live) in enumerate(zip(groups, optimizer.param_groups, strict=True)):
        ids = group.get("params") if isinstance(group, dict) else None
        if not isinstance(ids, list) or len(ids) != len(live["params"]):
            raise bad(f"group {index} is not for {len(live['params'])} parameters")
        for key, value in live.items():
            if key != "params" and key in group and not _same_kind(group[key], value):
                raise bad(f"group {index}: {key} is {_a(type(group[key]).__name__)}")
        params.update(zip(ids, live["params"], strict=True))
    for param_id, entry in saved["state"].items():
        if param_id not in params or not isinstance(entry, dict):
            raise bad(f"state of an unknown parameter {param_id!r}")
        for name, value in entry.items():
            if isinstance(value, torch.Tensor) and value.ndim > 0:
                shape = params[param_id].shape
                if value.shape != shape or _kind(value) != "float":
                    raise bad(f"{name} of parameter {param_id} is {value.dtype} {tuple(value.shape)}")
            elif not (_is_number(value) or isinstance(value, torch.Tensor) or value is None):
                raise bad(f"{name} of parameter {param_id} is {_a(type(value).__name__)}")


def check_scheduler_state(scheduler: Any, saved: Any, path: str | Path) -> None:
    """One CheckpointError unless every entry of ``saved`` is one this scheduler has, of its type
    (load_state_dict copies any dict into the scheduler's attributes)."""
    live = scheduler.state_dict()
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: scheduler state is {_a(type(saved).__name__)}, not a dict")
    for key, value in saved.items():
        if key not in live or not _same_kind(value, live[key]):
            raise CheckpointError(f"{path}: scheduler state does not match (entry {shown(key)})")


def restore_model(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load the checkpoint at ``path`` into ``model`` (safely, checking its 'model' entry); return it."""
    state = load_checkpoint(path, required=("model",))
    load_model_state(model, state["model"], path)
    return state
