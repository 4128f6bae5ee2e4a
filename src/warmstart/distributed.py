"""Data parallelism across processes (`accelerate launch` or `torchrun`; gloo on CPU, NCCL on GPUs).

Every process builds the same global batch (the data order and the masking are seeded), trains on its
slice of rows, and averages gradients before each optimizer step, so N processes follow the loss curve
of one process with the same global batch. accelerate's `PartialState` sets up the process group from
the launcher's environment; the gradient averaging is written here because the objectives call the
encoder's submodules directly (sparse MLM head, ELECTRA's generator), which DDP's forward hooks would
not see. Rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Cluster:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def rows(self, batch_size: int) -> slice:
        """This process's rows of a global batch (equal shares; the last takes any remainder)."""
        share = batch_size // self.world
        return slice(self.rank * share, batch_size if self.rank == self.world - 1 else (self.rank + 1) * share)


def cluster() -> Cluster:
    """The process group of a multi-process launch, started on first use; a single process otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Cluster()
    if not dist.is_initialized():
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available())
    return Cluster(dist.get_rank(), dist.get_world_size())


def shutdown() -> None:
    """Leave the process group cleanly. Without it gloo's threads can outlive the interpreter's teardown and
    abort the process ("terminate called without an active exception"), failing a run that finished."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """All-reduce the gradients as one flat buffer (one collective per step, as DDP's buckets do)."""
    grads = [p.grad for p in params if p.grad is not None]
    if world <= 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def agree_max(value: float, world: int) -> float:
    """The largest value over processes, so that time budgets end on the same step everywhere."""
    if world <= 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t)


def mean_over_processes(values: dict[str, float], world: int) -> dict[str, float]:
    if world <= 1 or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(values, (t / world).tolist(), strict=True))


def broadcast_parameters(model: torch.nn.Module, world: int) -> None:
    """Start every process from rank 0's weights (as DDP does when it wraps a model)."""
    if world > 1:
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, src=0)


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()
