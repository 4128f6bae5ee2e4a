"""GPU pretraining throughput: the Hugging Face recipe vs warmstart, same model, data, tokenizer and GPU.

    python3 benchmarks/gpu_throughput.py [--shapes base small] [--steps 60] [--repeats 2] [--levers] [--out F]

At BERT-base shape (12 layers, hidden 768, seq 128, batch 128, 8k vocabulary) and at the small shape of
../shared/ANCHORS.md (4 layers, hidden 256, batch 32), the two recipes alternate `--repeats` times in one
process (bf16 for both: HF's `bf16=True`, warmstart's `precision: auto`); the table gives the median tokens/s,
the ratio to HF, model TFLOP/s and MFU against a bf16 matmul peak measured on the spot, for warmstart without
`train.compile`, with it (the one-GPU recipe compiles), and compiled as CUDA graphs (`train.compile_mode:
reduce-overhead`). `--levers` adds max-autotune, warmstart with the HF recipe's dropout (0.1) and the HF
recipe with `torch_compile=True`. Budget: under 4 minutes on one H200 with the defaults (about 3 with two
warmstart rows on 2026-12-04; the line above the table says how long it took); a failed variant prints its
error and leaves NaN in its row.
Without a GPU it runs (`--shapes tiny`, 12 steps) as a dry run of the script itself, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import CORPUS, corpus_lines, hf_recipe, model_flops_per_token, shared_tokenizer

SHAPES = {
    "base": dict(num_layers=12, hidden_size=768, num_heads=12, intermediate_size=3072, max_seq_len=128, batch=128),
    "small": dict(num_layers=4, hidden_size=256, num_heads=4, intermediate_size=1024, max_seq_len=128, batch=32),
    "tiny": dict(num_layers=2, hidden_size=64, num_heads=2, intermediate_size=256, max_seq_len=64, batch=8),
}


def bf16_matmul_peak(n: int = 8192, repeats: int = 10) -> float:
    """TFLOP/s of an n x n bf16 matmul on the GPU (best of `repeats`); on a CPU a small fp32 one, for the dry run."""
    if not torch.cuda.is_available():
        a = torch.randn(1024, 1024)
        t = time.perf_counter()
        a @ a
        return 2 * 1024**3 / (time.perf_counter() - t) / 1e12
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e12


def shape_overrides(tok_dir: Path, work: Path, out: Path, shape: dict) -> list[str]:
    """The benchmark's pretraining config at `shape` (no NSP, packed blocks, nothing held out or evaluated)."""
    model = {k: v for k, v in shape.items() if k != "batch"}
    return [f"output_dir={out}", f"corpus.sources=[{CORPUS}]", f"corpus.cache_dir={work / 'cache'}",
            f"tokenizer.from_checkpoint={tok_dir}", *[f"model.{k}={v}" for k, v in model.items()],
            "objective.nsp=false", f"train.batch_size={shape['batch']}", "corpus.validation_fraction=0",
            "corpus.min_validation_tokens=0", "train.patience=0"]


