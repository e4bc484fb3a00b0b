"""The machine a benchmark ran on: CPU model and the instruction sets that decide its arithmetic, cores,
torch's threads and build, and the load average.

Every JSON in bench/results/ carries this record (taken at the start, the load again at the end): a time
means nothing without the CPU it was measured on, and on a shared host without the load beside it.

    .venv/bin/python bench/machine.py        prints the record as JSON
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from dlrl.utils import git_commit, usable_cores

# The flags that change what torch computes fast: AVX2 (fp32 everywhere), AVX-512, and native bf16
# (AVX512-BF16, AMX). Without the last two, bf16 autocast is emulated and slower than fp32.
ISA_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
# Environment variables that limit or choose the instruction sets torch and its libraries use: with them a
# newer CPU stands in for an AVX2-only one (see bench/cnn_reference.py --emulate-avx2).
ISA_ENVIRONMENT = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS")


def cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str | None, list[str]]:
    """(model name, flags) of the first processor in ``path``; (None, []) where there is no such file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, []
    model, flags = None, []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and model is None:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = value.split()
    return model, flags


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# Of torch's build settings, those that decide CPU arithmetic and threading.
BUILD_KEYS = ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP")


def torch_build(config: str) -> dict[str, str]:
    """The CPU-relevant part of ``torch.__config__.show()``: capability in use, BLAS, oneDNN, OpenMP."""
    build: dict[str, str] = {}
    for line in config.splitlines():
        text = line.strip(" -")
        if text.startswith("CPU capability usage:"):
            build["cpu_capability_usage"] = text.split(":", 1)[1].strip()
        elif "MKL-DNN" in text or "oneDNN" in text:
            build["onednn"] = text
        elif "Math Kernel Library" in text:
            build["mkl"] = text
        elif text.startswith("Build settings:"):
            for item in text.split(":", 1)[1].split(","):
                key, _, value = item.strip().partition("=")
                if key in BUILD_KEYS:
                    build[key] = value
    return build


def torch_record() -> dict[str, Any]:
    """torch's version, threads and what its build does on this CPU."""
    import torch  # here: `bench/report.py` renders tables without torch

    native_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    build = torch_build(torch.__config__.show())
    return {
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the kernels ATen dispatches to
        "native_bf16": bool(native_bf16),
        "amx": bool(amx),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "build": build,
    }


def machine_record(with_torch: bool = True) -> dict[str, Any]:
    """What a benchmark's numbers depend on, as plain JSON types."""
    model, flags = cpuinfo()
    if model is None:
        model = platform.processor() or None
    record: dict[str, Any] = {
        "cpu": model,
        "isa": [flag for flag in ISA_FLAGS if flag in flags],
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "load_average": load_average(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "isa_environment": {k: os.environ[k] for k in ISA_ENVIRONMENT if k in os.environ},
        "git_commit": git_commit(short=True),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if with_torch:
        record["torch"] = torch_record()
    return record


def describe(record: dict[str, Any]) -> str:
    """One line: 'AMD EPYC, 2 cores (avx2; no native bf16), torch 2.13.0+cpu with 2 threads'."""
    torch_info = record.get("torch") or {}
    isa = ", ".join(f for f in record.get("isa", []) if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16"))
    bf16 = "native bf16" if torch_info.get("native_bf16") else "no native bf16"
    threads = f" with {torch_info['threads']} threads" if "threads" in torch_info else ""
    version = f", torch {torch_info['version']}{threads}" if "version" in torch_info else ""
    cpu = record.get("cpu") or "unknown CPU"
    return f"{cpu}, {record.get('usable_cores')} cores ({isa or 'no AVX2'}; {bf16}){version}"


def main() -> None:
    print(json.dumps(machine_record(), indent=2))


if __name__ == "__main__":
    main()
