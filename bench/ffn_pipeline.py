"""Per-epoch time of the same MLP trained with the tutorial pipeline and with dlrl's, side by side.

The anchor is the PyTorch "Quickstart" tutorial: ``torchvision.datasets.FashionMNIST(transform=ToTensor())``
in a ``DataLoader`` (batch 64). torchvision is not installable here, so its per-item path is re-implemented
faithfully: ``__getitem__`` takes the uint8 tensor row, ``.numpy()`` -> ``Image.fromarray(img, mode="L")``,
then ``ToTensor`` converts the PIL image back (``np.array(pic, np.uint8, copy=True)`` -> tensor, view as
HWC, permute to CHW, contiguous, ``.float().div(255)``) and the label becomes an ``int``; the default collate
stacks 64 of them. That per-item Python work is the cost dlrl's pipeline removes, so it is the baseline.

tutorial:       the faithful torchvision FashionMNIST + ToTensor path above, DataLoader (batch 64,
                shuffled, default collate), torch.optim.AdamW, fp32, the tutorial's train loop.
tutorial-tensor: (extra row) the same loader and loop over a cheaper per-item Dataset that returns rows
                of a ready float tensor (no PIL): what is left of the baseline without the PIL round trip.
tutorial-flushed: (extra row) the tutorial with subnormal floats flushed to zero, as dlrl does (below):
                what that one setting alone gives the baseline.
compute-floor:  (extra row) dlrl's step and optimizer on ONE ready batch, as many times as an epoch has
                batches: no data movement at all, so no pipeline can be faster with this arithmetic. Its
                accuracy means nothing (it sees 64 images).
dlrl-fp32:      (breakdown) dlrl's batching and loop with the tutorial's fp32 arithmetic, plain AdamW and
                subnormal floats kept: the gain of the data pipeline alone.
dlrl:           the images as one in-memory float tensor, ``dlrl.data.batching.Batches`` (batch 64, one
                seeded permutation per epoch, batches by indexing), ``dlrl.train.loop.train_one_epoch``
                with dlrl's optimizer (fused AdamW), the classifier's step (bf16 autocast where the CPU
                has native bf16) and subnormal floats flushed to zero, as every dlrl command sets it (the
                decaying Adam moments of the blank border pixels' weights turn subnormal, where x86
                arithmetic is many times slower).

Every variant trains the SAME model from the same initial weights: ``--network default`` is dlrl's default
classifier network (784-1024-1024-10, BatchNorm, ReLU, dropout 0.2); ``--network tutorial`` is the
Quickstart's own ``NeuralNetwork`` (784-512-512-10, ReLU, nothing else), built by dlrl's MLP class. Each
variant trains with plain cross-entropy and lr 1e-3 for the same number of epochs; test accuracy is
measured after each epoch (outside the timing). Prints one JSON object with wall and CPU seconds per epoch
and the speedups of dlrl over the tutorial.

    .venv/bin/python bench/ffn_pipeline.py [--epochs 2] [--network default|tutorial] [--threads 1] [--limit N]
"""

from __future__ import annotations

import copy
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from common import OneLineParser
from dlrl.config import DataConfig, OptimConfig
from dlrl.config.classifier import ClassifierConfig
from dlrl.data.batching import Batches
from dlrl.data.images import load_images
from dlrl.experiments.classifier import build_model, make_step, predict, use_bf16
from dlrl.train.optim import make_optimizer
from dlrl.train.trainer import train_one_epoch

BATCH_SIZE = 64
LR = 1e-3
NETWORKS = {
    "default": ("dlrl's default classifier network: 784-1024-1024-10, BatchNorm, ReLU, dropout 0.2", {}),
    # The PyTorch Quickstart's NeuralNetwork: Flatten, Linear(784, 512), ReLU, Linear(512, 512), ReLU,
    # Linear(512, 10).
    "tutorial": (
        "the Quickstart tutorial's network: 784-512-512-10, ReLU",
        {"hidden_sizes": [512, 512], "dropout": 0.0, "batch_norm": False},
    ),
}


def to_tensor(pic: Image.Image) -> torch.Tensor:
    """torchvision.transforms.functional.to_tensor for a PIL image of mode 'L' (torchvision 0.15+ code)."""
    img = torch.from_numpy(np.array(pic, np.uint8, copy=True))
    img = img.view(pic.size[1], pic.size[0], len(pic.getbands()))  # HWC
    img = img.permute((2, 0, 1)).contiguous()  # CHW
    return img.to(dtype=torch.get_default_dtype()).div(255)


class TutorialFashionMNIST(Dataset):
    """torchvision.datasets.FashionMNIST.__getitem__ with transform=ToTensor(): uint8 row -> PIL -> tensor."""

    def __init__(self, data: torch.Tensor, targets: torch.Tensor):
        self.data = data  # (N, 28, 28) uint8, as torchvision stores it
        self.targets = targets

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img, target = self.data[index], int(self.targets[index])
        img = Image.fromarray(img.numpy(), mode="L")
        return to_tensor(img), target


