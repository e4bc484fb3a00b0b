"""RUN/env.json of a ``dlrl run``: versions of the packages that matter, cores, load, seed, device."""

from __future__ import annotations

import os
from importlib import metadata
from typing import Any

from dlrl.rundir import RunDir
from dlrl.utils import resolve_device, usable_cores

PACKAGES = (
    "torch",
    "numpy",
    "matplotlib",
    "pydantic",
    "ray",
    "optuna",
    "gymnasium",
    "scikit-learn",
    "openTSNE",
    "jinja2",
    "imageio",
    "tqdm",
    "tensorboard",
)


def package_versions() -> dict[str, str]:
    """Installed versions of PACKAGES (those not installed are left out)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_env(run: RunDir, seed: int, profile: str) -> None:
    extra: dict[str, Any] = {"experiment": "run", "profile": profile, "packages": package_versions()}
    extra["cpus_usable"] = usable_cores()
    if hasattr(os, "getloadavg"):
        extra["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    run.write_env(seed, str(resolve_device("auto")), extra)
