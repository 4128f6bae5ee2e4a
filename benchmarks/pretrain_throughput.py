"""Pretraining tokens/s: the Hugging Face recipe vs warmstart, same model, data, tokenizer and threads.

    .venv/bin/python benchmarks/pretrain_throughput.py [--repeats 3] [--steps 40] [--levers]

Alternates the two recipes `--repeats` times in one process and prints each one's tokens/s, the median
ratio, and warmstart's model-FLOPs utilisation against the matmul peaks measured on the spot (bf16
`nn.Linear` under autocast, which AMX makes fast, and fp32). `--levers` adds warmstart runs with one lever
changed at a time (dense MLM head, bf16 forced, fp32 forced, torch.compile, SDPA forced instead of the attention
timed per shape), to show what each one buys, and
the HF recipe with `bf16=True` (its own lever: on a CPU with AMX it is the rival a user who knows would run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch
from common import (
    CORPUS,
    MODEL,
    corpus_lines,
    hf_recipe,
    measured_peaks,
    model_flops_per_token,
    shared_tokenizer,
    steady_rate,
)


def warmstart_run(tok_dir: Path, work: Path, steps: int, overrides: list[str]) -> dict:
    from warmstart.config import PretrainConfig, load_config
    from warmstart.pretraining.text import run_pretrain

    out = work / "ws"
    cfg = load_config(PretrainConfig, None, [
        f"output_dir={out}", f"corpus.sources=[{CORPUS}]", f"corpus.cache_dir={work / 'cache'}",
        f"tokenizer.from_checkpoint={tok_dir}", *[f"model.{k}={v}" for k, v in MODEL.items()],
        "objective.nsp=false", "train.batch_size=32", f"train.max_steps={steps}", "train.log_every=1",
        f"train.eval_every={10 * steps}", "train.save_every_minutes=1000", *overrides])
    run_pretrain(cfg)
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    log = [r for r in log if "tokens_per_s" in r]
    return {"steps": len(log), "tokens_per_s": steady_rate([r["seconds"] for r in log], 32 * MODEL["max_seq_len"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--levers", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = {"warmstart": []}
    if args.levers:
        variants.update({"dense MLM head": ["objective.sparse_prediction=false"],
                         "bf16 forced": ["train.precision=bf16"], "fp32 forced": ["train.precision=fp32"],
                         "torch.compile": ["train.compile=true"], "SDPA forced": ["train.attention=sdpa"]})
    hf_variants = {"HF recipe": False} | ({"HF recipe, bf16": True} if args.levers else {})
    rates: dict[str, list[float]] = {**{k: [] for k in hf_variants}, **{k: [] for k in variants}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tokenizer = shared_tokenizer(work / "tokenizer")
        lines = corpus_lines()
        for r in range(args.repeats):
            for name, bf16 in hf_variants.items():
                rates[name].append(hf_recipe(tokenizer, lines, args.steps, bf16=bf16)["tokens_per_s"])
            for name, overrides in variants.items():
                rates[name].append(warmstart_run(work / "tokenizer", work, args.steps, overrides)["tokens_per_s"])
            print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items()), flush=True)
    peaks = measured_peaks()
    flops = model_flops_per_token(len(tokenizer))
    hf = statistics.median(rates["HF recipe"])
    print(f"\nBERT {MODEL['num_layers']}L/{MODEL['hidden_size']}H, vocab {len(tokenizer)}, seq {MODEL['max_seq_len']}, "
          f"batch 32, {args.threads} threads; medians of {args.repeats} alternated repeats of {args.steps} steps")
    print(f"peaks measured now: fp32 matmul {peaks['fp32_matmul_gflops']:.0f} GFLOP/s, "
          f"bf16 nn.Linear {peaks['bf16_linear_gflops']:.0f} GFLOP/s; model FLOPs/token {flops / 1e6:.1f} M")
    print("| recipe | tokens/s (median) | runs | vs HF | GFLOP/s | MFU vs bf16 peak | MFU vs best peak |")
    print("|---|---|---|---|---|---|---|")
    best_peak = max(peaks.values())
    for name, values in rates.items():
        med = statistics.median(values)
        gflops = med * flops / 1e9
        print(f"| {name} | {med:,.0f} | {' / '.join(f'{v:,.0f}' for v in values)} | {med / hf:.2f}x | {gflops:.0f} | "
              f"{100 * gflops / peaks['bf16_linear_gflops']:.0f}% | {100 * gflops / best_peak:.0f}% |")


if __name__ == "__main__":
    main()
