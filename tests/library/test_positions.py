"""course_lib.positions: the sinusoidal table of "Attention Is All You Need" (chapter 3's reference)."""
import math

import pytest
import torch

from course_lib.attention import MultiHeadSelfAttention
from course_lib.positions import equivariance_gap, sinusoidal_positions


def test_shape_dtype_and_hand_values():
    pe = sinusoidal_positions(6, 8)
    assert pe.shape == (6, 8) and pe.dtype == torch.float32
    assert torch.equal(pe[0], torch.tensor([0.0, 1.0] * 4))               # sin(0) = 0 on even, cos(0) = 1 on odd
    expected = [math.sin(1), math.cos(1), math.sin(0.1), math.cos(0.1), math.sin(0.01), math.cos(0.01),
                math.sin(0.001), math.cos(0.001)]                        # 1 / 10000^(2i/8) = 1, 0.1, 0.01, 0.001
    assert torch.allclose(pe[1], torch.tensor(expected), atol=1e-7)


def test_pairs_lie_on_the_unit_circle_and_offsets_are_rotations():
    pe = sinusoidal_positions(64, 32).double()
    assert torch.allclose(pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2, torch.ones(64, 16, dtype=torch.float64), atol=1e-6)
    dots = (pe[:-7] * pe[7:]).sum(-1)                                     # PE[p] . PE[p+7] depends only on 7
    assert (dots - dots[0]).abs().max() < 1e-5


@pytest.mark.parametrize("num_positions, dim", [(4, 3), (4, 0), (-1, 4)])
def test_bad_sizes_are_rejected(num_positions, dim):
    with pytest.raises(ValueError):
        sinusoidal_positions(num_positions, dim)


def test_equivariance_gap():
    x = torch.tensor([[[1.0], [2.0], [3.0]]])
    perm = torch.tensor([2, 0, 1])
    assert equivariance_gap(lambda t: t.cumsum(1), x, perm) == 3.0        # (3, 4, 6) - (6, 1, 3), worked by hand
    torch.manual_seed(0)
    attention = MultiHeadSelfAttention(8, 2).eval()
    x, perm = torch.randn(2, 5, 8), torch.tensor([3, 1, 4, 0, 2])
    assert equivariance_gap(lambda t: attention(t)[0], x, perm) < 1e-5
    assert equivariance_gap(lambda t: attention(t + torch.randn(5, 8))[0], x, perm) > 1e-3
