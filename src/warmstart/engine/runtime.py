"""Where and how a run computes: the device, bf16 or fp32, and the number of CPU threads."""

from __future__ import annotations

import os
import time
from contextlib import nullcontext

import torch

from warmstart.errors import WarmstartError


def device() -> torch.device:
    """The device every model and batch goes to: CUDA when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def place(model: torch.nn.Module, channels_last: bool = False) -> torch.nn.Module:
    """Put a model where the run computes (the one place models are moved; batches follow `device()`).
    `channels_last`: the memory format oneDNN's CPU convolutions run fastest in (ResNets)."""
    return model.to(device(), memory_format=torch.channels_last if channels_last else torch.contiguous_format)


_CPU_BF16_FASTER: bool | None = None


def use_bf16(precision: str) -> bool:
    """Resolve `precision` (auto | bf16 | fp32). `auto` picks bf16 on CUDA when supported; on CPU it times a
    bf16 and an fp32 linear layer once per process, because bf16 is ~5x faster only with AMX (Sapphire
    Rapids) and slower than fp32 on CPUs with AVX512-BF16 alone."""
    global _CPU_BF16_FASTER
    if precision in ("bf16", "fp32"):
        return precision == "bf16"
    if precision != "auto":
        raise WarmstartError(f"precision: unknown value '{precision}'; use auto, bf16 or fp32")
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    if _CPU_BF16_FASTER is None:
        x, lin = torch.randn(2048, 256), torch.nn.Linear(256, 1024)

        def timed(bf16: bool) -> float:
            with torch.no_grad(), autocast(bf16):
                lin(x)
                t = time.perf_counter()
                for _ in range(5):
                    lin(x)
                return time.perf_counter() - t

        _CPU_BF16_FASTER = min(timed(True) for _ in range(2)) < 0.8 * min(timed(False) for _ in range(2))
    return _CPU_BF16_FASTER


def autocast(enabled: bool):
    """bf16 autocast on CPU (AMX) or CUDA; a no-op when disabled."""
    return torch.autocast(device().type, dtype=torch.bfloat16) if enabled else nullcontext()


def set_threads(n: int | None) -> None:
    torch.set_num_threads(n or os.cpu_count() or 1)
