"""Finished tiny runs for the checkpoint and run-directory fuzzers (made once per session; each example
works on a copy)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dlrl.cli import main

REGRESSION = ["data.num_points=120", "data.test_points=100", "model.hidden_sizes=[4]", "epochs=2"]
REGRESSION += ["ensemble=2", "batch_size=32", "device=cpu", "threads=1", "figures=false"]
CLASSIFIER = ["data.limit=100", "epochs=2", "model.hidden_sizes=[8]", "batch_size=50", "device=cpu"]
CLASSIFIER += ["threads=1"]
AUTOENCODER = ["--variant", "ae", "data.limit=64", "epochs=1", "threads=1", "model.hidden_dim=8"]
AUTOENCODER += ["model.latent_dim=2", "latent.tsne=false"]
FINETUNE = ["labels=[10]", "epochs=1", "min_steps=1", "threads=1", "head_hidden=4"]
DQN = ["--seeds", "0", "--exploration", "epsilon", "--workers", "1", "total_steps=200", "learning_starts=50"]
DQN += ["buffer_size=300", "batch_size=16", "eval_every=100", "eval_episodes=1", "confirm_episodes=null"]
DQN += ["final_episodes=1", "log_every=50", "model.hidden_sizes=[8]", "checkpoint_every=null"]
DQN += ["figures=false"]  # each fuzzed --resume finishes the run: its figures were drawn at every example


def make_runs(root: Path) -> dict[str, Path]:
    """regression, classifier, autoencoder, finetune and DQN runs under ``root``, each as small as it gets."""
    runs = {name: root / name for name in ("regression", "classifier", "autoencoder", "finetune", "dqn")}
    assert main(["-q", "regression", "--out", str(runs["regression"]), *REGRESSION]) == 0
    assert main(["-q", "classify", "--out", str(runs["classifier"]), *CLASSIFIER]) == 0
    assert main(["-q", "autoencoder", "--out", str(runs["autoencoder"]), *AUTOENCODER]) == 0
    encoder = ["--encoder-run", str(runs["autoencoder"])]
    assert main(["-q", "finetune", *encoder, "--out", str(runs["finetune"]), *FINETUNE]) == 0
    assert main(["-q", "rl", "train", "--out", str(runs["dqn"]), *DQN]) == 0
    return runs


@contextmanager
def copy_of(run: Path) -> Iterator[tuple[Path, Path]]:
    """(workspace, run copy): a fresh copy of ``run`` inside a temporary workspace, removed afterwards."""
    with tempfile.TemporaryDirectory() as directory:
        workspace = Path(directory)
        copy = workspace / run.name
        shutil.copytree(run, copy)
        yield workspace, copy
