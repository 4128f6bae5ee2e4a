"""A skewed table's classes made to weigh alike, three ways, side by side: `none` (as they come), `weighted`
(scikit-learn's class_weight="balanced"; the cross-entropy weighted N / (C * n_c)) and `adjusted` (logit
adjustment, Menon et al., 2021: each class's log share subtracted from its score, post hoc for a closed-form head,
added to the logits inside the loss for fine-tuning).

    .venv/bin/python benchmarks/class_balance.py [--seeds 5] [--finetune-seeds 3] [--out benchmarks/results]

Rotten Tomatoes: each seed draws N training reviews of which K are positive, for (N, K) in SIZES; 600 test reviews
(90 positive), the same for every draw. Probe: logistic regression on MiniLM's mean-pooled fp32 features (C by
5-fold cross-validation inside the N, scored as the balance says: accuracy for none, balanced accuracy else),
exactly models/probe.fit_logistic_cv; TF-IDF + LR: studies/baselines.tfidf_predict_cv. Fine-tuning: `warmstart
finetune`'s LP-FT on MiniLM (auto's rates) at N=200, K=30 with `train.class_balance` each way. Test balanced
accuracy (the mean of the two recalls), accuracy, and the positives found. Writes class_balance.md. Run it alone.
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

from warmstart.models.common import minilm_folder  # noqa: E402
from warmstart.models.probe import balanced_accuracy, fit_logistic_cv  # noqa: E402
from warmstart.select.rank import sentence_features  # noqa: E402
from warmstart.studies.baselines import tfidf_predict_cv  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sentiment" / "rotten_tomatoes.csv"
SIZES = ((60, 6), (100, 20), (200, 30), (300, 30))
BALANCES = ("none", "weighted", "adjusted")


def draws(seed: int, n: int, k: int) -> pd.DataFrame:
    df = pd.read_csv(DATA)
    train = df[df["split"] == "train"]
    return pd.concat([train[train["label"] == 1].sample(k, random_state=seed),
                      train[train["label"] == 0].sample(n - k, random_state=seed)])


def test_rows() -> pd.DataFrame:
    df = pd.read_csv(DATA)
    test = df[df["split"] == "test"]
    return pd.concat([test[test["label"] == 1].sample(90, random_state=0),
                      test[test["label"] == 0].sample(510, random_state=0)])


def figures(y: np.ndarray, pred: np.ndarray) -> dict:
    return {"balanced_accuracy": round(100 * balanced_accuracy(y, pred), 1),
            "accuracy": round(100 * float((y == pred).mean()), 1), "found": int(((pred == 1) & (y == 1)).sum())}


def finetune(table: pd.DataFrame, test: pd.DataFrame, balance: str, seed: int, root: Path) -> dict:
    from warmstart.config import FinetuneConfig, load_config
    from warmstart.tasks.registry import run_task

    path = root / f"t{seed}.csv"
    pd.concat([table.assign(split="train"), test.assign(split="test")])[["text", "label", "split"]].to_csv(
        path, index=False)
    out = root / f"ft-{balance}-{seed}"
    cfg = load_config(FinetuneConfig, None, [
        f"output_dir={out}", f"init={minilm_folder()}", f"tokenizer={minilm_folder()}", f"data.path={path}",
        "train.strategy=lp_ft", "train.lr=5e-5", "train.head_lr=1e-3", f"train.seed={seed}",
        f"train.class_balance={balance}", "train.save_model=false"])
    t0 = time.perf_counter()
    run_task(cfg)
    p = pd.read_csv(out / "predictions.csv")
    return {**figures(p["label"].to_numpy(), p["prediction"].to_numpy()),
            "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--finetune-seeds", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    test = test_rows()
    folder = str(minilm_folder())
    x_test, y_test = sentence_features(folder, test["text"].tolist(), 128, False), test["label"].to_numpy()
    rows = []
    for n, k in SIZES:
        for seed in range(args.seeds):
            table = draws(seed, n, k)
            x, y = sentence_features(folder, table["text"].tolist(), 128, False), table["label"].to_numpy()
            for balance in BALANCES:
                fit = fit_logistic_cv(x, y, seed, balance=balance)
                pred = fit["classes"][(x_test @ fit["weight"].T + fit["bias"]).argmax(1)]
                rows.append({"model": "probe", "n": n, "k": k, "seed": seed, "balance": balance,
                             **figures(y_test, pred)})
                pred = tfidf_predict_cv(table["text"].tolist(), y, test["text"].tolist(), seed, balance=balance)[0]
                rows.append({"model": "tfidf", "n": n, "k": k, "seed": seed, "balance": balance,
                             **figures(y_test, pred)})
            print(rows[-6:], flush=True)
    with tempfile.TemporaryDirectory(prefix="class-balance-") as tmp:
        for seed in range(args.finetune_seeds):
            table = draws(seed, 200, 30)
            for balance in BALANCES:
                rows.append({"model": "lp_ft", "n": 200, "k": 30, "seed": seed, "balance": balance,
                             **finetune(table, test, balance, seed, Path(tmp))})
                print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(Path(args.out) / "class_balance.csv", index=False)
    lines = ["# A skewed table's classes weighed alike: none, weighted, adjusted\n",
             f"`.venv/bin/python benchmarks/class_balance.py --seeds {args.seeds} --finetune-seeds "
             f"{args.finetune_seeds}` on {cpu_name()} (2 cores), torch 2.13.0+cpu, alone.\n",
             "Rotten Tomatoes, N training reviews of which K positive (seeded draws); 600 test reviews, 90 positive, "
             "the same for every draw. probe: MiniLM mean-pooled fp32 features, models/probe.fit_logistic_cv; tfidf: "
             "studies/baselines.tfidf_predict_cv; lp_ft: `warmstart finetune` LP-FT on MiniLM (lr 5e-5, head 1e-3, "
             "default epochs). Medians over the seeds of test balanced accuracy (%), in brackets the mean; then "
             "accuracy and positive test reviews found (of 90), medians.\n",
             "| model | N | K | seeds | " + " | ".join(f"{b}: balanced acc. (mean)" for b in BALANCES)
             + " | " + " | ".join(f"{b}: acc. / found" for b in BALANCES) + " |",
             "|---|---|---|---|" + "---|" * (2 * len(BALANCES))]
    for (model, n, k), part in frame.groupby(["model", "n", "k"], sort=False):
        cells, more = [], []
        for b in BALANCES:
            arm = part[part["balance"] == b]
            cells.append(f"{statistics.median(arm['balanced_accuracy']):.1f} ({arm['balanced_accuracy'].mean():.1f})")
            more.append(f"{statistics.median(arm['accuracy']):.1f} / {statistics.median(arm['found']):.0f}")
        lines.append(f"| {model} | {n} | {k} | {part['seed'].nunique()} | " + " | ".join(cells + more) + " |")
    adjusted = frame[frame.balance == "adjusted"].set_index(["model", "n", "k", "seed"])["balanced_accuracy"]
    weighted = frame[frame.balance == "weighted"].set_index(["model", "n", "k", "seed"])["balanced_accuracy"]
    gap = adjusted - weighted
    lines.append(f"\nadjusted minus weighted, paired by draw: median {gap.median():+.1f} points of balanced accuracy, "
                 f"{int((gap > 0).sum())} draws above, {int((gap < 0).sum())} below, {int((gap == 0).sum())} equal "
                 f"(of {len(gap)}).\n")
    publish("\n".join(lines), args.out, "class_balance.md")


if __name__ == "__main__":
    main()
