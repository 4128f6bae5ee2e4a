"""Where a GPU pretraining step's time goes: how busy the GPU is and which kernels fill it.

    python3 benchmarks/gpu_profile.py [--shape base] [--steps 8] [--compile [--compile-mode reduce-overhead]] [--out F]

Builds the text pretraining job at a benchmarks/gpu_throughput.py shape, runs a few warm-up steps (compilation,
allocator, CUDA graph recording), times `--steps` loop steps, then profiles as many with torch.profiler. Prints
the wall time per step (without the profiler and under it), the GPU's kernel time per step and their ratio (near 1: the GPU is the bottleneck, and the top kernels say which work; far
below 1: the host is, launching or waiting), and the kernels (or, on a CPU, the ops) that take the most time.
What gpu_throughput's table cannot say when a target is missed. Without a GPU it profiles the CPU (`--shape
tiny`) as a dry run of the script itself.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import torch
from common import shared_tokenizer
from gpu_throughput import SHAPES, shape_overrides


def device_time(event) -> float:
    """An averaged profiler event's own device time in microseconds (the attribute's name moved in torch 2.4)."""
    return float(getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0.0))


def main() -> None:
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    from warmstart.config import PretrainConfig, load_config
    from warmstart.engine.distributed import Cluster
    from warmstart.engine.loop import Budget, LoopSettings, LoopState, make_optimizer, train_loop
    from warmstart.engine.runtime import place, use_bf16
    from warmstart.pretraining.text import TextPretraining

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default=None, choices=sorted(SHAPES))
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--compile", action="store_true", help="train.compile=true (the whole loss)")
    ap.add_argument("--compile-mode", default="default")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()
    gpu = torch.cuda.is_available()
    shape = SHAPES[args.shape or ("base" if gpu else "tiny")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shared_tokenizer(work / "tokenizer")
        cfg = load_config(PretrainConfig, None, [
            *shape_overrides(work / "tokenizer", work, work / "out", shape),
            f"train.compile={str(args.compile).lower()}", f"train.compile_mode={args.compile_mode}"])
        bf16 = use_bf16(cfg.train.precision)
        job = TextPretraining(cfg, Cluster(), work / "none", False, bf16)
        place(job.model)
        batches = list(itertools.islice(job.batches(LoopState()), args.warmup + 2 * args.steps))
        optimizer = make_optimizer(job.model, cfg.train.lr, cfg.train.weight_decay)
        settings = LoopSettings(bf16=bf16, log_every=10_000, desc="profile")

        def steps(part: list) -> None:
            train_loop(job.model, optimizer, iter(part), lambda b: job.step(job.objective, b, 0.5),
                       Budget(max_steps=len(part)), settings, tokens_fn=job.count)
            if gpu:
                torch.cuda.synchronize()

        t = time.perf_counter()
        steps(batches[:args.warmup])
        warm = time.perf_counter() - t
        # the same number of steps without the profiler first: it slows the host (it records every op), so its
        # own wall time overstates a host-bound step (2026-12-04, H200: 63 ms/step compiled under it, 53 without)
        t = time.perf_counter()
        steps(batches[args.warmup:args.warmup + args.steps])
        plain = (time.perf_counter() - t) / args.steps
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
        with profile(activities=activities) as prof:
            t = time.perf_counter()
            steps(batches[args.warmup + args.steps:])
            wall = (time.perf_counter() - t) / args.steps
    events = prof.key_averages()
    if gpu:  # the device's own events (kernels, copies): an op that launched a kernel also shows its time
        kernels = sorted((e for e in events if e.device_type == DeviceType.CUDA), key=device_time, reverse=True)
        busy = sum(device_time(e) for e in kernels) / 1e6 / args.steps
        top = [(e.key, device_time(e) / 1e3 / args.steps) for e in kernels[:10]]
    else:
        ops = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)
        busy = float("nan")
        top = [(e.key, e.self_cpu_time_total / 1e3 / args.steps) for e in ops[:10]]
    tokens = shape["batch"] * shape["max_seq_len"]
    where = torch.cuda.get_device_name() if gpu else "CPU (dry run, not a measurement)"
    print(f"\n{where}; shape {args.shape or ('base' if gpu else 'tiny')}, bf16 {bf16}, compile "
          f"{args.compile and args.compile_mode}; warm-up {args.warmup} steps in {warm:.1f} s")
    print(f"wall {1e3 * plain:.1f} ms/step ({tokens / plain:,.0f} tokens/s) without the profiler, {1e3 * wall:.1f} "
          f"under it; GPU kernels {1e3 * busy:.1f} ms/step; busy {busy / plain:.0%} ({busy / wall:.0%} under it)")
    print("| kernel (GPU) or op (CPU) | ms/step |\n|---|---|")
    for name, ms in top:
        print(f"| {name[:90]} | {ms:.2f} |")
    if args.out:
        args.out.write_text(json.dumps({"device": where, "wall_ms": 1e3 * plain, "profiled_wall_ms": 1e3 * wall,
                                        "kernel_ms": 1e3 * busy, "busy": busy / plain, "top": top, "compile": args.compile,
                                        "compile_mode": args.compile_mode}, indent=2))


if __name__ == "__main__":
    main()
