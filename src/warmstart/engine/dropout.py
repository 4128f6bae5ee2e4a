"""Dropout on a CPU at a third (bf16) to three fifths (fp32) of the cost of torch's own: the same Bernoulli masks in
distribution, drawn 16 bits a decision from 64-bit random words.

Why by hand: on a CPU `torch.nn.functional.dropout` draws one random number per element through `bernoulli_`,
12-16 ms for the 2 M elements of one FFN activation on 2 cores (`benchmarks/results/cpu_dropout.md`): in a
SetFit fit of MiniLM (batch 32, 6 layers, 19 dropouts a step) `bernoulli_` took 19% of the CPU time, more than
the attention (`benchmarks/cpu_profile.py setfit --torch-dropout`). One 64-bit draw per
four elements (`random_` on int64, its full range) gives four 16-bit lanes, each compared with p * 65536: 1.7x
faster per call in fp32 and 2.8-3.1x in bf16, and SetFit and full fine-tuning fits 10-11% faster in all (AMX Xeon,
`benchmarks/cpu_dropout.py`). On a GPU, or inside a compiled graph, torch's own kernel is used (both draw their
masks fast).

Masks come from torch's default CPU generator, as `bernoulli_`'s do, so a seeded run is reproducible and a
resumed one continues its stream; they are not the same masks as torch's, so a run's figures move within their
seed-to-seed spread. p is rounded to a multiple of 1/65536 and the scale follows the rounded p, so the output's
expectation is the input's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LANES = 65536  # 16-bit lanes: p to within 1.5e-5


def dropout(x: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> torch.Tensor:
    """`torch.nn.functional.dropout`'s signature and result (an element zeroed with probability p, the rest
    scaled by 1 / (1 - p)); x any shape and dtype. Never in place: the result is a new tensor."""
    if not training or p == 0.0 or x.device.type != "cpu" or torch.compiler.is_compiling() or x.numel() == 0:
        return F.dropout(x, p, training, inplace)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    dropped = round(p * LANES)
    if dropped >= LANES:
        return x * 0.0
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2 ** 63), 2 ** 63 - 1)
    keep = words.view(torch.int16)[:n].view(x.shape) >= dropped - LANES // 2  # P(keep) = (LANES - dropped) / LANES
    return torch.where(keep, x * (LANES / (LANES - dropped)), 0.0)


class FastDropout(torch.nn.Dropout):
    """`nn.Dropout` through `dropout` above: `use_fast_dropout` gives a model's Dropout modules this class (their
    state, p and inplace, unchanged; nothing in the state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training, self.inplace)


def use_fast_dropout(model: torch.nn.Module) -> int:
    """Every plain `nn.Dropout` in `model` computes through `dropout` (on a CPU; elsewhere it falls back to
    torch's). -> how many modules changed."""
    changed = 0
    for m in model.modules():
        if type(m) is torch.nn.Dropout:
            m.__class__ = FastDropout
            changed += 1
    return changed


def use_torch_dropout(model: torch.nn.Module) -> None:
    """Undo `use_fast_dropout`: where a timing must match code that runs torch's own dropout (the setfit library's
    SetFit, autopilot/cost.library_step_seconds)."""
    for m in model.modules():
        if type(m) is FastDropout:
            m.__class__ = torch.nn.Dropout
