"""Time to accuracy on Fashion-MNIST: dlrl's feed-forward classifier beside the PyTorch examples' MNIST CNN.

reference: pytorch/examples mnist/main.py, run with datasets.FashionMNIST in place of datasets.MNIST, on the
  CPU: ``Net`` (conv 1->32 3x3, ReLU, conv 32->64 3x3, ReLU, max-pool 2, dropout 0.25, fc 9216->128, ReLU,
  dropout 0.5, fc 128->10, log-softmax), Adadelta lr 1.0, StepLR gamma 0.7 every epoch, batch 64, test batch
  1000, torch.manual_seed(1), all 60,000 training images in file order (on the CPU the script's loader does
  not shuffle), ``ToTensor()`` + ``Normalize((0.1307,), (0.3081,))`` per item (the script's MNIST constants)
  through the dataset's PIL path and the default collate, a test pass after every epoch, subnormal floats
  not flushed. torchvision does not install beside the CPU torch wheel here, so its dataset class is
  re-implemented (as in bench/ffn_pipeline.py: uint8 row -> PIL image -> ToTensor); the rest is the
  script's own code.
dlrl: the classifier's default recipe exactly as ``dlrl classify --dataset fashion-mnist`` trains it
  (epochs=auto: as many as time_budget allows on this machine; 55,000 training / 5,000 validation images),
  in fp32, and in bf16 where the CPU computes bf16 natively (elsewhere bf16 is emulated, so that row is
  skipped with the reason). Its test accuracy is the classifier's own ten-view prediction.

Time to accuracy: the training seconds (dlrl's include its per-epoch validation; test passes excluded) up
to the end of the first epoch whose test accuracy reaches the target, plus that epoch's test pass. The
target is the reference's test accuracy after --epochs epochs (3), measured in this run, or --target.
dlrl's ten-view accuracy is measured after the last epoch and after every epoch whose single-view
accuracy is within a point of the target (an epoch further from it cannot reach it).

    .venv/bin/python bench/cnn_reference.py [--epochs 3] [--precisions fp32,bf16] [--only reference|dlrl]
                                            [--threads N] [--limit N] [--set key=value ...]

Prints one JSON object. On a newer CPU, an AVX2-only one is emulated with ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 in the environment (bench/run_all.py --emulate-avx2).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from common import OneLineParser, check_choice, fail, measured, print_json
from dlrl.config import DataConfig
from dlrl.data.idx import read_pair
from dlrl.data.images import load_images
from dlrl.data.sources import get_spec, resolve
from dlrl.errors import DlrlError
from dlrl.experiments import get_experiment
from dlrl.experiments.classifier import (
    Replanner,
    build_network,
    make_trainer,
    native_bf16,
    plan_epochs,
    predict,
    prediction_options,
)
from dlrl.experiments.runner import resolve_config
from dlrl.rundir import RunDir
from dlrl.train.fit import Monitor, fit
from dlrl.utils import configure_torch, seed_everything, usable_cores
from ffn_pipeline import to_tensor

PROG = "cnn_reference.py"
DATASETS = ("fashion-mnist", "mnist")
PRECISIONS = ("fp32", "bf16")
# pytorch/examples mnist/main.py defaults
REFERENCE = {"batch_size": 64, "test_batch_size": 1000, "lr": 1.0, "gamma": 0.7, "seed": 1}
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
REFERENCE_SOURCE = (
    "pytorch/examples mnist/main.py (Net, Adadelta, StepLR, batch 64, unshuffled CPU loader), re-implemented "
    "here: torchvision does not install beside the CPU torch wheel"
)
NEAR_TARGET = 0.01  # dlrl's ten-view prediction runs once the single view is this close to the target


class ExamplesNet(nn.Module):
    """pytorch/examples mnist/main.py ``Net``, layer for layer."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(64 * 12 * 12, 128)  # (B, 64, 24, 24) pooled to (B, 64, 12, 12): 9216
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))  # (B, 1, 28, 28) -> (B, 32, 26, 26)
        x = F.relu(self.conv2(x))  # -> (B, 64, 24, 24)
        x = F.max_pool2d(x, 2)  # -> (B, 64, 12, 12)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


