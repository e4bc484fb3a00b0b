"""The AutoEncoder experiment's parts: model per variant, data step, loss step, trainer, trained model."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dlrl.config.autoencoder import AutoEncoderConfig
from dlrl.data.batching import Batch, Batches
from dlrl.data.noise import add_noise
from dlrl.errors import CheckpointError
from dlrl.models.autoencoder import AutoEncoder
from dlrl.models.vae import VAE, vae_loss
from dlrl.rundir import RunDir
from dlrl.train.checkpoint import load_checkpoint, load_model_state
from dlrl.train.optim import make_optimization
from dlrl.train.trainer import Trainer


def build_model(cfg: AutoEncoderConfig) -> AutoEncoder | VAE:
    m = cfg.model
    if cfg.variant == "vae":
        return VAE(m.latent_dim, m.hidden_dim, m.dropout)
    return AutoEncoder(m.latent_dim, m.hidden_dim, m.dropout)


def make_transform(cfg: AutoEncoderConfig) -> Callable[[Batch, torch.Generator], Batch] | None:
    """The data step of each variant: dae -> (noisy, clean); vae -> (x, eps); ae -> none."""
    if cfg.variant == "dae":
        kind, level = cfg.noise.kind, cfg.noise.level

        def corrupt(batch: Batch, generator: torch.Generator) -> Batch:
            clean = batch[0]
            return add_noise(clean, kind, level, generator), clean

        return corrupt
    if cfg.variant == "vae":
        latent_dim = cfg.model.latent_dim

        def draw_eps(batch: Batch, generator: torch.Generator) -> Batch:
            x = batch[0]
            return x, torch.randn(len(x), latent_dim, generator=generator)

        return draw_eps
    return None


def beta_at(cfg: AutoEncoderConfig, epoch: int) -> float:
    """KL weight in (0-based) ``epoch``: linear warm-up to cfg.vae.beta over warmup_epochs."""
    warmup = cfg.vae.warmup_epochs
    if not warmup:
        return cfg.vae.beta
    return cfg.vae.beta * min(1.0, (epoch + 1) / warmup)


class KLWeight:
    """The VAE's KL weight in the epoch being trained (``beta_at``); the trainer sets the epoch."""

    def __init__(self, cfg: AutoEncoderConfig):
        self.cfg = cfg
        self.value = beta_at(cfg, 0)

    def set_epoch(self, epoch: int) -> None:
        self.value = beta_at(self.cfg, epoch)


def make_step(cfg: AutoEncoderConfig, kl_weight: KLWeight | None = None):
    """step(model, batch) -> (loss, metrics), shared by training and evaluation; the VAE's KL term is
    weighted by ``kl_weight`` in training (its warm-up) and by cfg.vae.beta without one."""
    if cfg.variant == "vae":

        def vae_step(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            x, eps = batch
            recon, mu, logvar = model(x, eps)
            weight = kl_weight.value if kl_weight is not None else cfg.vae.beta
            terms = vae_loss(recon, x, mu, logvar, weight)
            return terms.total, {
                "recon": terms.recon,
                "kl": terms.kl,
                "elbo_loss": terms.recon + terms.kl,
                "mse": F.mse_loss(recon, x),
                "beta": torch.tensor(weight),
            }

        return vae_step

    def ae_step(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, target = batch[0], batch[-1]  # dae: (noisy, clean); ae: (x,)
        recon = model(inputs)
        mse = F.mse_loss(recon, target)
        loss = mse if cfg.loss == "mse" else F.binary_cross_entropy(recon, target)
        return loss, {"mse": mse}

    return ae_step


def make_trainer(
    cfg: AutoEncoderConfig, model: nn.Module, train_x: torch.Tensor, val_x: torch.Tensor, device: torch.device
) -> Trainer:
    """The final model's trainer: the whole training split, validated on the validation split."""
    transform = make_transform(cfg)
    train_batches = Batches(
        train_x, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed, transform=transform
    )
    val_batches = (
        Batches(val_x, batch_size=1000, seed=cfg.seed + 1, transform=transform) if len(val_x) else None
    )
    optimizer, scheduler, per_batch = make_optimization(
        model.parameters(), cfg.optim, cfg.epochs, len(train_batches)
    )
    kl_weight = KLWeight(cfg)
    return Trainer(
        model,
        make_step(cfg, kl_weight),
        optimizer,
        train_batches,
        val_batches,
        device=device,
        eval_step=make_step(cfg),
        scheduler=scheduler,
        scheduler_per_batch=per_batch,
        grad_clip=cfg.optim.grad_clip,
        on_epoch_start=kl_weight.set_epoch,
    )


def load_trained(
    cfg: AutoEncoderConfig, run_dir: RunDir, device: torch.device, name: str = "best.pt"
) -> AutoEncoder | VAE:
    """Rebuild the model from ``cfg`` and load checkpoints/<name>; mismatches are CheckpointErrors."""
    path = run_dir.checkpoints / name
    state = load_checkpoint(path, required=("model",))
    if state.get("variant", cfg.variant) != cfg.variant:
        raise CheckpointError(
            f"{path}: checkpoint is a '{state['variant']}' model, config says '{cfg.variant}'"
        )
    model = build_model(cfg)
    load_model_state(model, state["model"], path)
    return model.to(device)
