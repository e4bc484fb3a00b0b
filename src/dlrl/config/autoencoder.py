"""Configs of Part 2: the convolutional AutoEncoder (variants ae, dae, vae) and encoder fine-tuning."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from dlrl.config.base import Config, DataConfig, ExperimentConfig, OptimConfig


class AEModelConfig(Config):
    latent_dim: int = Field(10, gt=0)
    """Encoded-space dimension d."""
    hidden_dim: int = Field(128, gt=0)
    """Width H of the hidden linear layer between the conv trunk and the code."""
    dropout: float = Field(0.1, ge=0, lt=1)
    """Dropout in the encoder's conv trunk."""


class NoiseConfig(Config):
    kind: Literal["gaussian", "salt_pepper", "mask"] = "gaussian"
    """Noise model of the denoising AutoEncoder: gaussian (sigma), salt_pepper or mask (probability)."""
    level: float = 0.3
    """Noise level: gaussian sigma or per-pixel probability, in [0, 1]."""
    psnr_levels: list[float] = Field(default_factory=lambda: [0.1, 0.2, 0.3, 0.5, 0.7])
    """Levels at which PSNR of noisy vs denoised images is measured (each in [0, 1])."""

    @model_validator(mode="after")
    def _levels_in_range(self) -> NoiseConfig:
        # Same range as dlrl.data.noise.check_level (config sits above data, so it is restated here).
        name = "sigma" if self.kind == "gaussian" else "probability"
        for key, level in [("level", self.level), *(("psnr_levels", v) for v in self.psnr_levels)]:
            if not 0.0 <= level <= 1.0:
                raise ValueError(
                    f"noise.{key}: {self.kind} noise level ({name}) must be in [0, 1], got {level}"
                )
        return self


class VAEOptions(Config):
    beta: float = Field(1.0, ge=0)
    """Weight of the KL term (beta-VAE; 1 is the plain negative ELBO)."""
    warmup_epochs: int = Field(0, ge=0)
    """Ramp beta linearly from beta/warmup_epochs to beta over this many epochs (0: no warm-up)."""


class LatentConfig(Config):
    tsne: bool = True
    """Embed the test encodings with t-SNE (PCA 2-D is always drawn)."""
    tsne_samples: int = Field(10000, gt=0)
    """Embed at most this many test encodings."""
    tsne_method: Literal["auto", "opentsne", "sklearn"] = "auto"
    """t-SNE: openTSNE (FFT gradients), scikit-learn (Barnes-Hut), auto: sklearn below 10,000 points."""
    n_jobs: int = Field(2, gt=0)
    """Threads for t-SNE (the machine's core count is a good value)."""


class AutoEncoderConfig(ExperimentConfig):
    experiment: Literal["autoencoder"] = "autoencoder"
    """Which experiment this config is for."""
    variant: Literal["ae", "dae", "vae"] = "ae"
    """ae: AutoEncoder; dae: denoising AutoEncoder (noisy -> clean); vae: variational AutoEncoder."""
    data: DataConfig = DataConfig()
    """Dataset and split."""
    model: AEModelConfig = AEModelConfig()
    """Architecture hyperparameters (the layers themselves are fixed)."""
    optim: OptimConfig = OptimConfig(lr=2e-3, optimizer="adamw", schedule="cosine")
    """Optimizer and schedule."""
    epochs: int = Field(15, gt=0)
    """Training epochs (per fold, and for the final model)."""
    batch_size: int = Field(64, gt=0)
    """Mini-batch size."""
    loss: Literal["mse", "bce"] = "bce"
    """Reconstruction loss of ae/dae, mean per pixel (vae always uses BCE summed per image)."""
    noise: NoiseConfig = NoiseConfig()
    """Noise of the denoising AutoEncoder (variant dae)."""
    vae: VAEOptions = VAEOptions()
    """VAE objective (variant vae)."""
    folds: int | None = Field(None, ge=2)
    """K-fold cross validation on the training split before the final model (None: no CV)."""
    patience: int | None = Field(None, gt=0)
    """Stop after this many epochs without validation improvement (None: never)."""
    latent: LatentConfig = LatentConfig()
    """Latent-space analysis: t-SNE and PCA of the test encodings."""
    figures: bool = True
    """Write the figures (false: metrics only, and no latent-space analysis: its results are figures)."""

    # Enough steps that the three variants learn something (batch 32, whole sample); one torch thread: these
    # small convolutions gain little from a second one and lose much when the cores are shared.
    QUICK: ClassVar[dict[str, Any]] = {
        "epochs": 3,
        "batch_size": 32,
        "optim.lr": 4e-3,
        "data.limit": 8000,
        "latent.tsne_samples": 1000,
        "threads": 1,
    }


class FinetuneConfig(ExperimentConfig):
    experiment: Literal["finetune"] = "finetune"
    """Which experiment this config is for."""
    encoder_run: str | None = None
    """AutoEncoder run whose encoder is fine-tuned (relative: from the cwd, else beside this run)."""
    labels: list[int | Literal["all"]] = Field(default_factory=lambda: [100, 1000, "all"])  # type: ignore[arg-type]
    """Numbers of labelled training images (class-balanced subsets), or 'all'."""
    head_hidden: int = Field(64, ge=0)
    """Hidden width of the classifier head on the code (0: a single linear layer)."""
    epochs: int = Field(10, gt=0)
    """Epochs over the labelled subset (at least min_steps optimizer steps are taken)."""
    min_steps: int = Field(300, ge=0)
    """Minimum optimizer steps per training, so 100 labels still get a real budget."""
    batch_size: int = Field(64, gt=0)
    """Mini-batch size."""
    optim: OptimConfig = OptimConfig(lr=1e-3, weight_decay=1e-4, schedule="onecycle")
    """Optimizer of every training (frozen, fine-tuned, from scratch)."""
    encoder_lr_factor: float = Field(1.0, gt=0)
    """Learning rate of the pretrained encoder relative to the head's when fully fine-tuned."""

    @field_validator("labels")
    @classmethod
    def _positive(cls, labels: list[int | str]) -> list[int | str]:
        if not labels:
            raise ValueError("give at least one label count")
        if any(isinstance(n, int) and n <= 0 for n in labels):
            raise ValueError("label counts must be positive (or 'all')")
        return labels

    QUICK: ClassVar[dict[str, Any]] = {"epochs": 2, "min_steps": 60, "labels": [100, 1000], "threads": 1}


__all__ = ["AEModelConfig", "AutoEncoderConfig", "FinetuneConfig", "NoiseConfig"]