class ExamplesDataset(Dataset):
    """torchvision's MNIST/FashionMNIST ``__getitem__`` with ``Compose([ToTensor(), Normalize(...)])``."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor):
        self.data, self.targets = images, targets  # (N, 28, 28) uint8, (N,) int64, as torchvision keeps them

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.data[index].numpy(), mode="L")
        return to_tensor(img).sub_(MNIST_MEAN).div_(MNIST_STD), int(self.targets[index])


def reference_images(dataset: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The training images as torchvision reads them: (N, 28, 28) uint8 in file order, labels; and where
    they came from. MNIST without its training files: the shipped sample's training split instead."""
    files = resolve(dataset, download=True)
    spec = get_spec(dataset)
    if files.is_sample:
        data = load_images(DataConfig(dataset=dataset, limit=limit))
        images = (data.train_x[:, 0] * 255).round().to(torch.uint8)
        return images, data.train_y, f"{data.origin}: the shipped sample's training split"
    images, labels = read_pair(files.files["train-images"], files.files["train-labels"], len(spec.classes))
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels), str(files.directory)


def train_reference(
    dataset: str, epochs: int, limit: int | None, test_x: torch.Tensor, test_y: torch.Tensor
) -> dict[str, Any]:
    """The examples script's main(): train and test every epoch; per-epoch accuracy and seconds."""
    torch.set_flush_denormal(False)  # the script does not flush subnormal floats; dlrl's commands do
    images, labels, origin = reference_images(dataset, limit)
    test_u8 = (test_x[:, 0] * 255).round().to(torch.uint8)
    torch.manual_seed(REFERENCE["seed"])
    model = ExamplesNet()
    train_loader = DataLoader(ExamplesDataset(images, labels), batch_size=REFERENCE["batch_size"])
    test_loader = DataLoader(ExamplesDataset(test_u8, test_y), batch_size=REFERENCE["test_batch_size"])
    optimizer = torch.optim.Adadelta(model.parameters(), lr=REFERENCE["lr"])
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=REFERENCE["gamma"])
    train_seconds, train_cpu, test_seconds, accuracy = [], [], [], []
    for _ in range(epochs):
        wall, cpu = time.perf_counter(), time.process_time()
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.nll_loss(model(x), y)
            loss.backward()
            optimizer.step()
        train_seconds.append(round(time.perf_counter() - wall, 3))
        train_cpu.append(round(time.process_time() - cpu, 3))
        started, correct = time.perf_counter(), 0
        model.eval()
        with torch.no_grad():
            for x, y in test_loader:
                correct += int((model(x).argmax(dim=1) == y).sum())
        test_seconds.append(round(time.perf_counter() - started, 3))
        accuracy.append(correct / len(test_y))
        scheduler.step()
    torch.set_flush_denormal(True)
    return {
        "name": "PyTorch examples MNIST CNN",
        "source": REFERENCE_SOURCE,
        "data": origin,
        "train_images": len(images),
        "epochs": epochs,
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_accuracy_per_epoch": accuracy,
        "train_seconds_per_epoch": train_seconds,
        "train_cpu_seconds_per_epoch": train_cpu,
        "test_seconds_per_epoch": test_seconds,
        "final_test_accuracy": accuracy[-1],
        "train_seconds": round(sum(train_seconds), 2),
    }


def time_to(accuracy: list[float | None], seconds_to: list[float], target: float) -> dict[str, Any]:
    """The first epoch (1-based) whose accuracy reaches ``target`` and the seconds until it was known."""
    for epoch, (value, seconds) in enumerate(zip(accuracy, seconds_to, strict=True), start=1):
        if value is not None and value >= target:
            return {"epoch": epoch, "seconds": round(seconds, 2)}
    return {"epoch": None, "seconds": None}


