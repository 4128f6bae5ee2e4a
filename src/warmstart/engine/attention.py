"""Which attention kernel a transformers model computes with: on a CPU, the faster of PyTorch's SDPA and plain
matmul-softmax-matmul, timed once per process for each shape it meets; on a GPU, SDPA.

Why by hand: on a 2-core Xeon with AMX, torch 2.13's CPU flash-attention kernel (what SDPA runs in bf16) took
27-30 ms for an attention layer's forward and backward at 4 heads x 64, 4,096 tokens, whatever the sequence
length up to 128; plain matmuls took 7-8 ms, which made pretraining at the ANCHORS shape 1.48x faster
(benchmarks/results/pretrain_throughput.md). At 512 tokens with 12 heads the kernel wins (90 ms against 102), and
in fp32 it won at every length tried (32-512; benchmarks/results/attention.md), so no fixed rule is right: the choice is
timed per shape, as `runtime.use_bf16` times bf16 (2026-12-06).

It is a transformers attention backend (`AttentionInterface`): a model switched to it saves, loads and runs
anywhere as before (the backend's name is not written into config.json).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from warmstart.engine.dropout import dropout as fast_dropout
from warmstart.errors import WarmstartError

NAME = "warmstart_cpu"
MODES = ("auto", "sdpa", "eager")
_MATH_FASTER: dict[tuple, bool] = {}  # (dtype, heads, lengths and dims, grad, mask, dropout) -> plain is faster


def use_attention(model: torch.nn.Module, mode: str = "auto") -> str | None:
    """Switch every transformers model inside `model` that computes attention with SDPA to `mode`: auto (this
    module's timed choice, where the model runs on a CPU; SDPA on a GPU), sdpa, or eager (transformers' plain
    implementation). Models with another backend (DeBERTa's own, a user's choice) are left as they are.
    Returns the backend set, or None where no model could switch."""
    if mode not in MODES:
        raise WarmstartError(f"attention '{mode}': use one of {', '.join(MODES)}")
    switchable = [m for m in model.modules() if callable(getattr(m, "set_attn_implementation", None))
                  and getattr(getattr(m, "config", None), "_attn_implementation", None) in ("sdpa", NAME)]
    if not switchable:
        return None
    on_cpu = next(model.parameters()).device.type == "cpu"
    chosen = NAME if mode == "auto" and on_cpu else "eager" if mode == "eager" else "sdpa"
    if chosen == NAME:
        _register()
    for m in switchable:
        if m.config._attn_implementation != chosen:  # submodels share their parent's config
            m.set_attn_implementation(chosen)
    return chosen


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, attention_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # SDPA's masks: boolean (True: attend), or None for none


def attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                      **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' attention-backend signature. query (B, H, Tq, D), key / value (B, H, Tk, D), attention_mask
    None or boolean, broadcastable to (B, H, Tq, Tk) -> ((B, Tq, H, D), None)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    causal = kwargs.get("is_causal") or getattr(module, "is_causal", False)
    plain = (query.device.type == "cpu" and not torch.compiler.is_compiling() and key.shape[1] == query.shape[1]
             and not causal and not kwargs.get("output_attentions") and position_bias_free(kwargs)
             and (attention_mask is None or attention_mask.dtype == torch.bool)
             and _math_faster(query, key, value, attention_mask, dropout, scaling))
    if not plain:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    out = plain_attention(query, key, value, attention_mask, dropout if module.training else 0.0, scaling)
    return out.transpose(1, 2).contiguous(), None


def plain_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
                    dropout: float = 0.0, scaling: float | None = None) -> torch.Tensor:
    """softmax(Q K^T * scaling, masked) V, as SDPA's math. query (B, H, Tq, D) ... -> (B, H, Tq, D).
    The scale goes on Q (Tq x D values) rather than on the scores (Tq x Tk)."""
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = (query * scaling) @ key.transpose(-1, -2)
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1)
    if dropout:
        probs = fast_dropout(probs, p=dropout)  # on a CPU (this path's only device): engine/dropout.py
    return probs @ value


def position_bias_free(kwargs: dict) -> bool:
    return kwargs.get("position_bias") is None and kwargs.get("softcap") is None


def _math_faster(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
                 dropout: float, scaling: float | None) -> bool:
    """Whether plain attention beat SDPA at this shape, dtype and mode, timed the first time it is met (a first
    call of each, then three interleaved, the fastest of each compared; plain only when 10% faster). Lengths count
    by their power of two: batches padded to their longest row come in dozens of lengths, and timing each one
    made the first steps of a MiniLM fine-tuning 25% slower."""
    grad = torch.is_grad_enabled()
    q_len, k_len = (1 << max(4, (n - 1).bit_length()) for n in (query.shape[2], key.shape[2]))
    shape = (query.dtype, query.shape[1], q_len, query.shape[3], k_len, value.shape[3], grad, mask is not None,
             bool(dropout))
    if shape not in _MATH_FASTER:
        _MATH_FASTER[shape] = _timed_choice((query, key, value), mask, dropout, scaling, grad)
    return _MATH_FASTER[shape]


def _timed_choice(qkv: tuple[torch.Tensor, ...], mask: torch.Tensor | None, dropout: float, scaling: float | None,
                  grad: bool) -> bool:
    def seconds(fn, q, k, v) -> float:
        t = time.perf_counter()
        out = fn(q, k, v)
        if grad:
            out.backward(torch.ones_like(out))
        return time.perf_counter() - t

    def sdpa(q, k, v) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=dropout, scale=scaling)

    def plain(q, k, v) -> torch.Tensor:
        return plain_attention(q, k, v, m, dropout, scaling)

    m = None if mask is None else mask.detach()
    with torch.random.fork_rng(devices=[]):  # its draws leave the run's random stream (CPU) as it was
        args = [torch.empty_like(t).normal_().requires_grad_(grad) for t in qkv]
        seconds(sdpa, *args), seconds(plain, *args)  # first calls: allocation, kernel set-up
        rounds = [(seconds(plain, *args), seconds(sdpa, *args)) for _ in range(3)]
    return min(p for p, _ in rounds) < 0.9 * min(s for _, s in rounds)


def timed_choices() -> list[list]:
    """The choices timed so far, as lists of str, int and bool (what a resumable state may hold): a resumed run
    restores them (`restore_choices`) and computes with the kernels it started with, rather than timing again
    and, near the threshold, perhaps choosing the other."""
    return [[str(k[0]).removeprefix("torch."), *k[1:], v] for k, v in _MATH_FASTER.items()]


def restore_choices(saved: list[list]) -> None:
    for dtype, *rest, faster in saved:
        _MATH_FASTER[(getattr(torch, dtype), *rest)] = bool(faster)


def reset_timings() -> None:
    """Forget the timed choices (tests)."""
    _MATH_FASTER.clear()
