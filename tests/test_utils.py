"""configure_torch: the CPU settings every command starts with."""

import torch

from dlrl.utils import configure_torch


def test_configure_torch_sets_threads_and_flushes_subnormals():
    threads = torch.get_num_threads()
    try:
        configure_torch(1)
        assert torch.get_num_threads() == 1
        tiny = torch.tensor([1e-39], dtype=torch.float32)  # subnormal in float32 (< 1.18e-38)
        assert float(tiny * 1.0) == 0.0
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)
    assert float(torch.tensor([1e-39]) * 1.0) > 0  # without the flush the value survives
