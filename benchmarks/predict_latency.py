"""What a prediction costs from Python: `warmstart.predict` on a file (the model loaded at every call) against
`warmstart.Predictor` (loaded once, rows in memory), for one row at a time, as a notebook loop or a service
asks, and for a thousand rows at once.

    .venv/bin/python benchmarks/predict_latency.py [--calls 20] [--rows 1000] [--out benchmarks/results]

Fits the public MiniLM's linear probe on 100 Rotten Tomatoes labels (seconds), then times each way `--calls`
times, alternated, and prints medians (ms a call; rows/s for the batch). Run it alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name, publish  # noqa: E402

import warmstart  # noqa: E402
from warmstart.models.common import minilm_folder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "sentiment" / "rotten_tomatoes.csv"


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    texts = pd.read_csv(DATA).query("split == 'test'")["text"].tolist()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = warmstart.finetune("sentiment", init=str(minilm_folder()), output_dir=str(work / "model"),
                                 data={"path": str(DATA), "labels": 100},
                                 train={"strategy": "linear_probe", "max_length": 64})
        one, many = work / "one.csv", work / "many.csv"
        pd.DataFrame({"text": texts[:1]}).to_csv(one, index=False)
        pd.DataFrame({"text": texts[:args.rows]}).to_csv(many, index=False)
        t_first = time.perf_counter()
        predictor = warmstart.Predictor(run.output_dir)
        predictor.predict(texts[:1])
        first = time.perf_counter() - t_first
        file_call, memory_call = [], []
        for i in range(args.calls):  # alternated: one row each way
            file_call.append(timed(lambda: warmstart.predict(run.output_dir, one, work / "one.out.csv")))
            memory_call.append(timed(lambda i=i: predictor.predict(texts[i + 1:i + 2])))
        file_many = timed(lambda: warmstart.predict(run.output_dir, many, work / "many.out.csv"))
        memory_many = timed(lambda: predictor.predict(texts[:args.rows]))
        same = predictor.predict(texts[:args.rows])["prediction"].astype(str).tolist() == \
            pd.read_csv(work / "many.out.csv")["prediction"].astype(str).tolist()
    rows = [("`warmstart.predict(folder, file)`, 1 row", 1000 * statistics.median(file_call), ""),
            ("`Predictor.predict([text])`, 1 row (after its first call)", 1000 * statistics.median(memory_call), ""),
            ("`Predictor(folder)` + first call (the load)", 1000 * first, ""),
            (f"`warmstart.predict(folder, file)`, {args.rows} rows", 1000 * file_many, f"{args.rows / file_many:,.0f}"),
            (f"`Predictor.predict(texts)`, {args.rows} rows", 1000 * memory_many, f"{args.rows / memory_many:,.0f}")]
    table = "\n".join([f"| way | ms a call (median of {args.calls}) | rows/s |", "|---|---|---|",
                       *[f"| {name} | {ms:,.1f} | {rate} |" for name, ms, rate in rows]])
    text = (f"# Prediction latency from Python\n\nMiniLM linear probe (100 RT labels, max_length 64), {cpu_name()}, "
            f"torch {__import__('torch').__version__}; `{' '.join(sys.argv)}`\n\n{table}\n\n"
            f"Same predictions for the {args.rows} rows either way: {same}.\n")
    publish(text, args.out, "predict_latency.md")


if __name__ == "__main__":
    main()
