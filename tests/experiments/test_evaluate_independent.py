"""`dlrl evaluate RUN` against a recomputation that shares no evaluation code with dlrl: the checkpoint is
read with torch.load, the network's forward pass written out here in numpy (regression, classifier) or the
model rebuilt from its class and scored with plain tensor operations (autoencoder, fine-tuning), on the test
split, and the result must equal both what `dlrl evaluate` prints and what the run wrote into summary.json.
(The tests these replace compared `dlrl evaluate` with a summary.json written by the same function.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dlrl.cli import main
from dlrl.config import DataConfig
from dlrl.data.images import load_images
from dlrl.data.regression import synthetic


def _evaluate(run: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["-q", "evaluate", str(run)]) == 0
    return json.loads(capsys.readouterr().out)


def _weights(path: Path) -> dict[str, np.ndarray]:
    state = torch.load(path, map_location="cpu", weights_only=True)["model"]
    return {name: tensor.double().numpy() for name, tensor in state.items()}


def _config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


# ------------------------------------------------------------------------------------------ regression


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("regression") / "run"
    args = ["data.num_points=200", "data.test_points=300", "model.hidden_sizes=[8,8]", "epochs=5"]
    args += ["ensemble=0", "device=cpu", "threads=1", "figures=false"]
    assert main(["-q", "regression", "--out", str(out), *args]) == 0
    return out


def test_regression_test_mse_recomputed_from_the_checkpoint(regression_run: Path, capsys) -> None:
    cfg = _config(regression_run)
    assert (
        cfg["model"]["activation"] == "tanh" and cfg["model"]["dropout"] == 0
    )  # what the forward below does
    d = cfg["data"]
    data = synthetic(d["num_points"], d["noise_std"], d["val_fraction"], d["test_points"], d["split_seed"])
    w = _weights(regression_run / "checkpoints" / "best.pt")
    # standardise with the training part's mean and (population) std, as the run trained
    x_mean, x_std = data.train_x.mean(), data.train_x.std()
    y_mean, y_std = data.train_y.mean(), data.train_y.std()
    h = ((data.test_x - x_mean) / x_std)[:, None]  # (N, 1)
    layer = 0
    while f"hidden.{layer}.0.weight" in w:
        h = np.tanh(h @ w[f"hidden.{layer}.0.weight"].T + w[f"hidden.{layer}.0.bias"])
        layer += 1
    prediction = (h @ w["head.weight"].T + w["head.bias"])[:, 0] * y_std + y_mean
    test_mse = float(np.mean((prediction - data.test_y) ** 2))
    noise_var = d["noise_std"] ** 2

    evaluated = _evaluate(regression_run, capsys)
    summary = json.loads((regression_run / "summary.json").read_text())
    for result in (evaluated, summary):
        assert result["test_mse"] == pytest.approx(test_mse, rel=1e-5)
        assert result["test_mse_over_noise_var"] == pytest.approx(test_mse / noise_var, rel=1e-5)


# ------------------------------------------------------------------------------------------ classifier


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("classifier") / "run"
    args = [
        "data.limit=300",
        "epochs=2",
        "model.hidden_sizes=[16]",
        "batch_size=64",
        "device=cpu",
        "threads=1",
    ]
    args += ["precision=fp32", "figures=false"]  # the one-pixel test-time shifts stay on: recomputed below
    assert main(["-q", "classify", "--out", str(out), *args]) == 0
    return out


def _shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Images (N, H, W) moved down by dy and right by dx pixels, zero-filled."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_classifier_test_accuracy_recomputed_from_the_checkpoint(classifier_run: Path, capsys) -> None:
    cfg = _config(classifier_run)
    model, augment = cfg["model"], cfg["augment"]
    assert model["activation"] == "relu" and model["batch_norm"] and not cfg["ema_decay"]
    assert augment["max_shift"] > 0 and augment["test_shift"] and cfg["data"]["dataset"] == "mnist"
    summary = json.loads((classifier_run / "summary.json").read_text())
    w = _weights(classifier_run / "checkpoints" / f"{summary['tested_checkpoint']}.pt")
    test = load_images(DataConfig(**cfg["data"]))
    images, labels = test.test_x[:, 0].double().numpy(), test.test_y.numpy()

    def logits(x: np.ndarray) -> np.ndarray:
        h = x.reshape(len(x), -1)
        linear = sorted({int(k.split(".")[1]) for k in w if k.endswith(".weight") and w[k].ndim == 2})
        for index in linear[:-1]:  # Linear (no bias) -> BatchNorm1d (eval) -> ReLU
            h = h @ w[f"net.{index}.weight"].T
            bn = f"net.{index + 1}"
            h = (h - w[f"{bn}.running_mean"]) / np.sqrt(w[f"{bn}.running_var"] + 1e-5)
            h = np.maximum(h * w[f"{bn}.weight"] + w[f"{bn}.bias"], 0.0)
        return h @ w[f"net.{linear[-1]}.weight"].T + w[f"net.{linear[-1]}.bias"]

    views = [images] + [_shifted(images, dy, dx) for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    predicted = (sum(logits(v) for v in views) / len(views)).argmax(axis=1)
    accuracy = float((predicted == labels).mean())
    single = float((logits(images).argmax(axis=1) == labels).mean())

    evaluated = _evaluate(classifier_run, capsys)
    for result in (evaluated, summary):
        assert result["test_accuracy"] == pytest.approx(accuracy, abs=1e-9)
        assert result["test_accuracy_single_view"] == pytest.approx(single, abs=1e-9)


# ---------------------------------------------------------------------------------- autoencoder, finetune


@pytest.fixture(scope="module")
def ae_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ae")
    args = [
        "data.limit=200",
        "epochs=1",
        "threads=1",
        "model.hidden_dim=16",
        "latent.tsne=false",
        "device=cpu",
        "figures=false",
    ]
    assert main(["-q", "autoencoder", "--variant", "ae", "--out", str(root / "ae"), *args]) == 0
    ft = ["labels=[20]", "epochs=1", "min_steps=2", "threads=1", "device=cpu"]
    assert main(["-q", "finetune", "--encoder-run", str(root / "ae"), "--out", str(root / "ft"), *ft]) == 0
    return {"ae": root / "ae", "ft": root / "ft"}


def test_autoencoder_test_mse_recomputed_from_the_checkpoint(ae_runs: dict[str, Path], capsys) -> None:
    from dlrl.models.autoencoder import AutoEncoder

    run = ae_runs["ae"]
    cfg = _config(run)
    model = AutoEncoder(cfg["model"]["latent_dim"], cfg["model"]["hidden_dim"], cfg["model"]["dropout"])
    model.load_state_dict(torch.load(run / "checkpoints" / "best.pt", weights_only=True)["model"])
    model.eval()
    x = load_images(DataConfig(**cfg["data"])).test_x
    with torch.no_grad():
        squared = sum(
            float(((model(x[i : i + 500]) - x[i : i + 500]) ** 2).sum()) for i in range(0, len(x), 500)
        )
    test_mse = squared / x.numel()

    evaluated = _evaluate(run, capsys)
    summary = json.loads((run / "summary.json").read_text())
    for result in (evaluated, summary):
        assert result["test_mse"] == pytest.approx(test_mse, rel=1e-5)


def test_finetune_accuracies_recomputed_from_the_checkpoints(ae_runs: dict[str, Path], capsys) -> None:
    from dlrl.models.autoencoder import AutoEncoder, EncoderClassifier

    run = ae_runs["ft"]
    ae_cfg = _config(ae_runs["ae"])
    ft_cfg = _config(run)
    test = load_images(DataConfig(**ae_cfg["data"]))
    recomputed = {}
    for path in sorted((run / "checkpoints").glob("*-*.pt")):
        state = torch.load(path, weights_only=True)
        encoder = AutoEncoder(ae_cfg["model"]["latent_dim"], ae_cfg["model"]["hidden_dim"]).encoder
        model = EncoderClassifier(encoder, ae_cfg["model"]["latent_dim"], 10, ft_cfg["head_hidden"])
        model.load_state_dict(state["model"])
        model.eval()
        with torch.no_grad():
            predicted = model(test.test_x).argmax(dim=1)
        correct = int((predicted == test.test_y).sum())
        recomputed[f"accuracy_{state['mode']}_{state['labels']}"] = correct / len(test.test_y)
    assert set(recomputed) == {f"accuracy_{m}_20" for m in ("frozen", "finetuned", "scratch")}

    evaluated = _evaluate(run, capsys)
    summary = json.loads((run / "summary.json").read_text())
    for key, accuracy in recomputed.items():
        assert evaluated[key] == pytest.approx(accuracy, abs=1e-9)
        assert summary[key] == pytest.approx(accuracy, abs=1e-9)