class TensorItems(Dataset):
    """The cheaper per-item Dataset: rows of a ready (N, 1, 28, 28) float tensor, no PIL."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


class SameBatch:
    """One ready batch, ``steps`` times: no data movement at all, so an epoch costs only the arithmetic."""

    def __init__(self, batch: tuple[torch.Tensor, ...], steps: int):
        self.batch, self.steps = batch, steps

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        return iter([self.batch] * self.steps)


def tutorial_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer) -> None:
    """The PyTorch tutorial's train loop."""
    model.train()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool = False) -> float:
    logits = predict(model, x, torch.device("cpu"), bf16=bf16)
    return float((logits.argmax(dim=1) == y).float().mean())


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = OneLineParser(prog="ffn_pipeline.py", description=__doc__)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per variant (default 2)")
    parser.add_argument("--dataset", default="fashion-mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument(
        "--network", default="default", choices=sorted(NETWORKS), help="which MLP every variant trains"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: stable on a busy host)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="at most N training images (smoke runs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = load_images(DataConfig(dataset=args.dataset, limit=args.limit))
    images_u8 = (data.train_x[:, 0] * 255).round().to(torch.uint8)  # the raw IDX bytes again
    torch.manual_seed(args.seed)
    description, network = NETWORKS[args.network]
    config = ClassifierConfig(model=network)  # precision as the classifier's default ('auto')
    initial = build_model(config, data.image_shape, len(data.classes))
    bf16 = use_bf16(config, torch.device("cpu"))

    results: dict[str, dict] = {}
    for variant in ("tutorial", "tutorial-tensor", "tutorial-flushed", "dlrl-fp32", "dlrl", "compute-floor"):
        model = copy.deepcopy(initial)
        torch.manual_seed(args.seed + 1)
        # dlrl's commands flush subnormal floats (dlrl.utils.configure_torch); the tutorial does not.
        torch.set_flush_denormal(variant in ("dlrl", "tutorial-flushed", "compute-floor"))
        if variant.startswith("tutorial"):
            optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
            generator = torch.Generator().manual_seed(args.seed)
            dataset = (
                TutorialFashionMNIST(images_u8, data.train_y)
                if variant != "tutorial-tensor"
                else TensorItems(data.train_x, data.train_y)
            )
            loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, generator=generator)

            def epoch(model=model, loader=loader, optimizer=optimizer) -> None:
                tutorial_epoch(model, loader, optimizer)

            variant_bf16 = False
        else:
            variant_bf16 = bf16 and variant != "dlrl-fp32"
            if variant != "dlrl-fp32":
                optimizer = make_optimizer(model.parameters(), OptimConfig(lr=LR, weight_decay=0.01))
            else:
                optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
            batches = Batches(data.train_x, data.train_y, batch_size=BATCH_SIZE, shuffle=True, seed=args.seed)
            if variant == "compute-floor":
                batches = SameBatch(next(iter(batches)), len(batches))
            step = make_step(bf16=variant_bf16)
            state = {"epoch": 0}

            def epoch(model=model, batches=batches, optimizer=optimizer, step=step, state=state) -> None:
                batches.set_epoch(state["epoch"])
                train_one_epoch(model, batches, step, optimizer, torch.device("cpu"), progress=None)
                state["epoch"] += 1

        walls, cpus, accuracies = [], [], []
        for _ in range(args.epochs):
            wall, cpu = timed(epoch)
            walls.append(round(wall, 3))
            cpus.append(round(cpu, 3))
            accuracies.append(round(accuracy(model, data.test_x, data.test_y, variant_bf16), 4))
        results[variant] = {
            "epoch_seconds": walls,
            "epoch_cpu_seconds": cpus,
            "test_accuracy": accuracies,
            "bf16": bool(variant_bf16),
        }

    def ratio(name: str, key: str, base: str = "tutorial") -> float:
        return round(float(np.mean(results[base][key]) / np.mean(results[name][key])), 2)

    def final_accuracy(name: str) -> float:
        return results[name]["test_accuracy"][-1]

    report = {
        "benchmark": "ffn_pipeline",
        "network": args.network,
        "dataset": data.dataset,
        "train_images": len(data.train_x),
        "batch_size": BATCH_SIZE,
        "epochs": args.epochs,
        "threads": args.threads,
        "model": description,
        "parameters": sum(p.numel() for p in initial.parameters()),
        "load_average_1min": round(os.getloadavg()[0], 2),
        **{
            f"{name}_epoch_seconds": round(float(np.mean(r["epoch_seconds"])), 3)
            for name, r in results.items()
        },
        **{
            f"{name}_epoch_cpu_seconds": round(float(np.mean(r["epoch_cpu_seconds"])), 3)
            for name, r in results.items()
        },
        **{f"{name}_test_accuracy": final_accuracy(name) for name in results},
        # Wall ratios depend on what else runs on the host; CPU ratios are the steadier comparison.
        "speedup_wall": ratio("dlrl", "epoch_seconds"),
        "speedup_cpu": ratio("dlrl", "epoch_cpu_seconds"),
        "speedup_cpu_over_tensor_items": ratio("dlrl", "epoch_cpu_seconds", base="tutorial-tensor"),
        "speedup_cpu_data_pipeline_only": ratio("dlrl-fp32", "epoch_cpu_seconds"),
        "speedup_cpu_over_tutorial_flushed": ratio("dlrl", "epoch_cpu_seconds", base="tutorial-flushed"),
        # The most any data pipeline could gain with dlrl's arithmetic: the tutorial over the floor.
        "speedup_cpu_upper_bound": ratio("compute-floor", "epoch_cpu_seconds"),
        "accuracy_difference_points": round(100 * (final_accuracy("dlrl") - final_accuracy("tutorial")), 2),
        "variants": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
