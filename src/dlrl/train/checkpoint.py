"""Checkpoints: plain tensors and types only, written atomically, read with ``weights_only=True``.

Never unpickle arbitrary objects: a checkpoint carrying a pickled callable is refused, not executed.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlrl.errors import CheckpointError
from dlrl.utils import atomic_path


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` via a temporary file and a rename."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict safely; any problem is a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unsafe content"
        raise CheckpointError(f"{path}: refused to load: not a plain-tensor checkpoint ({first[:160]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({first[:160]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a checkpoint (expected a dict, got {type(state).__name__})")
    return state


def require_keys(state: dict[str, Any], keys: list[str], path: str | Path) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a dlrl checkpoint (missing {', '.join(missing)})")


def load_model_state(model: nn.Module, state_dict: Any, path: str | Path) -> None:
    """Load a state dict into ``model``; a mismatch is one line naming the first differing tensor."""
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{path}: model entry is not a state dict of tensors")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        detail = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise CheckpointError(f"{path}: checkpoint belongs to another architecture ({detail})")
    for key, tensor in expected.items():
        if state_dict[key].shape != tensor.shape:
            raise CheckpointError(
                f"{path}: checkpoint belongs to another architecture ({key}: "
                f"{tuple(state_dict[key].shape)} vs {tuple(tensor.shape)})"
            )
    model.load_state_dict(state_dict)
