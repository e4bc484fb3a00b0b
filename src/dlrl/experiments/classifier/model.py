"""The classifier experiment's parts: the network (with an optional weight average), precision, the
loss step, augmentation, test-time views, prediction, the trainer, the architecture table."""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlrl.config.classifier import ClassifierConfig
from dlrl.data.augment import random_hflip, random_shift, translate
from dlrl.data.batching import Batch, Batches
from dlrl.data.images import ImageData
from dlrl.models.mlp import MLPClassifier, WeightEMA
from dlrl.train.optim import make_optimization
from dlrl.train.trainer import Trainer

log = logging.getLogger(__name__)


def build_model(cfg: ClassifierConfig, image_shape: tuple[int, ...], num_classes: int) -> MLPClassifier:
    m = cfg.model
    return MLPClassifier(
        image_shape, num_classes, m.hidden_sizes, m.activation, m.dropout, m.input_dropout, m.batch_norm
    )


def build_network(cfg: ClassifierConfig, image_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The MLP, wrapped with a moving average of its weights when ``cfg.ema_decay`` is set."""
    model = build_model(cfg, image_shape, num_classes)
    return WeightEMA(model, cfg.ema_decay) if cfg.ema_decay else model


def live_model(network: nn.Module) -> MLPClassifier:
    return network.model if isinstance(network, WeightEMA) else network  # type: ignore[return-value]


def native_bf16() -> bool:
    """The CPU computes bf16 itself (AVX512-BF16 or AMX); elsewhere torch emulates it, slower than fp32."""
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return native is not None and bool(native())


def use_bf16(cfg: ClassifierConfig, device: torch.device) -> bool:
    """bf16 autocast for the matmuls: as asked, or 'auto': on CUDA and on CPUs with native bf16."""
    if cfg.precision != "auto":
        return cfg.precision == "bf16"
    if device.type == "cuda":
        return True
    return device.type == "cpu" and native_bf16()


def make_step(label_smoothing: float = 0.0, bf16: bool = False):
    def step(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, y = batch
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        logits = logits.float()
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        accuracy = (logits.argmax(dim=1) == y).float().mean()
        return loss, {"accuracy": accuracy}

    return step


def hflip_enabled(cfg: ClassifierConfig) -> bool:
    """Horizontal flips: as configured, or by default only for Fashion-MNIST (a mirrored digit is wrong)."""
    return cfg.augment.hflip if cfg.augment.hflip is not None else cfg.data.dataset == "fashion-mnist"


def make_augment(cfg: ClassifierConfig):
    hflip = hflip_enabled(cfg)
    if not cfg.augment.max_shift and not hflip:
        return None

    def augment(batch: Batch, generator: torch.Generator) -> Batch:
        x, y = batch
        x = random_shift(x, cfg.augment.max_shift, generator)
        if hflip:
            x = random_hflip(x, generator)
        return x, y

    return augment


ONE_PIXEL = ((-1, 0), (1, 0), (0, -1), (0, 1))


def prediction_views(x: torch.Tensor, mirror: bool = False, shift: bool = False) -> list[torch.Tensor]:
    """The images whose predictions are averaged at test time: ``x``; with ``shift`` also ``x`` moved one
    pixel up, down, left and right; with ``mirror`` also the mirror image of each of those."""
    views = [x]
    if shift:
        views += [translate(x, dy, dx) for dy, dx in ONE_PIXEL]
    if mirror:
        views += [view.flip(-1) for view in views]
    return views


@torch.no_grad()
def predict(
    model: nn.Module,
    x: torch.Tensor,
    device: torch.device,
    batch_size: int = 2048,
    bf16: bool = False,
    mirror: bool = False,
    shift: bool = False,
) -> torch.Tensor:
    """Logits for all of ``x``, in eval mode, averaged over ``prediction_views`` (one view unless asked)."""
    model.eval()
    outputs = []
    for i in range(0, len(x), batch_size):
        views = prediction_views(x[i : i + batch_size].to(device), mirror, shift)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = sum(model(view).float() for view in views) / len(views)
        outputs.append(logits.cpu())
    return torch.cat(outputs)


def architecture_layers(model: MLPClassifier) -> list[tuple[str, str, int]]:
    """(name, output shape, parameters) per block, for the diagram: Linear+BN+act+dropout count as one."""
    layers = [("Input", "x".join(map(str, model.input_shape)), 0)]
    for module in model.net:
        if isinstance(module, nn.Linear):
            layers.append(("Linear", f"{module.out_features}", sum(p.numel() for p in module.parameters())))
        elif isinstance(module, nn.BatchNorm1d):
            name, shape, params = layers[-1]
            layers[-1] = (name + "+BN", shape, params + sum(p.numel() for p in module.parameters()))
        elif isinstance(module, nn.ReLU | nn.GELU | nn.SiLU | nn.Tanh):
            name, shape, params = layers[-1]
            layers[-1] = (f"{name}+{type(module).__name__}", shape, params)
        elif isinstance(module, nn.Dropout):
            name, shape, params = layers[-1]
            layers[-1] = (name, f"{shape}, dropout {module.p:g}", params)
        elif isinstance(module, nn.Flatten):
            layers.append(("Flatten", str(int(np.prod(model.input_shape))), 0))
    name, shape, params = layers[-1]
    layers[-1] = ("Linear (logits)", shape, params)
    return layers


def training_batches(cfg: ClassifierConfig, data: ImageData) -> Batches:
    """The training split in shuffled, augmented batches seeded by the run (training's and the timing's)."""
    return Batches(
        data.train_x,
        data.train_y,
        batch_size=cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        transform=make_augment(cfg),
    )


def make_trainer(cfg: ClassifierConfig, model: nn.Module, data: ImageData, device: torch.device) -> Trainer:
    """The network's trainer on the training split (augmented), validated on the validation split."""
    train_batches = training_batches(cfg, data)
    optimizer, scheduler, per_batch = make_optimization(
        live_model(model).parameters(), cfg.optim, cfg.epochs, len(train_batches)
    )
    if isinstance(model, WeightEMA):
        # Validation (so best.pt) and test use the averaged weights; they are part of every checkpoint.
        optimizer.register_step_post_hook(lambda *_: model.update())
    bf16 = use_bf16(cfg, device)
    return Trainer(
        model,
        make_step(cfg.label_smoothing, bf16),
        optimizer,
        train_batches,
        Batches(data.val_x, data.val_y, batch_size=1024),
        device=device,
        eval_step=make_step(bf16=bf16),
        scheduler=scheduler,
        scheduler_per_batch=per_batch,
        grad_clip=cfg.optim.grad_clip,
    )


def prediction_options(cfg: ClassifierConfig) -> dict[str, bool]:
    """``predict``'s ``mirror`` and ``shift`` for the test prediction (see ``prediction_views``)."""
    return {
        "mirror": hflip_enabled(cfg) and cfg.augment.test_hflip,
        "shift": cfg.augment.max_shift > 0 and cfg.augment.test_shift,
    }


def prediction_view_count(cfg: ClassifierConfig) -> int:
    """How many views of each test image the final prediction averages."""
    views = prediction_options(cfg)
    return (5 if views["shift"] else 1) * (2 if views["mirror"] else 1)
