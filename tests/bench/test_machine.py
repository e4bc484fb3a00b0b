"""bench/machine.py: the machine record every benchmark result carries."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from machine import ISA_FLAGS, cpuinfo, describe, machine_record, torch_build

CPUINFO = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse avx avx2 fma

processor\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse avx avx2 fma
"""


def test_cpuinfo_reads_the_model_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    assert cpuinfo(path) == ("AMD EPYC", ["fpu", "sse", "avx", "avx2", "fma"])
    assert cpuinfo(tmp_path / "missing") == (None, [])


def test_record_names_what_a_time_depends_on() -> None:
    record = json.loads(json.dumps(machine_record()))  # plain JSON types only
    for key in ("cpu", "isa", "logical_cores", "usable_cores", "load_average", "torch", "time"):
        assert key in record, key
    assert set(record["isa"]) <= set(ISA_FLAGS)
    assert record["torch"]["version"] == torch.__version__
    assert record["torch"]["threads"] == torch.get_num_threads()
    assert isinstance(record["torch"]["native_bf16"], bool)
    assert "cores" in describe(record) and "bf16" in describe(record)


def test_torch_build_keeps_the_cpu_settings_only() -> None:
    config = (
        "PyTorch built with:\n  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71)\n"
        "  - CPU capability usage: AVX2\n"
        "  - Build settings: BLAS_INFO=mkl, CXX_FLAGS= -O2 -Wall, USE_MKLDNN=ON, USE_OPENMP=ON, USE_CUDA=0,\n"
    )
    assert torch_build(config) == {
        "onednn": "Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71)",
        "cpu_capability_usage": "AVX2",
        "BLAS_INFO": "mkl",
        "USE_MKLDNN": "ON",
        "USE_OPENMP": "ON",
    }
