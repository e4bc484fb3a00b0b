"""Per-epoch time of the same MLP trained with the tutorial pipeline and with dlrl's, side by side.

tutorial: a per-item torch ``Dataset`` that turns each uint8 image into a PIL image and then a float tensor
          (what torchvision's FashionMNIST + ToTensor do), ``torch.utils.data.DataLoader`` (batch 64,
          shuffled, default collate), AdamW, fp32, the tutorial's train loop.
dlrl:     the images as one in-memory float tensor, ``dlrl.data.batching.Batches`` (batch 64, one seeded
          permutation per epoch, batches by indexing), ``dlrl.train.loop.train_one_epoch`` with dlrl's
          optimizer (fused AdamW) and the classifier's step (bf16 autocast where the CPU has native bf16).
dlrl-fp32 (breakdown): dlrl's batching and loop but the tutorial's fp32 arithmetic and plain AdamW, to
          show how much of the gain is the data pipeline alone.

All variants start from the same initial weights and train the tutorial's model (784-512-512-10, ReLU)
for the same number of epochs; test accuracy is measured after each epoch. Prints one JSON object.

    .venv/bin/python bench/ffn_pipeline.py [--epochs 2] [--dataset fashion-mnist] [--threads 1]
"""

from __future__ import annotations

import argparse
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

from dlrl.config import DataConfig, OptimConfig
from dlrl.config.classifier import ClassifierConfig
from dlrl.data.batching import Batches
from dlrl.data.images import load_images
from dlrl.experiments.classifier import make_step, predict, use_bf16
from dlrl.models.mlp import MLPClassifier
from dlrl.train.loop import make_optimizer, train_one_epoch

BATCH_SIZE = 64
LR = 1e-3


class TutorialDataset(Dataset):
    """One image at a time: uint8 array -> PIL image -> float tensor in [0, 1] (torchvision's ToTensor)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images = images  # (N, 28, 28) uint8
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.images[index], mode="L")
        x = torch.from_numpy(np.array(image, dtype=np.uint8)).unsqueeze(0).float().div(255)  # (1, 28, 28)
        return x, int(self.labels[index])


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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=2, help="epochs per variant (default 2)")
    parser.add_argument("--dataset", default="fashion-mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: stable on a busy host)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = load_images(DataConfig(dataset=args.dataset))
    images_u8 = (data.train_x[:, 0] * 255).round().to(torch.uint8).numpy()  # the raw IDX bytes again
    labels = data.train_y.numpy()
    torch.manual_seed(args.seed)
    initial = MLPClassifier(data.image_shape, len(data.classes), [512, 512])
    bf16 = use_bf16(ClassifierConfig(), torch.device("cpu"))  # the classifier's default ('auto')

    results: dict[str, dict] = {}
    for variant in ("tutorial", "dlrl-fp32", "dlrl"):
        model = copy.deepcopy(initial)
        torch.manual_seed(args.seed + 1)
        if variant == "tutorial":
            optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
            generator = torch.Generator().manual_seed(args.seed)
            loader = DataLoader(
                TutorialDataset(images_u8, labels), batch_size=BATCH_SIZE, shuffle=True, generator=generator
            )

            def epoch(model=model, loader=loader, optimizer=optimizer) -> None:
                tutorial_epoch(model, loader, optimizer)

            variant_bf16 = False
        else:
            variant_bf16 = bf16 and variant == "dlrl"
            if variant == "dlrl":
                optimizer = make_optimizer(model.parameters(), OptimConfig(lr=LR, weight_decay=0.01))
            else:
                optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
            batches = Batches(data.train_x, data.train_y, batch_size=BATCH_SIZE, shuffle=True, seed=args.seed)
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

    def ratio(name: str, key: str) -> float:
        return round(float(np.mean(results["tutorial"][key]) / np.mean(results[name][key])), 2)

    report = {
        "dataset": data.dataset,
        "train_images": len(data.train_x),
        "batch_size": BATCH_SIZE,
        "epochs": args.epochs,
        "threads": args.threads,
        "model": "784-512-512-10 ReLU (the PyTorch tutorial's)",
        "load_average_1min": round(os.getloadavg()[0], 2),
        **{f"{name}_epoch_seconds": float(np.mean(r["epoch_seconds"])) for name, r in results.items()},
        "speedup_wall": ratio("dlrl", "epoch_seconds"),
        "speedup_cpu": ratio("dlrl", "epoch_cpu_seconds"),
        "speedup_cpu_data_pipeline_only": ratio("dlrl-fp32", "epoch_cpu_seconds"),
        "accuracy_difference_points": round(
            100 * (results["dlrl"]["test_accuracy"][-1] - results["tutorial"]["test_accuracy"][-1]), 2
        ),
        "variants": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
