"""ByteDropout: the classifier's dropout, with masks from random bytes."""

import pytest
import torch

from dlrl.models.mlp import ByteDropout


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])  # bf16: the classifier's autocast
@pytest.mark.parametrize("p", [0.1, 0.2, 0.5])
def test_drops_the_asked_fraction_and_keeps_the_expectation(p, dtype):
    torch.manual_seed(0)
    dropout = ByteDropout(p).train()
    out = dropout(torch.ones(400, 1000, dtype=dtype))
    assert out.dtype == dtype
    dropped = float((out == 0).float().mean())
    assert dropped == pytest.approx(round(p * 256) / 256, abs=0.003)  # 400k draws: sd 0.0007
    assert float(out.float().mean()) == pytest.approx(1.0, abs=0.01)
    kept = out.unique()
    scale = torch.tensor(256 / (256 - round(p * 256)), dtype=dtype)
    assert len(kept) == 2 and kept[0] == 0 and kept[1] == scale


def test_bytes_are_uniform():
    # A biased byte (e.g. a constant top byte of each 64-bit word) would drop the wrong fraction in
    # some columns: every one of the 8 byte positions must drop about p.
    torch.manual_seed(1)
    out = ByteDropout(0.5).train()(torch.ones(100_000, 8))
    per_position = (out == 0).float().mean(dim=0)
    assert torch.all((per_position - 0.5).abs() < 0.01), per_position


def test_gradient_is_the_mask_and_eval_is_identity():
    torch.manual_seed(2)
    x = torch.randn(64, 32, requires_grad=True)
    dropout = ByteDropout(0.25).train()
    out = dropout(x)
    out.sum().backward()
    assert torch.allclose(x.grad, torch.where(out == 0, 0.0, 256 / (256 - 64)))
    assert torch.equal(dropout.eval()(x), x)


def test_same_seed_same_mask():
    masks = []
    for _ in range(2):
        torch.manual_seed(3)
        masks.append(ByteDropout(0.2).train()(torch.ones(10, 10)))
    assert torch.equal(masks[0], masks[1])
    assert not torch.equal(masks[0], ByteDropout(0.2).train()(torch.ones(10, 10)))


def test_p_that_rounds_to_one_falls_back_to_plain_dropout():
    torch.manual_seed(4)
    out = ByteDropout(0.999).train()(torch.ones(100_000))  # round(0.999 * 256) = 256: no byte is kept
    assert 50 < int((out != 0).sum()) < 150  # nn.Dropout keeps about 1 in 1000
