"""Inference batches in the input's order against longest-first (tasks/classification.inference_batches): the
padded tokens each computes and the seconds it takes, for the pooled features every probe, `rank` and `predict`
read.

    .venv/bin/python benchmarks/inference_order.py [--rows 2048] [--repeats 5] [--out benchmarks/results]

The public MiniLM over `--rows` Rotten Tomatoes test reviews and as many WNUT-16 tweets (max_length 128, batches
of 64, fp32 and, where `precision: auto` picks it on this CPU, bf16), the two orders alternated in one process,
`--repeats` times, medians. Run it alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name, publish  # noqa: E402

from warmstart.data.text import load_tokenizer  # noqa: E402
from warmstart.engine.runtime import place, use_bf16  # noqa: E402
from warmstart.models.common import load_pretrained, minilm_folder  # noqa: E402
from warmstart.tasks.classification import encode, features, inference_batches, make_batches  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def texts(name: str, rows: int) -> list[str]:
    if name == "Rotten Tomatoes reviews":
        return pd.read_csv(SHARED / "sentiment" / "rotten_tomatoes.csv").query("split == 'test'")["text"].tolist()[:rows]
    out, words = [], []
    for path in sorted((SHARED / "ner").rglob("*train*")):  # WNUT-16 CoNLL: a token a line, a blank between tweets
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    words.append(line.split()[0])
                elif words:
                    out.append(" ".join(words))
                    words = []
    return out[:rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    from transformers import AutoModel

    folder = minilm_folder()
    tokenizer, model = load_tokenizer(str(folder)), place(load_pretrained(AutoModel, folder, quiet=True))
    precisions = [False, *([True] if use_bf16("auto") else [])]
    lines = []
    for name in ("Rotten Tomatoes reviews", "WNUT-16 tweets"):
        enc = encode(tokenizer, pd.DataFrame({"text": texts(name, args.rows)}), 128)
        pad = tokenizer.pad_token_id
        given, longest = make_batches(enc, None, 64, pad), inference_batches(enc, 64, pad)
        real = sum(len(x) for x in enc[0])
        padded = [sum(b["input_ids"].numel() for b in bs) for bs in (given, longest)]
        for bf16 in precisions:
            times: dict[str, list[float]] = {"given": [], "longest": []}
            outs = {}
            for _ in range(args.repeats):
                for key, bs in (("given", given), ("longest", longest)):
                    t0 = time.perf_counter()
                    outs[key] = features(model, bs, "mean", bf16)
                    times[key].append(time.perf_counter() - t0)
            g, lo = statistics.median(times["given"]), statistics.median(times["longest"])
            diff = float(np.abs(outs["given"] - outs["longest"]).max())
            lines.append(f"| {name} ({len(enc[0]):,}, {real / len(enc[0]):.1f} tokens each) | "
                         f"{'bf16' if bf16 else 'fp32'} | {padded[0]:,} | {padded[1]:,} | {g:.2f} | {lo:.2f} | "
                         f"{g / lo:.2f} | {diff:.1e} |")
    table = "\n".join(["| texts | precision | padded tokens, input order | longest first | s, input order | "
                       "s, longest first | speed-up | max abs feature difference |", "|---|---|---|---|---|---|---|---|",
                       *lines])
    text = (f"# Inference batches: input order against longest first\n\nThe public MiniLM (mean pooling), max_length "
            f"128, batches of 64, {cpu_name()}, torch {__import__('torch').__version__}; medians of {args.repeats}, "
            f"alternated; `{' '.join(sys.argv)}`\n\n{table}\n")
    publish(text, args.out, "inference_order.md")


if __name__ == "__main__":
    main()