def dlrl_config(dataset: str, precision: str, limit: int | None, overrides: list[str]) -> Any:
    """The classifier's config as ``dlrl classify --dataset DATASET precision=... KEY=VALUE`` resolves it."""
    options: dict[str, Any] = {"data.dataset": dataset, "precision": precision, "figures": False}
    if limit is not None:
        options["data.limit"] = limit
    try:
        return resolve_config(get_experiment("classifier"), options=options, overrides=overrides)
    except DlrlError as err:
        fail(PROG, str(err))


def train_dlrl(cfg: Any, threads: int, target: float, test_x: torch.Tensor, test_y: torch.Tensor) -> dict:
    """The classifier's run() up to its test, with a test accuracy after the epochs that can reach the target.

    Built from the experiment's own functions in run()'s order (threads and seed as the runner sets them),
    so it trains what ``dlrl classify`` trains; the test passes happen between epochs and change no state.
    """
    configure_torch(threads)
    seed_everything(cfg.seed)
    with tempfile.TemporaryDirectory(prefix="dlrl-bench-") as tmp:
        return _train_dlrl(cfg, RunDir(tmp), target, test_x, test_y)


def _train_dlrl(cfg: Any, run_dir: RunDir, target: float, test_x: torch.Tensor, test_y: torch.Tensor) -> dict:
    device = torch.device("cpu")
    data = load_images(cfg.data)
    cfg, plan = plan_epochs(cfg, data, device, run_dir, resume=False)
    model = build_network(cfg, data.image_shape, len(data.classes)).to(device)
    trainer = make_trainer(cfg, model, data, device)
    # after 3 epochs the length is settled again at the speed they ran, as in `dlrl classify`
    replanner = Replanner(cfg, plan, run_dir, {}) if Replanner.applies(cfg, plan) else None
    bf16 = plan.precision == "bf16"
    views = prediction_options(cfg)
    rows: list[dict[str, Any]] = []
    clock = {"train": 0.0, "cpu_mark": time.process_time(), "cpu": 0.0}

    def after_epoch(epoch: int, row: dict[str, float]) -> bool:
        clock["train"] += row["seconds"]
        clock["cpu"] += time.process_time() - clock["cpu_mark"]
        started = time.perf_counter()
        single = float((predict(model, test_x, device, bf16=bf16).argmax(1) == test_y).float().mean())
        single_seconds = time.perf_counter() - started
        full = full_seconds = None
        if single >= target - NEAR_TARGET or epoch == plan.epochs:  # a re-plan updates it
            started = time.perf_counter()
            logits = predict(model, test_x, device, bf16=bf16, **views)
            full_seconds = time.perf_counter() - started
            full = float((logits.argmax(1) == test_y).float().mean())
        rows.append(
            {
                "epoch": epoch,
                "train_seconds_so_far": round(clock["train"], 2),
                "single_view_accuracy": single,
                "single_view_seconds": round(single_seconds, 3),
                "test_accuracy": full,
                "test_seconds": None if full_seconds is None else round(full_seconds, 3),
            }
        )
        clock["cpu_mark"] = time.process_time()
        return True

    monitor = Monitor("val_accuracy", "max", cfg.patience)
    fit(trainer, cfg.epochs, monitor, on_epoch_end=after_epoch, progress=False, replan=replanner)
    reached = time_to(
        [r["test_accuracy"] for r in rows],
        [r["train_seconds_so_far"] + (r["test_seconds"] or 0.0) for r in rows],
        target,
    )
    return {
        "name": "dlrl classifier (feed-forward)",
        "source": "dlrl's classifier experiment, default recipe, measured in this run",
        "precision": plan.precision,
        "epochs": plan.epochs,
        "epochs_source": plan.source,
        "recipe": plan.recipe,
        "time_budget": cfg.time_budget if plan.source == "time_budget" else None,
        "estimated_seconds_per_epoch": plan.seconds_per_epoch,
        "epochs_before_training": plan.first_epochs,  # set when the length was settled again after 3 epochs
        "replanned_seconds_per_epoch": plan.replanned_seconds_per_epoch,
        "train_images": len(data.train_x),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(clock["train"], 2),
        "train_cpu_seconds": round(clock["cpu"], 2),
        "final_test_accuracy": rows[-1]["test_accuracy"],
        "final_test_accuracy_single_view": rows[-1]["single_view_accuracy"],
        "test_seconds": rows[-1]["test_seconds"],
        "epochs_to_target": reached["epoch"],
        "time_to_target_seconds": reached["seconds"],
        "per_epoch": rows,
    }


