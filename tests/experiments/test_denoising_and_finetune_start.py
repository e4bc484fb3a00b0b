"""What the denoising AutoEncoder and fine-tuning claim, checked where it can fail:

- the DAE's denoised test images are closer to the clean ones than the noisy input was (PSNR above the
  noisy PSNR at the trained noise level and at stronger levels), recomputed here from the checkpoint (the
  test this replaces checked only that more noise lowers the noisy PSNR, a property of the noise);
- the frozen and fine-tuned classifiers start from the AutoEncoder's trained encoder (AE and VAE: its mu
  path), the from-scratch one from fresh weights, and the frozen encoder is still the AutoEncoder's after
  training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from dlrl.cli import main
from dlrl.config import DataConfig
from dlrl.data.images import load_images
from dlrl.data.noise import add_noise

TINY = ["threads=1", "device=cpu", "model.hidden_dim=16", "latent.tsne=false", "figures=false"]


@pytest.fixture(scope="module")
def dae_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dae") / "run"
    args = ["data.limit=2000", "epochs=3", "batch_size=32", "optim.lr=4e-3", "model.hidden_dim=32"]
    args += [
        "noise.kind=gaussian",
        "noise.level=0.4",
        "noise.psnr_levels=[0.4,0.6]",
        "threads=1",
        "device=cpu",
        "figures=false",
    ]
    assert main(["-q", "autoencoder", "--variant", "dae", "--out", str(out), "latent.tsne=false", *args]) == 0
    return out


def _psnr(clean: torch.Tensor, other: torch.Tensor) -> float:
    """Mean over images of 10 log10(1 / per-image MSE), capped at 100 dB."""
    mse = ((clean - other) ** 2).flatten(1).mean(dim=1)
    return float((10 * torch.log10(1 / mse)).clamp(max=100).mean())


def test_the_dae_denoises_recomputed_from_its_checkpoint(dae_run: Path) -> None:
    from dlrl.models.autoencoder import AutoEncoder

    cfg = yaml.safe_load((dae_run / "config.yaml").read_text())
    model = AutoEncoder(cfg["model"]["latent_dim"], cfg["model"]["hidden_dim"], cfg["model"]["dropout"])
    model.load_state_dict(torch.load(dae_run / "checkpoints" / "best.pt", weights_only=True)["model"])
    model.eval()
    data = load_images(DataConfig(**cfg["data"]))
    clean = data.test_x
    # What an output that ignores its input scores: the mean training image. Denoising must beat it too.
    blind = _psnr(clean, data.train_x.mean(dim=0, keepdim=True).expand_as(clean))
    summary = json.loads((dae_run / "summary.json").read_text())
    for level in (0.4, 0.6):  # the trained level and a stronger one
        noisy = add_noise(clean, "gaussian", level, torch.Generator().manual_seed(12345))
        with torch.no_grad():
            denoised = model(noisy)
        noisy_psnr, denoised_psnr = _psnr(clean, noisy), _psnr(clean, denoised)
        assert denoised_psnr > max(noisy_psnr + 1.0, blind), (level, noisy_psnr, denoised_psnr, blind)
        if level == cfg["noise"]["level"]:
            assert summary["test_psnr_noisy"] == pytest.approx(noisy_psnr, abs=1e-4)
            assert summary["test_psnr_denoised"] == pytest.approx(denoised_psnr, abs=1e-4)
    assert not list(dae_run.glob("figures/*.png")) and "tsne_points" not in summary  # figures=false
    table = summary["psnr_by_level"]
    for index in range(len(table["levels"])):
        assert table["gaussian"]["denoised"][index] > table["gaussian"]["noisy"][index]


@pytest.fixture(scope="module")
def encoder_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("encoders")
    for variant in ("ae", "vae"):
        args = ["data.limit=200", "epochs=1", "model.latent_dim=4"]
        assert (
            main(["-q", "autoencoder", "--variant", variant, "--out", str(root / variant), *TINY, *args]) == 0
        )
    return {"ae": root / "ae", "vae": root / "vae"}


def _encoder_weights(checkpoint: Path, variant: str) -> dict[str, torch.Tensor]:
    """The trained encoder's parameters in the AutoEncoder's checkpoint, named as the classifier names them
    under 'encoder.' (the VAE: its trunk, hidden layer and mu head, not the logvar head)."""
    state = torch.load(checkpoint, weights_only=True)["model"]
    if variant == "ae":
        return {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    parts = ("trunk.", "hidden.", "mu_head.")
    return {k: v for k, v in state.items() if k.startswith(parts)}


@pytest.mark.parametrize("variant", ["ae", "vae"])
def test_frozen_and_finetuned_start_from_the_autoencoder_and_scratch_does_not(
    encoder_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    from dlrl.experiments import finetune

    started: dict[str, dict[str, torch.Tensor]] = {}
    original = finetune.train_classifier

    def recording(model, cfg, x, y, seed, device, encoder_lr_factor=1.0):
        mode = "frozen" if model.freeze_encoder else "finetuned" if encoder_lr_factor != 1.0 else "scratch"
        started[mode] = {k: v.clone() for k, v in model.encoder.state_dict().items()}
        return original(model, cfg, x, y, seed, device, encoder_lr_factor)

    monkeypatch.setattr(finetune, "train_classifier", recording)
    out = tmp_path / "ft"
    ft = ["labels=[30]", "epochs=1", "min_steps=5", "threads=1", "device=cpu", "encoder_lr_factor=0.1"]
    assert main(["-q", "finetune", "--encoder-run", str(encoder_runs[variant]), "--out", str(out), *ft]) == 0

    trained = _encoder_weights(encoder_runs[variant] / "checkpoints" / "best.pt", variant)
    assert set(started) == {"frozen", "finetuned", "scratch"}
    for mode, weights in started.items():
        assert set(weights) == set(trained), (mode, sorted(weights), sorted(trained))
        same = [torch.equal(weights[k], trained[k]) for k in trained if trained[k].is_floating_point()]
        if mode == "scratch":
            assert not any(same[i] for i, k in enumerate(trained) if k.endswith("weight")), mode
        else:
            assert all(same), mode
    # Frozen stays the AutoEncoder's encoder; fine-tuned moved away from it.
    after = {}
    for mode in ("frozen", "finetuned"):
        state = torch.load(out / "checkpoints" / f"{mode}-30.pt", weights_only=True)["model"]
        after[mode] = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    float_keys = [k for k in trained if trained[k].is_floating_point()]
    assert all(torch.equal(after["frozen"][k], trained[k]) for k in float_keys)
    assert not all(torch.equal(after["finetuned"][k], trained[k]) for k in float_keys)
