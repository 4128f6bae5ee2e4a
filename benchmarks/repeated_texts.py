"""Labelled texts that repeat: how far the scores warmstart chooses by sit above the test set, with a text's copies
split across folds (before) and kept in one fold (data/sample.text_groups, now).

    .venv/bin/python benchmarks/repeated_texts.py [--seeds 5] [--auto-budget 3m] [--out benchmarks/results]

Tweets, tickets and reviews repeat: a user's 80 labels may be 48 texts, some several times. Each seed draws 24
Rotten Tomatoes training reviews per class and repeats each 0, 1, 2... more times (geometric: `some` adds a third
of a copy a text on average, `many` one copy), then computes, exactly as `warmstart auto` does (autopilot/crossval:
the N labels' folds, the out-of-fold linear probe on MiniLM features and TF-IDF + LR, kNN's rank score): each
score out of fold, and each model refitted on all the labels (C chosen inside them) on 1,000 test reviews. Both
arms in one process, side by side: `split` is the code before this change (text_groups answering None: plain
stratified k-fold), `grouped` the code now. `--auto-budget`: also `warmstart.auto` end to end on one `many`
table per arm (its cross-validated accuracy and its test accuracy). Run it alone.
"""

from __future__ import annotations

import argparse
import contextlib
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
import warmstart.data.sample as sample  # noqa: E402
from warmstart.autopilot.crossval import Labelled, oof_probe, oof_tfidf  # noqa: E402
from warmstart.autopilot.intervals import score  # noqa: E402
from warmstart.data.sample import most_folds  # noqa: E402
from warmstart.models.common import minilm_folder  # noqa: E402
from warmstart.models.probe import fit_logistic_cv  # noqa: E402
from warmstart.select.rank import score_cross_validated, sentence_features  # noqa: E402
from warmstart.studies.baselines import tfidf_predict_cv  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sentiment" / "rotten_tomatoes.csv"
LEVELS = {"none": 1.0, "some": 0.75, "many": 0.5}  # geometric p: extra copies a text average 1/p - 1
ARMS = ("split", "grouped")


@contextlib.contextmanager
def arm(name: str):
    """`split`: the code before copies were grouped (every caller asks text_groups, which then answers None)."""
    if name == "grouped":
        yield
        return
    import warmstart.tasks.labelled_table as labelled_table  # holds its own name for it

    real = sample.text_groups
    sample.text_groups = labelled_table.text_groups = lambda texts: None
    try:
        yield
    finally:
        sample.text_groups = labelled_table.text_groups = real


def table_of(pool: pd.DataFrame, per_class: int, p: float, seed: int) -> pd.DataFrame:
    """per_class reviews of each class, each repeated geometric(p) - 1 extra times, in a seeded order."""
    rng = np.random.default_rng([seed, 5])
    base = pool.groupby("label").sample(per_class, random_state=seed).reset_index(drop=True)
    idx = np.repeat(np.arange(len(base)), rng.geometric(p, len(base)))
    return base.iloc[rng.permutation(idx)].reset_index(drop=True)


def measure(table: pd.DataFrame, x: np.ndarray, test: pd.DataFrame, x_test: np.ndarray, seed: int) -> dict:
    """auto's estimates of one table and the test accuracy of the models refitted on it, under the current arm."""
    y = table["label"].to_numpy()
    data = Labelled(table["text"].tolist(), y, ["0", "1"], np.zeros(len(y), dtype=int))
    data.set_folds(most_folds(y, 5, data.groups), seed)
    probe = fit_logistic_cv(x, y, seed, groups=data.groups)
    tfidf = tfidf_predict_cv(data.texts, y, test["text"].tolist(), seed)[0]
    y_test = test["label"].to_numpy()
    return {"knn": score_cross_validated(x, y, seed, ("knn",), groups=data.groups)["knn"],
            "probe": score(oof_probe(x, data, seed), y), "tfidf": score(oof_tfidf(data, seed), y),
            "probe_test": float(((x_test @ probe["weight"].T + probe["bias"]).argmax(1) == y_test).mean()),
            "tfidf_test": float((tfidf == y_test).mean()), "probe_C": probe["C"]}


