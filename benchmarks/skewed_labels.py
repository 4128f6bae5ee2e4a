"""A skewed table: what `warmstart auto --metric balanced_accuracy` (every class weighed alike in each fit,
choice and score) buys over the default accuracy, on the same labels, seeds and test rows.

    .venv/bin/python benchmarks/skewed_labels.py [--labels 200] [--rare 0.15] [--seeds 3] [--budget 4m]

Each seed draws `--labels` Rotten Tomatoes training reviews, a `--rare` share of them positive, and writes them
with 600 test reviews of the same skew (90 positive); `warmstart.auto` runs on that table once with each metric
(MiniLM the one candidate, no unlabelled text), and the delivered model's own test predictions
(OUT/model/predictions.csv) are scored: accuracy, balanced accuracy (the mean of the two recalls), macro-F1 and
how many of the 90 positive reviews it found. Also each run's chosen pipeline and its cross-validated figure.
Runs one after the other, alone (2 cores). Writes benchmarks/results/skewed_labels.md (and .csv).
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
from sklearn.metrics import balanced_accuracy_score, f1_score

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name, publish  # noqa: E402

import warmstart  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sentiment" / "rotten_tomatoes.csv"
METRICS = ("accuracy", "balanced_accuracy")
TEST = {"positive": 90, "negative": 510}


def skewed_table(n: int, rare: float, seed: int, path: Path) -> Path:
    """n training reviews (a `rare` share positive) and the fixed skewed test rows, as auto reads them."""
    df = pd.read_csv(DATA)
    df["label"] = df["label"].map({0: "negative", 1: "positive"})
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    pos = round(n * rare)
    parts = [train[train["label"] == "positive"].sample(pos, random_state=seed),
             train[train["label"] == "negative"].sample(n - pos, random_state=seed)]
    parts += [test[test["label"] == c].sample(k, random_state=0) for c, k in TEST.items()]  # the same every seed
    pd.concat(parts)[["text", "label", "split"]].sample(frac=1, random_state=seed).to_csv(path, index=False)
    return path


def scored(out: Path, verdict: dict) -> dict:
    """The delivered model's test predictions, scored; its choice and cross-validated figure."""
    p = pd.read_csv(out / "model" / "predictions.csv")
    y, pred = p["label"].astype(str), p["prediction"].astype(str)
    return {"chosen": verdict["chosen"]["name"], "cv": verdict["chosen"]["score"],
            "accuracy": round(100 * float((y == pred).mean()), 1),
            "balanced_accuracy": round(100 * balanced_accuracy_score(y, pred), 1),
            "macro_f1": round(100 * f1_score(y, pred, average="macro"), 1),
            "found": int(((pred == "positive") & (y == "positive")).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=int, default=200)
    ap.add_argument("--rare", type=float, default=0.15)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", default="4m")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="skewed-") as tmp:
        for seed in range(args.seeds):
            table = skewed_table(args.labels, args.rare, seed, Path(tmp) / f"skewed{seed}.csv")
            for metric in METRICS:
                out, t0 = Path(tmp) / f"auto-{metric}-{seed}", time.perf_counter()
                result = warmstart.auto(table, budget=args.budget, output_dir=out, seed=seed, metric=metric)
                rows.append({"seed": seed, "metric": metric, **scored(out, result.verdict),
                             "minutes": round((time.perf_counter() - t0) / 60, 1)})
                print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    frame.to_csv(Path(args.out) / "skewed_labels.csv", index=False)
    pos = round(args.labels * args.rare)
    lines = ["# A skewed table: auto's --metric accuracy against balanced_accuracy\n",
             f"`.venv/bin/python benchmarks/skewed_labels.py --labels {args.labels} --rare {args.rare} --seeds "
             f"{args.seeds} --budget {args.budget}` on {cpu_name()} (2 cores), torch 2.13.0+cpu, one run per seed "
             f"and metric, alone.\n",
             f"{args.labels} Rotten Tomatoes training reviews per seed, {pos} of them positive; 600 test reviews "
             f"(90 positive), the same for every seed; MiniLM the one candidate, no unlabelled text, budget "
             f"{args.budget}. Test figures are the delivered model's own predictions (model/predictions.csv); "
             "'found': of the 90 positive test reviews; cv: the chosen pipeline's cross-validated figure in the "
             "run's own metric.\n",
             "| metric | seed | chosen | cv | test accuracy | test balanced accuracy | test macro-F1 | found | min |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.metric} | {r.seed} | {r.chosen} | {r.cv} | {r.accuracy} | {r.balanced_accuracy} | {r.macro_f1} | "
              f"{r.found} | {r.minutes} |" for r in frame.itertuples()]
    lines += ["", "Medians over the seeds:", "",
              "| metric | test accuracy | test balanced accuracy | test macro-F1 | found (of 90) |", "|---|---|---|---|---|"]
    for metric in METRICS:
        part = frame[frame["metric"] == metric]
        lines.append(f"| {metric} | " + " | ".join(str(statistics.median(part[c])) for c in
                                                  ("accuracy", "balanced_accuracy", "macro_f1", "found")) + " |")
    gaps = (frame[frame.metric == "balanced_accuracy"].set_index("seed")["balanced_accuracy"]
            - frame[frame.metric == "accuracy"].set_index("seed")["balanced_accuracy"])
    lines.append(f"\nPaired by seed, balanced_accuracy minus accuracy in test balanced accuracy: "
                 f"{', '.join(f'{g:+.1f}' for g in gaps)} points (median {np.median(gaps):+.1f}).\n")
    publish("\n".join(lines), args.out, "skewed_labels.md")


if __name__ == "__main__":
    main()
