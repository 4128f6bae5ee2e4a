"""Attention kernels on this CPU: PyTorch's SDPA against plain matmul-softmax-matmul, and what the timed choice
(`train.attention: auto`, engine/attention.py) buys a fine-tuning step and a prediction pass.

    .venv/bin/python benchmarks/attention.py [--repeats 3] [--steps 20] [--out benchmarks/results/attention.md]

1. One attention layer, forward and backward, 4,096 tokens a batch, at sequence lengths 32-512, 4 and 12 heads
   of 64, in bf16 (autocast) and fp32: the best of 3 calls of each kernel.
2. MiniLM-L6 (the public encoder) fine-tuned as a classifier on Rotten Tomatoes sentences (batch 16, padded to
   the batch's longest, `precision: auto`): ms per training step, and sentences a second when predicting
   (batch 64, no gradients), with SDPA and with the timed choice, alternated `--repeats` times.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent


def layer_ms(bf16: bool, heads: int, length: int, kernel) -> float:
    """Best of 3 forward + backward calls of `kernel(q, k, v)`, ms."""
    q, k, v = (torch.randn(max(1, 4096 // length), heads, length, 64, requires_grad=True) for _ in range(3))
    runs = []
    for _ in range(4):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = kernel(q, k, v)
        out.sum().backward()
        runs.append(time.perf_counter() - t)
    return 1e3 * min(runs[1:])


def kernels_table() -> list[str]:
    from warmstart.engine.attention import plain_attention

    rows = ["| precision | heads | length | SDPA ms | plain ms | plain / SDPA |", "|---|---|---|---|---|---|"]
    for bf16 in (True, False):
        for heads in (4, 12):
            for length in (32, 64, 128, 256, 512):
                s = layer_ms(bf16, heads, length, lambda q, k, v: F.scaled_dot_product_attention(q, k, v))
                p = layer_ms(bf16, heads, length, lambda q, k, v: plain_attention(q, k, v, None))
                rows.append(f"| {'bf16' if bf16 else 'fp32'} | {heads} | {length} | {s:.1f} | {p:.1f} | {p / s:.2f} |")
                print(rows[-1], flush=True)
    return rows


def finetune_figures(mode: str, texts: list[str], steps: int) -> tuple[float, float]:
    """(ms per training step, sentences/s predicting) of MiniLM as a classifier with attention `mode`."""
    from transformers import AutoModelForSequenceClassification

    from warmstart.data.text import load_tokenizer
    from warmstart.engine.attention import use_attention
    from warmstart.engine.runtime import autocast, place, use_bf16
    from warmstart.models.common import load_pretrained, minilm_folder

    bf16 = use_bf16("auto")
    tokenizer = load_tokenizer(str(minilm_folder()))
    torch.manual_seed(0)
    model = place(load_pretrained(AutoModelForSequenceClassification, minilm_folder(), quiet=True, num_labels=2,
                                  attn_implementation="sdpa"))
    use_attention(model, mode)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)

    def batch(i: int, size: int) -> dict:
        rows = [texts[(i * size + j) % len(texts)] for j in range(size)]
        return dict(tokenizer(rows, padding=True, truncation=True, max_length=128, return_tensors="pt"))

    model.train()
    times = []
    for i in range(steps + 3):
        b = batch(i, 16)
        t = time.perf_counter()
        with autocast(bf16):
            logits = model(**b).logits
        F.cross_entropy(logits.float(), torch.tensor([i % 2] * 16)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    model.eval()
    t, n = time.perf_counter(), 0
    with torch.no_grad(), autocast(bf16):
        for i in range(8):
            model(**batch(i, 64))
            n += 64
    return 1e3 * statistics.median(times[3:]), n / (time.perf_counter() - t)


def main() -> None:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from few_label import cpu_name

    with open("/proc/cpuinfo", encoding="utf-8") as f:
        amx = "with AMX" if " amx_bf16" in f.read() else "no AMX"
    lines = [f"{cpu_name()} ({amx}), {torch.get_num_threads()} threads, torch {torch.__version__}, "
             f"{time.strftime('%Y-%m-%d')}", "", "## 1. One attention layer, forward + backward, 4,096 tokens", ""]
    lines += kernels_table()
    texts = pd.read_csv(ROOT / "src" / "warmstart" / "demo_data" / "rotten_tomatoes.csv")["text"].tolist()
    figures: dict[str, list[tuple[float, float]]] = {"sdpa": [], "auto": []}
    for r in range(args.repeats):
        for mode in figures:
            figures[mode].append(finetune_figures(mode, texts, args.steps))
            print(f"repeat {r + 1} {mode}: {figures[mode][-1][0]:.1f} ms/step, {figures[mode][-1][1]:.0f} "
                  "sentences/s predicting", flush=True)
    step = {m: statistics.median(f[0] for f in v) for m, v in figures.items()}
    rate = {m: statistics.median(f[1] for f in v) for m, v in figures.items()}
    lines += ["", f"## 2. MiniLM-L6 classifier on Rotten Tomatoes sentences, medians of {args.repeats} alternated "
              "repeats", "", "| attention | training ms/step (batch 16) | runs | predicting sentences/s (batch 64) |",
              "|---|---|---|---|"]
    for m, v in figures.items():
        lines.append(f"| {'SDPA' if m == 'sdpa' else 'timed choice (auto)'} | {step[m]:.1f} | "
                     f"{' / '.join(f'{x[0]:.1f}' for x in v)} | {rate[m]:.0f} |")
    lines.append(f"\nauto vs SDPA: training steps {step['sdpa'] / step['auto']:.2f}x faster, predicting "
                 f"{rate['auto'] / rate['sdpa']:.2f}x")
    print("\n".join(lines[-5:]))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
