"""How the linear probe should choose its regularisation inside N labels (models/probe.fit_logistic_cv).

The probe (`linear_probe`, LP-FT's first stage, auto's probe pipelines) is logistic regression on standardised
frozen features, C chosen by k-fold cross-validation inside the N labels. With few labels that choice is noisy.
This compares, on the same draws, rules that stay a linear head on the raw features (so the probe folds into an
HF classifier's Linear and the checkpoint loads without warmstart):

- `cv`: the C of best cross-validated accuracy (today's rule);
- `cv_1se`: the smallest C whose cross-validated accuracy is within one standard error of the best (Hastie et al.,
  "Elements of Statistical Learning", 7.10: prefer the simpler model the data cannot tell apart);
- `C=c`: one fixed C for every N;

and, as a reference that does not fold into a Linear, `l2_C1`: SetFit's head (sklearn's default C=1 on
L2-normalised embeddings).

Features: MiniLM (mean-pooled, as shipped) on the four dev tasks of benchmarks/dev_tasks.py (a seeded 3,000 of
the training rows are the pool the N are drawn from; a seeded 1,000 of the test rows score). N labels drawn
stratified (data/sample.draw), 12 draws each.

    .venv/bin/python benchmarks/probe_c.py [--draws 12]   # ~10 min on 2 CPU cores; writes results/probe_c.md
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from warmstart.data.sample import draw
from warmstart.errors import WarmstartError
from warmstart.models.common import minilm_folder
from warmstart.models.probe import PROBE_CS, _standardisation, fit_logistic_cv
from warmstart.select.rank import sentence_features

HERE = Path(__file__).resolve().parent
NS = (16, 32, 64, 128, 256)
FIXED = (0.01, 0.03, 0.1, 0.3)


def features(task: str, root: Path) -> dict[str, np.ndarray]:
    """MiniLM features of a task's pool and test rows, computed once (cached as .npz)."""
    from dev_tasks import build

    cached = root / f"{task}.npz"
    if not cached.is_file():
        rows = pd.read_csv(build(task, root / "data") / "labelled.csv")
        names = sorted(rows.label.astype(str).unique())
        rows["y"] = rows.label.astype(str).map({n: i for i, n in enumerate(names)})
        pool = rows[rows.split == "train"].sample(frac=1, random_state=0).head(3000)
        test = rows[rows.split == "test"].sample(frac=1, random_state=0).head(1000)
        x = {part: sentence_features(minilm_folder(), df.text.astype(str).tolist(), 128, False)
             for part, df in (("x", pool), ("xt", test))}
        np.savez(cached, y=pool.y.to_numpy(), yt=test.y.to_numpy(), **x)
    with np.load(cached) as f:
        return {k: f[k] for k in f.files}


def cv_table(x: np.ndarray, y: np.ndarray, seed: int, folds: int = 5) -> dict[float, list[float]]:
    """Held-out accuracy of each C in each fold, exactly as fit_logistic_cv computes them."""
    k = min(folds, int(np.bincount(np.unique(y, return_inverse=True)[1]).min()))
    scores = {c: [] for c in PROBE_CS}
    if k < 2:
        return scores
    for tr, va in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
        mu, sd = _standardisation(x[tr])
        clf = LogisticRegression(max_iter=2000, random_state=seed, warm_start=True)
        for c in PROBE_CS:
            clf.set_params(C=c).fit((x[tr] - mu) / sd, y[tr])
            scores[c].append(float((clf.predict((x[va] - mu) / sd) == y[va]).mean()))
    return scores


def one_se(scores: dict[float, list[float]]) -> float:
    """The smallest C within one standard error of the best mean (C=0.1 when no fold was possible)."""
    if not scores[PROBE_CS[0]]:
        return 0.1
    means = {c: float(np.mean(v)) for c, v in scores.items()}
    best = max(means, key=lambda c: means[c])
    se = float(np.std(scores[best], ddof=1) / np.sqrt(len(scores[best])))
    return min(c for c in PROBE_CS if means[c] >= means[best] - se)


def accuracy(fit: dict, xt: np.ndarray, yt: np.ndarray) -> float:
    return float((fit["classes"][(xt @ fit["weight"].T + fit["bias"]).argmax(1)] == yt).mean() * 100)


def run(task: str, data: dict, draws: int) -> list[dict]:
    x, y, xt, yt = data["x"], data["y"], data["xt"], data["yt"]
    norm = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    out = []
    for n in NS:
        for seed in range(draws):
            try:
                idx = draw(len(y), n, seed, y)
            except WarmstartError:  # a class too small to draw from at this N
                continue
            xs, ys = x[idx], y[idx]
            row = {"task": task, "n": n, "seed": seed}
            row["cv"] = accuracy(fit_logistic_cv(xs, ys, seed), xt, yt)
            row["cv_1se"] = accuracy(fit_logistic_cv(xs, ys, seed, cs=(one_se(cv_table(xs, ys, seed)),)), xt, yt)
            for c in FIXED:
                row[f"C={c}"] = accuracy(fit_logistic_cv(xs, ys, seed, cs=(c,)), xt, yt)
            row["l2_C1"] = float((LogisticRegression(max_iter=2000).fit(norm(xs), ys).predict(norm(xt)) == yt).mean()
                                 * 100)
            out.append(row)
    return out


def main() -> None:
    from dev_tasks import TASKS
    from few_label import cpu_name

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=12)
    ap.add_argument("--root", default="runs/probe_c")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    t0, rows = time.perf_counter(), []
    for task in TASKS:
        rows += run(task, features(task, root), args.draws)
        print(f"{task} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(HERE / "results" / "probe_c.csv", index=False)
    methods = [c for c in df.columns if c not in ("task", "n", "seed")]
    lines = ["# How the probe chooses C inside N labels", "",
             f"`.venv/bin/python benchmarks/probe_c.py --draws {args.draws}`; MiniLM mean-pooled features; "
             f"{cpu_name()}, 2 threads; {time.strftime('%Y-%m-%d')}. Mean test accuracy (%) "
             f"over {args.draws} stratified draws of N labels; `cv` is today's rule. Per-row data: probe_c.csv.", "",
             "| task | N | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for (task, n), g in df.groupby(["task", "n"], sort=False):
        lines.append(f"| {task} | {n} | " + " | ".join(f"{g[m].mean():.1f}" for m in methods) + " |")
    lines += ["", "Paired difference to `cv`, all tasks and N (mean, and the share of draws where it is higher / "
              "lower):", ""]
    for m in methods[1:]:
        d = df[m] - df["cv"]
        lines.append(f"- `{m}`: {d.mean():+.2f} points (higher in {(d > 0).mean():.0%}, lower in {(d < 0).mean():.0%})")
    (HERE / "results" / "probe_c.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