def run_auto(table: pd.DataFrame, test: pd.DataFrame, budget: str, root: Path) -> dict:
    path = root / "labelled.csv"
    pd.concat([table.assign(split="train"), test.assign(split="test")]).to_csv(path, index=False)
    t0 = time.perf_counter()
    result = warmstart.auto(path, budget=budget, output_dir=root / "auto").verdict
    c = result["chosen"]
    return {"pipeline": c["name"], "cv": c["score"], "test": round(100 * c["test_score"], 1),
            "minutes": round((time.perf_counter() - t0) / 60, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--per-class", type=int, default=24)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--auto-budget", default=None, help="also run warmstart.auto on one 'many' table per arm")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rt = pd.read_csv(DATA)
    pool = rt[rt.split == "train"][["text", "label"]].drop_duplicates("text")
    test = rt[(rt.split == "test") & ~rt.text.isin(pool.text)].sample(args.test, random_state=0)[["text", "label"]]
    folder = minilm_folder()
    x_test = sentence_features(folder, test["text"].tolist(), 128, False)
    rows = []
    for level, p in LEVELS.items():
        for seed in range(args.seeds):
            table = table_of(pool, args.per_class, p, seed)
            x = sentence_features(folder, table["text"].tolist(), 128, False)
            for name in ARMS:
                with arm(name):
                    rows.append({"level": level, "seed": seed, "arm": name, "n": len(table),
                                 "distinct": table["text"].nunique(), **measure(table, x, test, x_test, seed)})
            print(rows[-2], rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    lines = ["# Repeated labelled texts: the scores auto chooses by, against the test set (`benchmarks/repeated_texts.py`)",
             "", f"{cpu_name()}, torch 2.13.0+cpu; fp32 features of the public MiniLM; Rotten Tomatoes, {args.per_class} "
             f"reviews a class, each repeated (geometric extra copies), {args.seeds} seeds; test: {args.test} test "
             f"reviews none of which repeats a training one ({100 * test.label.mean():.1f}% positive: the majority "
             "class). Out of fold: auto's own folds (5) and code "
             "(crossval.oof_probe, oof_tfidf, rank's kNN). Test: the model refitted on all the labels, C chosen "
             "inside them by the arm's k-fold. Mean over seeds (min to max in brackets), accuracy %.", "",
             "| repeats | labels (distinct texts) | score | arm | out of fold | test | out of fold minus test |",
             "|---|---|---|---|---|---|---|"]
    for level in LEVELS:
        part = frame[frame.level == level]
        size = f"{part.n.mean():.0f} ({part.distinct.mean():.0f})"
        for what, test_col in (("knn", "probe_test"), ("probe", "probe_test"), ("tfidf", "tfidf_test")):
            for name in ARMS:
                a = part[part.arm == name]
                gap = 100 * (a[what] - a[test_col])
                test_cell = f"{100 * a[test_col].mean():.1f}" if what != "knn" else "(probe's)"
                lines.append(f"| {level} | {size} | {what} | {name} | {100 * a[what].mean():.1f} | {test_cell} | "
                             f"{gap.mean():+.1f} ({gap.min():+.1f} to {gap.max():+.1f}) |")
    cs = {name: statistics.median(frame[(frame.level == 'many') & (frame.arm == name)].probe_C) for name in ARMS}
    lines += ["", f"The probe's C at `many` (median over seeds): split {cs['split']}, grouped {cs['grouped']}."]
    if args.auto_budget:
        table = table_of(pool, args.per_class, LEVELS["many"], 0)
        lines += ["", f"`warmstart.auto`, budget {args.auto_budget}, one `many` table (seed 0, {len(table)} labels, "
                      f"{table.text.nunique()} distinct), the same {args.test} test rows:", "",
                  "| arm | chosen | cross-validated % | test % | minutes |", "|---|---|---|---|---|"]
        for name in ARMS:
            with arm(name), tempfile.TemporaryDirectory() as tmp:
                got = run_auto(table, test, args.auto_budget, Path(tmp))
            lines.append(f"| {name} | {got['pipeline']} | {got['cv']} | {got['test']} | {got['minutes']} |")
    lines += ["", f"Wall time {(time.perf_counter() - t0) / 60:.1f} min."]
    publish("\n".join(lines) + "\n", args.out, "repeated_texts.md")


if __name__ == "__main__":
    main()
