"""Scoring a trained AutoEncoder: reconstructions, test metrics from fixed draws, denoising, PCA baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlrl.config.autoencoder import AutoEncoderConfig
from dlrl.data.images import ImageData
from dlrl.data.noise import NOISE_KINDS, add_noise, psnr
from dlrl.models.autoencoder import AutoEncoder
from dlrl.models.vae import VAE, vae_loss

# Seeds of the fixed draws used for scoring and figures, apart from the run seed so re-evaluation matches.
EVAL_SEED = 12345
FIGURE_IMAGES = 10


@torch.no_grad()
def encode_all(
    model: AutoEncoder | VAE, x: torch.Tensor, device: torch.device, batch_size: int = 1000
) -> torch.Tensor:
    """Codes (N, d) in eval mode: the AutoEncoder's z, the VAE's mu."""
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size].to(device)
        code = model.encode(batch)
        out.append((code[0] if isinstance(code, tuple) else code).cpu())
    return torch.cat(out)


@torch.no_grad()
def reconstruct_all(
    model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 1000
) -> torch.Tensor:
    """Deterministic reconstructions (the VAE decodes mu)."""
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        recon = model(x[start : start + batch_size].to(device))
        out.append((recon[0] if isinstance(recon, tuple) else recon).cpu())
    return torch.cat(out)


def pca_baseline(train_x: torch.Tensor, test_x: torch.Tensor, components: int) -> tuple[float, np.ndarray]:
    """(test MSE per pixel, reconstructions) of PCA(components) fitted on train_x, clipped to [0, 1]."""
    from sklearn.decomposition import PCA  # seconds to import scikit-learn: only here

    train = train_x.reshape(len(train_x), -1).numpy()
    test = test_x.reshape(len(test_x), -1).numpy()
    pca = PCA(n_components=min(components, *train.shape), svd_solver="full", random_state=0).fit(train)
    recon = np.clip(pca.inverse_transform(pca.transform(test)), 0.0, 1.0)
    return float(np.mean((recon - test) ** 2)), recon.reshape(test_x.shape)


@torch.no_grad()
def test_metrics(
    cfg: AutoEncoderConfig, model: nn.Module, data: ImageData, device: torch.device
) -> dict[str, Any]:
    """Test metrics from fixed draws (seeded apart from the run), so re-evaluation reproduces them."""
    model.eval()
    x = data.test_x
    recon = reconstruct_all(model, x, device)
    metrics: dict[str, Any] = {
        "test_mse": float(F.mse_loss(recon, x)),
        "test_bce": float(F.binary_cross_entropy(recon, x)),
    }
    generator = torch.Generator().manual_seed(EVAL_SEED)
    if cfg.variant == "vae":
        eps = torch.randn(len(x), cfg.model.latent_dim, generator=generator)
        totals = {"recon": 0.0, "kl": 0.0}
        for start in range(0, len(x), 1000):
            batch = x[start : start + 1000].to(device)
            sampled, mu, logvar = model(batch, eps[start : start + 1000].to(device))
            terms = vae_loss(sampled, batch, mu, logvar)
            totals["recon"] += terms.recon.item() * len(batch)
            totals["kl"] += terms.kl.item() * len(batch)
        metrics["test_recon"] = totals["recon"] / len(x)
        metrics["test_kl"] = totals["kl"] / len(x)
        # Summed BCE + KL per image: the pytorch/examples VAE test loss.
        metrics["test_loss"] = metrics["test_recon"] + metrics["test_kl"]
    if cfg.variant == "dae":
        metrics.update(denoising_metrics(cfg, model, x, device))
    return metrics


@torch.no_grad()
def denoising_metrics(
    cfg: AutoEncoderConfig, model: nn.Module, x: torch.Tensor, device: torch.device
) -> dict[str, Any]:
    """PSNR of noisy and denoised test images at the trained level, and per level for every noise kind."""
    levels = cfg.noise.psnr_levels
    table: dict[str, dict[str, list[float]]] = {}
    for kind in NOISE_KINDS:
        table[kind] = {"noisy": [], "denoised": []}
        for level in levels:
            noisy = add_noise(x, kind, level, torch.Generator().manual_seed(EVAL_SEED))
            denoised = reconstruct_all(model, noisy, device)
            table[kind]["noisy"].append(float(psnr(x, noisy).clamp(max=100).mean()))
            table[kind]["denoised"].append(float(psnr(x, denoised).clamp(max=100).mean()))
    noisy = add_noise(x, cfg.noise.kind, cfg.noise.level, torch.Generator().manual_seed(EVAL_SEED))
    denoised = reconstruct_all(model, noisy, device)
    return {
        "test_psnr_noisy": float(psnr(x, noisy).clamp(max=100).mean()),
        "test_psnr_denoised": float(psnr(x, denoised).clamp(max=100).mean()),
        "test_mse_denoised": float(F.mse_loss(denoised, x)),
        "psnr_by_level": {"levels": list(levels), **table},
    }