def warmstart_run(tok_dir: Path, work: Path, shape: dict, steps: int, overrides: list[str]) -> float:
    """tokens/s of `warmstart pretrain` over the steps after the first quarter (compilation, allocator warm-up).
    Logged every 5 steps: a log reads the losses back, which waits for the GPU, so a log at every step would
    cost the very overlap the loop is built for (the HF recipe, `logging_strategy="no"`, reads nothing back)."""
    from warmstart.config import PretrainConfig, load_config
    from warmstart.pretraining.text import run_pretrain

    out = work / f"ws-{len(list(work.glob('ws-*')))}"
    run_pretrain(load_config(PretrainConfig, None, [
        *shape_overrides(tok_dir, work, out, shape), f"train.max_steps={steps}", "train.log_every=5",
        f"train.eval_every={10 * steps}", "train.save_every_minutes=1000", *overrides]))
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    log = [r for r in log if "tokens_per_s" in r and r["step"] >= steps // 4]
    return (log[-1]["tokens"] - log[0]["tokens"]) / (log[-1]["seconds"] - log[0]["seconds"])


def hf_rate(tokenizer, lines: list[str], steps: int, shape: dict, bf16: bool, compile: bool) -> float:
    model = {k: v for k, v in shape.items() if k != "batch"}
    return hf_recipe(tokenizer, lines, steps, batch_size=shape["batch"], seq_len=shape["max_seq_len"], bf16=bf16,
                     model_shape=model, compile=compile)["tokens_per_s"]


def timed(fn, *args, **kwargs) -> float:
    """fn's tokens/s, or NaN (with the error printed) when a lever fails on this machine: one failed variant must
    not cost the other rows of a one-shot device run."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 (reported, and the row says it failed)
        print(f"  failed: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}", flush=True)
        return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=None, choices=sorted(SHAPES))
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--levers", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = ap.parse_args()
    gpu = torch.cuda.is_available()
    shapes = args.shapes or (["base", "small"] if gpu else ["tiny"])
    # 60 steps (the rate over the last 45): at 40, eager warmstart's two BERT-base runs on the H200 read 249k and 347k
    steps = args.steps or (60 if gpu else 12)
    # warmstart as a GPU user runs it (configs/pretrain/bert_base_gpu.yaml compiles the loss), without compile, and
    # compiled as CUDA graphs: the H200 profile of 2026-12-04 had the GPU idle half of each compiled step, which is
    # what replaying the step as graphs removes (launches, and the gaps between kernels). --levers adds
    # max-autotune and the HF recipe with its own lever, Trainer(torch_compile=True)
    variants = {"warmstart": [], "warmstart + compile": ["train.compile=true"],
                "warmstart + compile (CUDA graphs)": ["train.compile=true", "train.compile_mode=reduce-overhead"]}
    if args.levers:  # and warmstart with the HF recipe's dropout (0.1; warmstart's default is none): the engine
        # apart from that choice of the recipe
        variants |= {"warmstart + compile (max-autotune, no graphs)":
                     ["train.compile=true", "train.compile_mode=max-autotune-no-cudagraphs"],
                     "warmstart + compile, HF's dropout 0.1": ["train.compile=true", "model.dropout=0.1"]}
    hf_variants = {"HF recipe": False} | ({"HF recipe + torch_compile": True} if args.levers else {})
    rates = {s: {**{k: [] for k in hf_variants}, **{k: [] for k in variants}} for s in shapes}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tokenizer = shared_tokenizer(work / "tokenizer")
        lines = corpus_lines()
        for r in range(args.repeats):
            for s in shapes:
                shape = SHAPES[s]
                for name, compile_hf in hf_variants.items():
                    rates[s][name].append(timed(hf_rate, tokenizer, lines, steps, shape, gpu, compile_hf))
                for name, overrides in variants.items():
                    rates[s][name].append(timed(warmstart_run, work / "tokenizer", work, shape, steps, overrides))
                print(f"repeat {r + 1} {s}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates[s].items()),
                      flush=True)
    peak = bf16_matmul_peak()
    where = torch.cuda.get_device_name() if gpu else "CPU (dry run, not a measurement)"
    print(f"\n{where}; bf16 matmul peak measured now {peak:.0f} TFLOP/s; medians of {args.repeats} alternated "
          f"repeats of {steps} steps; {time.perf_counter() - began:.0f} s in all (the issue asks under 240)")
    print("| shape | recipe | tokens/s (median) | runs | vs HF | TFLOP/s | MFU |")
    print("|---|---|---|---|---|---|---|")
    results = []
    for s in shapes:
        flops = model_flops_per_token(len(tokenizer), model_shape=SHAPES[s])
        hf = statistics.median(rates[s]["HF recipe"])
        for name, values in rates[s].items():
            med = statistics.median(values) if all(v == v for v in values) else float("nan")
            tflops = med * flops / 1e12
            results.append({"shape": s, "recipe": name, "tokens_per_s": med, "runs": values, "vs_hf": med / hf,
                            "tflops": tflops, "mfu": tflops / peak})
            print(f"| {s} | {name} | {med:,.0f} | {' / '.join(f'{v:,.0f}' for v in values)} | {med / hf:.2f}x | "
                  f"{tflops:.1f} | {100 * tflops / peak:.1f}% |")
    if args.out:
        args.out.write_text(json.dumps({"device": where, "peak_tflops": peak, "steps": steps, "results": results},
                                       indent=2))


if __name__ == "__main__":
    main()
