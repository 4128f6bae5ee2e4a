import math

import torch

from warmstart.objectives.simclr import ProjectionHead, nt_xent_loss


def reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    """The SimCLR paper's loss written as loops: l(i, j) = -log exp(s_ij/t) / sum_{k != i} exp(s_ik/t)."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n = z1.shape[0]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denom = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / denom)
    return total / (2 * n)


def test_nt_xent_equals_the_reference_on_random_inputs():
    gen = torch.Generator().manual_seed(0)
    for n, d, t in ((4, 8, 0.5), (7, 3, 0.1), (16, 32, 1.0)):
        z1, z2 = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen)
        assert abs(float(nt_xent_loss(z1, z2, t)) - reference_nt_xent(z1, z2, t)) < 1e-4


def test_nt_xent_is_low_for_matching_views_and_high_for_random_ones():
    z = torch.randn(32, 16)
    assert float(nt_xent_loss(z, z + 0.01 * torch.randn_like(z), 0.1)) < 0.1
    assert float(nt_xent_loss(z, torch.randn(32, 16), 0.1)) > math.log(31)


def test_nt_xent_gradient_reaches_both_views():
    z1, z2 = torch.randn(8, 4, requires_grad=True), torch.randn(8, 4, requires_grad=True)
    nt_xent_loss(z1, z2).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_projection_head_shapes():
    head = ProjectionHead(32, 64, 16)
    assert head(torch.randn(5, 32)).shape == (5, 16)
