"""The AutoEncoder experiment's figures: curves, reconstructions, denoising, and the VAE's latent space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dlrl.config.autoencoder import AutoEncoderConfig
from dlrl.data.images import ImageData
from dlrl.data.noise import NOISE_KINDS, add_noise
from dlrl.experiments.autoencoder.evaluation import EVAL_SEED, FIGURE_IMAGES, reconstruct_all
from dlrl.models.autoencoder import AutoEncoder
from dlrl.models.vae import VAE
from dlrl.rundir import RunDir
from dlrl.viz.autoencoder import plot_image_rows, plot_manifold, plot_psnr_curves
from dlrl.viz.common import image_grid, plot_curves


def _pick_indices(labels: np.ndarray, num_classes: int, count: int) -> list[int]:
    """Test indices for figure rows: the first image of each class, then the next ones in order."""
    firsts = [int(np.flatnonzero(labels == c)[0]) for c in range(num_classes) if (labels == c).any()]
    chosen = set(firsts)
    rest = [i for i in range(min(len(labels), count + num_classes)) if i not in chosen]
    return (firsts + rest)[:count]


@torch.no_grad()
def write_figures(
    cfg: AutoEncoderConfig,
    model: AutoEncoder | VAE,
    data: ImageData,
    history: list[dict[str, float]],
    metrics: dict[str, Any],
    pca_recon: np.ndarray,
    run_dir: RunDir,
    device: torch.device,
) -> None:
    model.eval()
    groups: dict[str, Sequence[str]] = {
        "loss": ["train_loss", "val_loss"],
        "MSE per pixel": ["train_mse", "val_mse"],
    }
    run_dir.save_figure(plot_curves(history, groups), "loss_curves")
    index = _pick_indices(data.test_y.numpy(), len(data.classes), FIGURE_IMAGES)
    originals = data.test_x[index]
    rows = {
        "original": originals.numpy(),
        "reconstructed": reconstruct_all(model, originals, device).numpy(),
        f"PCA d={cfg.model.latent_dim}": pca_recon[index],
    }
    run_dir.save_figure(
        plot_image_rows(rows, f"{cfg.variant.upper()} reconstructions (test images)"), "reconstructions"
    )
    if cfg.variant == "dae":
        generator = torch.Generator().manual_seed(EVAL_SEED)
        noisy = add_noise(originals, cfg.noise.kind, cfg.noise.level, generator)
        denoised = reconstruct_all(model, noisy, device)
        run_dir.save_figure(
            plot_image_rows(
                {"noisy": noisy.numpy(), "denoised": denoised.numpy(), "clean": originals.numpy()},
                f"Denoising: {cfg.noise.kind} noise, level {cfg.noise.level:g}",
            ),
            "denoising",
        )
        table = metrics["psnr_by_level"]
        run_dir.save_figure(
            plot_psnr_curves(
                table["levels"], {k: table[k] for k in NOISE_KINDS}, (cfg.noise.kind, cfg.noise.level)
            ),
            "psnr_vs_noise",
        )
    if cfg.variant == "vae":
        run_dir.save_figure(
            plot_curves(
                history,
                {
                    "reconstruction (BCE per image)": ["train_recon", "val_recon"],
                    "KL per image": ["train_kl", "val_kl"],
                    "negative ELBO": ["train_elbo_loss", "val_elbo_loss"],
                },
            ),
            "elbo_terms",
        )
        assert isinstance(model, VAE)
        write_vae_figures(cfg, model, data, run_dir, device)


@torch.no_grad()
def write_vae_figures(
    cfg: AutoEncoderConfig, model: VAE, data: ImageData, run_dir: RunDir, device: torch.device
) -> None:
    """Samples from the prior, the decoded manifold, and an interpolation between two test images."""
    d = cfg.model.latent_dim
    generator = torch.Generator().manual_seed(EVAL_SEED)
    z = torch.randn(64, d, generator=generator)
    samples = model.decode(z.to(device)).cpu().numpy()
    run_dir.save_figure(image_grid(samples, title=f"Samples from the prior N(0, I), d={d}"), "prior_samples")
    # Grid over the first two latent dims at evenly spaced normal quantiles, the others held at 0.
    n = 15
    quantiles = torch.linspace(0.05, 0.95, n)
    values = torch.distributions.Normal(0.0, 1.0).icdf(quantiles)
    grid = torch.zeros(n * n, d)
    for row, z2 in enumerate(values.flip(0)):
        for col, z1 in enumerate(values):
            grid[row * n + col, 0] = z1
            if d > 1:
                grid[row * n + col, 1] = z2
    if d >= 2:
        manifold = model.decode(grid.to(device)).cpu().numpy()
        note = "" if d == 2 else f" (first 2 of {d} dims, others 0)"
        run_dir.save_figure(
            plot_manifold(manifold, values.numpy(), f"Decoded latent manifold{note}"), "manifold"
        )
    # Interpolate between the codes of two test images of different classes.
    labels = data.test_y
    first = 0
    second = (
        int(torch.nonzero(labels != labels[first])[0])
        if (labels != labels[first]).any()
        else min(1, len(labels) - 1)
    )
    mu, _ = model.encode(data.test_x[[first, second]].to(device))
    steps = torch.linspace(0, 1, 10, device=mu.device)[:, None]
    path = (1 - steps) * mu[0] + steps * mu[1]
    images = model.decode(path).cpu().numpy()
    titles = [f"t={t:.2f}" for t in steps.flatten().tolist()]
    run_dir.save_figure(
        image_grid(images, titles, ncols=10, title="Latent interpolation between two test images"),
        "interpolation",
    )
