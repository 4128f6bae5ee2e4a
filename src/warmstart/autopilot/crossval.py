"""`warmstart auto`'s measurements, all inside the N labels: the labelled set and its folds, each pipeline's
out-of-fold predictions, and the intervals read from them.

Every pipeline is scored on the same stratified folds of the N labels (k = 5, or 3 when the budget is short,
never more than the smallest class's count): fitted on k-1 folds, it predicts the held-out one, so each of the N
labels gets one out-of-fold prediction from every pipeline and two pipelines can be compared example by example
(paired). Nothing outside the N reaches a fit, a choice or a score; test rows in the user's file are read only
to score the final model once every decision is made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from warmstart.errors import WarmstartError


@dataclass
class Labelled:
    """The N labels (texts, class ids, each row's fold) and the file's test rows (scored once, at the end)."""

    texts: list[str]
    y: np.ndarray
    names: list[str]
    folds: np.ndarray
    test_texts: list[str] = field(default_factory=list)
    test_y: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    unused: int = 0  # the file's training rows beyond the N, and its validation rows: never read again
    text_column: str = "text"  # the file's own name for it: the model auto writes predicts that file as it is

    @property
    def k(self) -> int:
        return int(self.folds.max()) + 1

    def set_folds(self, k: int, seed: int) -> Labelled:
        """Assign each of the N labels to one of k stratified, seeded folds."""
        from sklearn.model_selection import StratifiedKFold

        split = StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(self.y)), self.y)
        for i, (_, held) in enumerate(split):
            self.folds[held] = i
        return self

    def fold(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(training rows, held-out rows) of fold i."""
        return np.flatnonzero(self.folds != i), np.flatnonzero(self.folds == i)

    def table(self, rows: np.ndarray | None = None, test_rows: np.ndarray | None = None,
              with_test: bool = False) -> pd.DataFrame:
        """A labelled table that the fine-tuning task reads: `rows` of the N as split=train, then `test_rows` of
        the N (a fold's held-out part) or, `with_test`, the file's test rows, as split=test."""
        rows = np.arange(len(self.y)) if rows is None else rows
        text = self.text_column
        parts = [pd.DataFrame({text: [self.texts[i] for i in rows], "label": [self.names[c] for c in self.y[rows]],
                               "split": "train"})]
        if test_rows is not None:
            parts.append(pd.DataFrame({text: [self.texts[i] for i in test_rows],
                                       "label": [self.names[c] for c in self.y[test_rows]], "split": "test"}))
        if with_test and len(self.test_y):
            parts.append(pd.DataFrame({text: self.test_texts, "label": [self.names[c] for c in self.test_y],
                                       "split": "test"}))
        return pd.concat(parts, ignore_index=True)


def load_labelled(path: str, text_column: str, label_column: str, labels: int | None, per_class: int | None,
                  seed: int, folds: int) -> Labelled:
    """Read the user's labelled table (a `split` column's test rows are kept apart; without one every row is a
    label), draw the N (`labels`, stratified; or `per_class` of each class) exactly as a fine-tuning run with
    `data.labels` draws them, and assign folds."""
    from warmstart.config import LabelledDataConfig
    from warmstart.data.sample import check_classes
    from warmstart.data.sources import read_table
    from warmstart.tasks.classification import load_splits, subsample

    has_split = "split" in read_table(path).columns
    data = LabelledDataConfig(path=path, text_column=text_column, label_column=label_column,
                              split_column="split" if has_split else None,
                              validation_size=0.0, test_size=0.0)
    splits, names = load_splits(data, seed)
    pool = splits["train"]
    n = per_class * len(names) if per_class else labels
    drawn = subsample(pool, n, seed, "--per-class" if per_class else "--labels", balanced=bool(per_class))
    y = drawn["label"].to_numpy()
    check_classes([names[c] for c in y], path)  # one class: nothing to choose between (sklearn would raise deep)
    counts = np.bincount(y, minlength=len(names))
    if (counts < 2).any():
        few = names[int(np.argmin(counts))]
        raise WarmstartError(f"{path}: class {few!r} has {int(counts.min())} label(s) among the N; auto "
                             "cross-validates inside the labels and needs at least 2 of every class")
    test = splits["test"]
    data = Labelled(drawn["text"].tolist(), y, [str(x) for x in names], np.zeros(len(y), dtype=int),
                    test["text"].tolist(), test["label"].to_numpy(), len(pool) - len(drawn) + len(splits["validation"]),
                    _table_column(text_column))
    return data.set_folds(int(min(folds, counts.min())), seed)


def _table_column(name: str) -> str:
    """The text column of the tables auto writes: the user's own name, so `warmstart predict` reads their file
    as it is (its default is the column the model was trained on); "text" where that name would clash with the
    table's other columns or not read back as a string from a `data.text_column=...` override."""
    import yaml

    return name if name not in ("label", "split") and isinstance(yaml.safe_load(name), str) else "text"


# ---------------------------------------------------------------- out-of-fold predictions, one per pipeline
def oof_probe(x: np.ndarray, data: Labelled, seed: int, rows: Callable[[np.ndarray], np.ndarray] | None = None
              ) -> np.ndarray:
    """A linear probe (logistic regression on frozen features x: (N, H), C by cross-validation inside each fold's
    training part), out of fold. `rows`: a subset of each fold's training rows (the label-efficiency curve).
    -> (N,) predicted class ids"""
    from warmstart.models.probe import fit_logistic_cv

    pred = np.zeros(len(data.y), dtype=int)
    for i in range(data.k):
        train, held = data.fold(i)
        train = rows(train) if rows else train
        fit = fit_logistic_cv(x[train], data.y[train], seed)
        pred[held] = fit["classes"][(x[held] @ fit["weight"].T + fit["bias"]).argmax(1)]
    return pred


def oof_tfidf(data: Labelled, seed: int, rows: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """TF-IDF + logistic regression (studies/baselines.py, C inside each fold's training part), out of fold."""
    from warmstart.studies.baselines import tfidf_predict_cv

    pred = np.zeros(len(data.y), dtype=int)
    for i in range(data.k):
        train, held = data.fold(i)
        train = rows(train) if rows else train
        pred[held], _ = tfidf_predict_cv([data.texts[j] for j in train], data.y[train],
                                         [data.texts[j] for j in held], seed)
    return pred


def fraction_of(fraction: float, y: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A stratified `fraction` of a fold's training rows (at least 2 of each class), for the curve."""
    def pick(train: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = []
        for c in np.unique(y[train]):
            mine = train[y[train] == c]
            out.append(rng.permutation(mine)[:max(2, round(fraction * len(mine)))])
        return np.sort(np.concatenate(out))
    return pick


def fold_setfit_library(data: Labelled, i: int, seed: int, settings, body: str | None = None) -> np.ndarray:
    """SetFit through the setfit library (studies/baselines.setfit_predict) on fold i. -> held-out predictions"""
    from warmstart.studies.baselines import setfit_predict

    train, held = data.fold(i)
    return setfit_predict([data.texts[j] for j in train], data.y[train], [data.texts[j] for j in held], seed,
                          settings, body)


def fold_finetune(data: Labelled, i: int | None, folder: Path, encoder: str, overrides: list[str],
                  with_test: bool = False, save_model: bool = False, run_dir: Path | None = None
                  ) -> tuple[np.ndarray, dict]:
    """One warmstart fine-tuning run (the task registry's `run_task`, the honest protocol inside its own labels) on
    fold i's training rows, predicting the held-out rows; `i` None: on all N (the refit), predicting the file's
    test rows when `with_test`. Its table lives in `folder`, its run in `run_dir` (default `folder`/run); a
    finished run with the same settings is reused. -> (predicted class ids of the split=test rows, the run's metrics)"""
    from warmstart.config import FinetuneConfig, finished_with, load_config
    from warmstart.tasks.finetune import scored_by_caller
    from warmstart.tasks.registry import run_task

    folder.mkdir(parents=True, exist_ok=True)
    train, held = data.fold(i) if i is not None else (None, None)
    table = folder / "labels.csv"
    frame = data.table(train, held, with_test)
    if not table.is_file() or not pd.read_csv(table, keep_default_na=False).astype(str).equals(frame.astype(str)):
        frame.to_csv(table, index=False)
    cfg = load_config(FinetuneConfig, None, [
        f"output_dir={run_dir or folder / 'run'}", f"init={encoder}", f"tokenizer={encoder}", f"data.path={table}",
        f"data.text_column={data.text_column}", "task=classification", f"train.save_model={str(save_model).lower()}", *overrides])
    out = Path(cfg.output_dir)
    if finished_with(out, cfg):
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    else:
        with scored_by_caller():  # the refit's score is the cross-validation; its own "no test split" is not news
            metrics = run_task(cfg)
    test = frame[frame["split"] == "test"]
    if not len(test):
        return np.zeros(0, dtype=int), metrics
    predicted = pd.read_csv(out / "predictions.csv", keep_default_na=False)["prediction"].astype(str)
    index = {n: c for c, n in enumerate(data.names)}
    return predicted.map(index).to_numpy(), metrics


# ---------------------------------------------------------------- what the predictions say
def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(y)))


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval of an accuracy of `correct` out of `n` (stays inside 0..1, sound at small n)."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre - half) / (1 + z * z / n)), float((centre + half) / (1 + z * z / n))


def paired_gap(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> dict:
    """Pipeline a minus pipeline b on the same N out-of-fold predictions, in accuracy points: the mean of the
    per-example differences (1, 0 or -1) and its 95% t interval. `verdict`: better / worse / not clearly
    different (the interval straddles 0) / the same (right and wrong on the same labels: no interval to read)."""
    from scipy import stats

    d = (np.asarray(a) == y).astype(float) - (np.asarray(b) == y).astype(float)
    mean = float(d.mean()) * 100
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) * 100 if len(d) > 1 else np.inf
    low, high = mean - half, mean + half
    word = ("the same" if not d.any() else "better" if low > 0 else "worse" if high < 0
            else "not clearly different")
    return {"gap": round(mean, 1), "low": round(low, 1), "high": round(high, 1), "verdict": word}
