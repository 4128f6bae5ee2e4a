"""`warmstart predict` on a file that repeats its texts: what predicting each distinct text once saves.

    .venv/bin/python benchmarks/predict_repeats.py [--rows 6144] [--share 0.3] [--repeats 3] [--out benchmarks/results]

Fits the public MiniLM's linear probe on 100 Rotten Tomatoes labels, then writes two files of `--rows` rows: the
dataset's texts, all different, and the same number of rows of which a `--share` are copies of other rows (as
retweets and stock replies are). Both go through one loaded `warmstart.Predictor`, alternated `--repeats` times
(medians). The time should follow the distinct texts, not the rows. Run it alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name, publish  # noqa: E402

import warmstart  # noqa: E402
from warmstart.models.common import minilm_folder  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sentiment" / "rotten_tomatoes.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=6144)
    ap.add_argument("--share", type=float, default=0.3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    texts = pd.read_csv(DATA)["text"].drop_duplicates().tolist()[:args.rows]
    rng = np.random.default_rng(0)
    distinct = int(round(args.rows * (1 - args.share)))
    copies = [texts[i] for i in rng.integers(0, distinct, args.rows - distinct)]
    repeated = list(rng.permutation(np.array(texts[:distinct] + copies, dtype=object)))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = warmstart.finetune("sentiment", init=str(minilm_folder()), output_dir=str(work / "model"),
                                 data={"path": str(DATA), "labels": 100},
                                 train={"strategy": "linear_probe", "max_length": 64})
        files = {"all different": work / "distinct.csv", f"{args.share:.0%} copies": work / "repeated.csv"}
        pd.DataFrame({"text": texts}).to_csv(files["all different"], index=False)
        pd.DataFrame({"text": repeated}).to_csv(files[f"{args.share:.0%} copies"], index=False)
        counts = {name: pd.read_csv(path)["text"].nunique() for name, path in files.items()}
        predictor = run.predictor()
        predictor.predict(texts[:8])  # loaded and warm
        seconds = {name: [] for name in files}
        for _ in range(args.repeats):
            for name, path in files.items():
                t0 = time.perf_counter()
                predictor.predict(path)
                seconds[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(s) for name, s in seconds.items()}
    base = med["all different"]
    lines = ["# `warmstart predict` on repeated texts (`benchmarks/predict_repeats.py`)", "",
             f"{cpu_name()}, torch 2.13.0+cpu; MiniLM linear probe (precision auto), {args.rows:,} Rotten Tomatoes "
             f"rows a file, one loaded Predictor, medians of {args.repeats} alternated.", "",
             "| file | distinct texts | seconds | rows/s | time against all different |", "|---|---|---|---|---|"]
    for name, n in counts.items():
        lines.append(f"| {name} | {n:,} | {med[name]:.1f} | {args.rows / med[name]:,.0f} | {med[name] / base:.2f} |")
    publish("\n".join(lines) + "\n", args.out, "predict_repeats.md")


if __name__ == "__main__":
    main()
