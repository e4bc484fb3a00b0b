"""VAE benchmark: dlrl's conv VAE beside a re-implementation of the pytorch/examples MLP VAE, same run.

Both train with Adam on the same Fashion-MNIST training images (all 60,000: data.val_size=0, like the
reference) for --epochs epochs (the reference: lr 1e-3, batch 128; ours: --lr, --batch-size, --schedule) and
are scored after every epoch on the 10,000 test images with the reference's definition: summed BCE + KL per
image, z sampled (one draw per image, fixed seed).

    .venv/bin/python bench/vae.py [--epochs 10] [--latent-dim 20] [--hidden-dim 1024] [--batch-size 32]
                                  [--limit N]

Prints one JSON object: per-epoch test losses of both models, final figures, wall and CPU seconds.
"""

from __future__ import annotations

import json
import os
import resource
import time

import torch
from torch import nn

from common import OneLineParser
from dlrl.config import DataConfig
from dlrl.data.batching import Batches
from dlrl.data.images import load_images
from dlrl.models.vae import VAE, vae_loss
from dlrl.utils import seed_everything


class ReferenceVAE(nn.Module):
    """pytorch/examples vae/main.py: 784-400-20 MLP, ReLU, sigmoid output."""

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400):
        super().__init__()
        self.encoder_hidden = nn.Linear(28 * 28, hidden_dim)
        self.mu_head = nn.Linear(hidden_dim, latent_dim)
        self.logvar_head = nn.Linear(hidden_dim, latent_dim)
        self.decoder_hidden = nn.Linear(latent_dim, hidden_dim)
        self.decoder_out = nn.Linear(hidden_dim, 28 * 28)

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None):
        h = torch.relu(self.encoder_hidden(x.reshape(len(x), -1)))  # (B, 784) -> (B, 400)
        mu, logvar = self.mu_head(h), self.logvar_head(h)
        z = mu if eps is None else mu + torch.exp(0.5 * logvar) * eps
        recon = torch.sigmoid(self.decoder_out(torch.relu(self.decoder_hidden(z))))
        return recon.reshape(x.shape), mu, logvar


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def train_and_score(
    model: nn.Module,
    train_x: torch.Tensor,
    test_x: torch.Tensor,
    epochs: int,
    latent_dim: int,
    seed: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    schedule: str = "none",
) -> dict:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = Batches(train_x, batch_size=batch_size, shuffle=True, seed=seed)
    scheduler = None
    if schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(batches))
    elif schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=epochs * len(batches)
        )
    test_eps = torch.randn(len(test_x), latent_dim, generator=torch.Generator().manual_seed(seed + 1))
    losses, kls, seconds = [], [], []
    started, cpu_started = time.perf_counter(), cpu_seconds()
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        eps_generator = torch.Generator().manual_seed(seed * 7919 + epoch)
        model.train()
        for (x,) in batches:
            eps = torch.randn(len(x), latent_dim, generator=eps_generator)
            recon, mu, logvar = model(x, eps)
            loss = vae_loss(recon, x, mu, logvar).total
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        model.eval()
        total = kl = 0.0
        with torch.no_grad():
            for start in range(0, len(test_x), 1000):
                x = test_x[start : start + 1000]
                recon, mu, logvar = model(x, test_eps[start : start + 1000])
                terms = vae_loss(recon, x, mu, logvar)
                total += terms.total.item() * len(x)
                kl += terms.kl.item() * len(x)
        losses.append(round(total / len(test_x), 2))
        kls.append(round(kl / len(test_x), 2))
        seconds.append(round(time.perf_counter() - started, 1))
    return {
        "test_loss_per_epoch": losses,
        "final_test_loss": losses[-1],
        "test_kl_per_epoch": kls,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(cpu_seconds() - cpu_started, 1),
        "elapsed_at_epoch": seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main() -> None:
    parser = OneLineParser(prog="vae.py", description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--latent-dim", type=int, default=20)
    parser.add_argument("--hidden-dim", type=int, default=1024, help="H of dlrl's conv VAE")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of dlrl's conv VAE")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate of dlrl's conv VAE")
    parser.add_argument(
        "--schedule",
        default="onecycle",
        choices=["none", "cosine", "onecycle"],
        help="learning-rate schedule of dlrl's conv VAE",
    )
    parser.add_argument("--dataset", default="fashion-mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--limit", type=int, default=None, help="at most N training images (smoke runs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_images(DataConfig(dataset=args.dataset, val_size=0, limit=args.limit))
    result = {
        "benchmark": "vae",
        "dataset": data.dataset,
        "train_images": len(data.train_x),
        "test_images": len(data.test_x),
        "epochs": args.epochs,
        "threads": args.threads,
        "loadavg_start": os.getloadavg()[0],
        "loss": "summed BCE + KL per test image (pytorch/examples definition), z sampled",
    }
    seed_everything(args.seed)
    ours = VAE(latent_dim=args.latent_dim, hidden_dim=args.hidden_dim, dropout=0.0)
    result["dlrl_conv_vae"] = {
        "latent_dim": args.latent_dim,
        "hidden_dim": args.hidden_dim,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "schedule": args.schedule,
        **train_and_score(
            ours,
            data.train_x,
            data.test_x,
            args.epochs,
            args.latent_dim,
            args.seed,
            args.batch_size,
            args.lr,
            args.schedule,
        ),
    }
    if not args.skip_reference:
        seed_everything(args.seed)
        reference = ReferenceVAE(latent_dim=args.latent_dim)
        result["reference_mlp_vae"] = {
            "latent_dim": args.latent_dim,
            "hidden_dim": 400,
            "batch_size": 128,
            "lr": 1e-3,
            **train_and_score(reference, data.train_x, data.test_x, args.epochs, args.latent_dim, args.seed),
        }
    result["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