def parse_args():
    parser = OneLineParser(prog=PROG, description=__doc__)
    parser.add_argument("--dataset", default="fashion-mnist", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the reference CNN (default 3)")
    parser.add_argument("--precisions", default="fp32,bf16", help="dlrl's arithmetic(s) (default fp32,bf16)")
    parser.add_argument("--only", choices=["reference", "dlrl"], help="run one side only")
    parser.add_argument("--target", type=float, help="accuracy to reach (default: the reference's, measured)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: usable cores)")
    parser.add_argument("--limit", type=int, default=None, help="training images of both (smoke runs)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a dlrl classifier config override"
    )
    args = parser.parse_args()
    check_choice(PROG, "--dataset", args.dataset, DATASETS)
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    for precision in args.precisions:
        check_choice(PROG, "--precisions", precision, PRECISIONS)
    if args.epochs < 1:
        fail(PROG, f"--epochs {args.epochs}: must be at least 1")
    if args.only == "dlrl" and args.target is None:
        fail(PROG, "--only dlrl needs --target (the accuracy the reference reached)")
    return args


def run(args) -> dict[str, Any]:
    threads = args.threads or usable_cores()
    # every config checked before anything trains
    configs = {p: dlrl_config(args.dataset, p, args.limit, args.set) for p in args.precisions}
    torch.set_num_threads(threads)
    test = load_images(DataConfig(dataset=args.dataset, limit=args.limit))
    result: dict[str, Any] = {
        "dataset": test.dataset,
        "test_images": len(test.test_x),
        "threads": threads,
        "what": "time until the test accuracy first reaches the reference CNN's after --epochs epochs",
    }
    target, target_source = args.target, "--target"
    if args.only != "dlrl":
        reference = train_reference(args.dataset, args.epochs, args.limit, test.test_x, test.test_y)
        if target is None:
            target = reference["final_test_accuracy"]
            epochs = f"{args.epochs} epoch" + ("s" if args.epochs != 1 else "")
            target_source = f"the reference after {epochs}, measured in this run"
        # as for dlrl: the training up to the epoch, and that epoch's test pass
        train_so_far = np.cumsum(reference["train_seconds_per_epoch"])
        seconds_to = [t + s for t, s in zip(train_so_far, reference["test_seconds_per_epoch"], strict=True)]
        reached = time_to(reference["test_accuracy_per_epoch"], seconds_to, target)
        reference["epochs_to_target"] = reached["epoch"]
        reference["time_to_target_seconds"] = reached["seconds"]
        result["reference"] = reference
    result["target_accuracy"], result["target_source"] = target, target_source
    result["dlrl"] = {}
    for precision, cfg in configs.items():
        if precision == "bf16" and not native_bf16():
            result["dlrl"][precision] = {
                "skipped": "no native bf16 on this CPU (no avx512_bf16 or amx): bf16 would be emulated, "
                "slower than fp32; dlrl's precision=auto picks fp32 here"
            }
            continue
        result["dlrl"][precision] = train_dlrl(cfg, threads, target, test.test_x, test.test_y)
    return result


def main() -> None:
    args = parse_args()
    print_json(measured(lambda: run(args), "cnn_reference"))


if __name__ == "__main__":
    main()
