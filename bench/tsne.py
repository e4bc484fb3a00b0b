"""t-SNE benchmark: openTSNE (FFT gradients) beside scikit-learn's Barnes-Hut on the same encodings.

Encodes up to --points test images with the trained model of an autoencoder run directory, embeds them in
2-D with both implementations (same perplexity, n_jobs), and prints wall and CPU seconds and a quality
figure: the 10-nearest-neighbour accuracy of the class labels in the 2-D embedding (held-out half).

    .venv/bin/python bench/tsne.py RUN_DIR [--points 10000] [--n-jobs 2] [--only opentsne|sklearn]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from dlrl.config import build_config, read_config_file
from dlrl.config.autoencoder import AutoEncoderConfig
from dlrl.data.images import load_images
from dlrl.experiments.autoencoder import encode_all, load_trained, run_tsne
from dlrl.rundir import RunDir


def knn_accuracy(points: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    order = np.random.default_rng(seed).permutation(len(points))
    half = len(points) // 2
    fit, held = order[:half], order[half:]
    model = KNeighborsClassifier(n_neighbors=10).fit(points[fit], labels[fit])
    return float(model.score(points[held], labels[held]))


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir")
    parser.add_argument("--points", type=int, default=10000)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--only", choices=["opentsne", "sklearn"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    run_dir = RunDir(args.run_dir)
    cfg = build_config(AutoEncoderConfig, read_config_file(run_dir.config_path), str(run_dir.config_path))
    data = load_images(cfg.data)
    model = load_trained(cfg, run_dir, torch.device("cpu"))
    count = min(args.points, len(data.test_x))
    codes = encode_all(model, data.test_x[:count], torch.device("cpu")).numpy()
    labels = data.test_y[:count].numpy()
    result: dict = {
        "run_dir": str(run_dir.path),
        "dataset": data.dataset,
        "points": count,
        "latent_dim": int(codes.shape[1]),
        "n_jobs": args.n_jobs,
        "loadavg_start": os.getloadavg()[0],
        "knn10_accuracy_in_code_space": knn_accuracy(codes, labels),
    }
    for method in ("opentsne", "sklearn"):
        if args.only and method != args.only:
            continue
        started, cpu_started = time.perf_counter(), cpu_seconds()
        points = run_tsne(codes, method, args.n_jobs, seed=0)
        result[method] = {
            "wall_seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(cpu_seconds() - cpu_started, 2),
            "knn10_accuracy_2d": knn_accuracy(points, labels),
        }
    result["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
