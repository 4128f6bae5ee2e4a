"""SimCLR (Chen et al., 2020): a projection head and the NT-Xent loss, negatives gathered across processes."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class ProjectionHead(nn.Module):
    """Linear -> BatchNorm -> ReLU -> Linear, as in SimCLR; discarded after pretraining. (B, D) -> (B, P)"""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(),
                                 nn.Linear(hidden_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _GatherWithGradient(torch.autograd.Function):
    """all_gather whose backward sums every process's gradient for the local rows.

    Written by hand (as lightly's GatherLayer) because `torch.distributed.nn.all_gather` needs all_to_all
    in its backward on non-NCCL backends, which gloo (CPU) does not offer; all_reduce it does."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:
        all_grads = torch.stack(grads)
        dist.all_reduce(all_grads)
        return all_grads[dist.get_rank()]


def gather(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """-> (rows of every process concatenated, offset of this process's rows); identity on one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    parts = _GatherWithGradient.apply(x)
    return torch.cat(parts), dist.get_rank() * x.shape[0]


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2,
                 gather_across_processes: bool = True) -> torch.Tensor:
    """Normalised-temperature cross entropy. z1, z2: (B, P) projections of two views of the same B images.

    Each of the 2B embeddings must pick its partner among the other 2B-1 (2·world·B - 1 when gathered):
    loss = mean_i -log( exp(s(i, j(i))/t) / sum_{k != i} exp(s(i, k)/t) ), s the cosine similarity.
    """
    z1, z2 = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    b = z1.shape[0]
    if gather_across_processes:
        all1, offset = gather(z1)
        all2, _ = gather(z2)
    else:
        all1, all2, offset = z1, z2, 0
    n = all1.shape[0]
    candidates = torch.cat([all1, all2])  # (2N, P)
    anchors = torch.cat([z1, z2])  # (2B, P): this process's rows only
    logits = anchors @ candidates.T / temperature  # (2B, 2N)
    rows = torch.arange(b, device=z1.device) + offset  # global index of each local image
    self_index = torch.cat([rows, rows + n])
    partner = torch.cat([rows + n, rows])
    # each anchor's own column; a comparison, not F.one_hot, which reads its indices back to check them
    own = self_index.view(-1, 1) == torch.arange(2 * n, device=z1.device).view(1, -1)  # (2B, 2N)
    logits = logits.masked_fill(own, float("-inf"))
    return F.cross_entropy(logits, partner)
