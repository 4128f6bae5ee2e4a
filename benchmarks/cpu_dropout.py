"""Dropout on a CPU: torch's `F.dropout` (one `bernoulli_` draw an element) against engine/dropout.py (16-bit
lanes of 64-bit draws), per call and in whole fine-tuning fits.

    .venv/bin/python benchmarks/cpu_dropout.py [--repeats 3] [--steps 60] [--out benchmarks/results]

Per call: the shapes of a SetFit step of MiniLM (32 texts of 40 tokens: hidden 384, FFN 1536, attention
probabilities of 12 heads), fp32 and bf16, medians of 50 calls. Fits: the public MiniLM on 100 Rotten Tomatoes
labels, SetFit and full fine-tuning, `--steps` steps each, with torch's dropout and with warmstart's,
alternated `--repeats` times in one process (fit seconds as metrics.json reports them, medians; test accuracy,
same seed, other masks). Run it alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name  # noqa: E402

import warmstart  # noqa: E402
from warmstart.engine import attention, runtime  # noqa: E402
from warmstart.engine.dropout import dropout, use_fast_dropout  # noqa: E402
from warmstart.models.common import minilm_folder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "sentiment" / "rotten_tomatoes.csv"
SHAPES = {"hidden (32, 40, 384)": (32, 40, 384), "FFN (32, 40, 1536)": (32, 40, 1536),
          "attention (32, 12, 40, 40)": (32, 12, 40, 40)}


def per_call(fn, x: torch.Tensor, n: int = 50) -> float:
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def fit(strategy: str, fast: bool, work: Path, steps: int) -> dict:
    """One fine-tuning fit with warmstart's dropout (`fast`) or torch's (place() and plain attention swapped)."""
    runtime.use_fast_dropout = use_fast_dropout if fast else (lambda model: 0)
    attention.fast_dropout = dropout if fast else F.dropout
    # a fixed number of steps either way: early stopping and LP-FT's keep-or-replace follow the masks, so a fit's
    # seconds would compare runs of different lengths (LP-FT kept its probe with one set of masks, not the other)
    train = {"strategy": strategy, "max_length": 64, "precision": "auto", "patience": 0}  # the recipe stops early
    train.update({"setfit": {"max_steps": steps}} if strategy == "setfit" else {"max_steps": steps})
    out = work / f"{strategy}-{'fast' if fast else 'torch'}-{time.monotonic_ns()}"
    run = warmstart.finetune("sentiment", init=str(minilm_folder()), output_dir=str(out),
                             data={"path": str(DATA), "labels": 100}, train=train)
    return {"seconds": run.metrics["seconds"], "accuracy": run.metrics["accuracy"],
            "steps": run.metrics.get("setfit_pairs", 0) // 16 or run.metrics.get("steps")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=60, help="SetFit's pair steps; full fine-tuning's steps")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    lines = ["| shape | dtype | torch ms | warmstart ms | speed-up |", "|---|---|---|---|---|"]
    for name, shape in SHAPES.items():
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(*shape, dtype=dtype)
            a, b = per_call(lambda t: F.dropout(t, 0.1), x), per_call(lambda t: dropout(t, 0.1), x)
            lines.append(f"| {name} | {str(dtype)[6:]} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")
    kernel = "\n".join(lines)
    print(kernel, flush=True)
    results: dict[tuple[str, bool], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for strategy in ("setfit", "full"):
                for fast in (False, True):
                    results.setdefault((strategy, fast), []).append(fit(strategy, fast, Path(tmp), args.steps))
            print(f"repeat {r + 1}: " + ", ".join(f"{s} {'fast' if f else 'torch'} {v[-1]['seconds']:.1f} s"
                                                  for (s, f), v in results.items()), flush=True)
    rows = ["| fit | dropout | steps | seconds (median) | runs | test accuracy | speed-up |", "|---|---|---|---|---|---|---|"]
    for strategy in ("setfit", "full"):
        base = statistics.median(r["seconds"] for r in results[(strategy, False)])
        for fast in (False, True):
            runs = results[(strategy, fast)]
            med = statistics.median(r["seconds"] for r in runs)
            seconds = " / ".join(f"{r['seconds']:.1f}" for r in runs)
            accuracy = " / ".join(f"{100 * r['accuracy']:.1f}" for r in runs)
            rows.append(f"| {strategy} | {'warmstart' if fast else 'torch'} | {runs[0]['steps']} | {med:.1f} | {seconds} | "
                        f"{accuracy} | "
                        f"{base / med:.2f}x |")
    text = (f"# Dropout on a CPU (`benchmarks/cpu_dropout.py`)\n\n{cpu_name()}, {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}; `{' '.join(sys.argv)}`\n\nPer call (p 0.1, medians of 50):\n\n{kernel}\n\n"
            f"Fits (MiniLM, 100 RT labels, SetFit and full fine-tuning, {args.steps} steps each; "
            f"{args.repeats} alternated repeats):\n\n" + "\n".join(rows) + "\n")
    print(text)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "cpu_dropout.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
