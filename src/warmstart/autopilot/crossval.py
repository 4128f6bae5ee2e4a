"""`warmstart auto`'s measurements, all inside the N labels: the labelled set and its folds, each pipeline's
out-of-fold predictions, and the final model's score on the file's test rows (the intervals read from the
predictions: autopilot/intervals.py).

Every pipeline is scored on the same stratified folds of the N labels (k = 5, or 3 when the budget is short,
never more than the smallest class's count): fitted on k-1 folds, it predicts the held-out one, so each of the N
labels gets one out-of-fold prediction from every pipeline and two pipelines can be compared example by example
(paired). A text's copies share a fold (data/sample.text_groups). A set of labels a text (lists in the label
column, `label_separator`, `label_columns`): micro-F1 and folds by iterative stratification. Nothing outside the N reaches a fit, a
choice or a score; test rows in the user's file are read only to score the final model once every decision is
made.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from warmstart.autopilot.intervals import interval, paired_gap, score
from warmstart.engine.outputs import replace_file
from warmstart.errors import WarmstartError


@dataclass
class Labelled:
    """The N labels (texts, class ids (N,) or, for sets of labels, 0/1 rows (N, L), each row's fold) and the file's
    test rows (scored once, at the end)."""

    texts: list[str]
    y: np.ndarray
    names: list[str]
    folds: np.ndarray
    test_texts: list[str] = field(default_factory=list)
    test_y: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    unused: int = 0  # the file's training rows beyond the N, and its validation rows: never read again
    text_column: str = "text"  # the file's own name for it: the model auto writes predicts that file as it is
    form: str | None = None  # sets of labels: how the file wrote them (multi_label.load_splits), which predict keeps
    balanced: bool = False  # --metric balanced_accuracy: every class weighs alike in every fit, choice and score

    @property
    def balance(self) -> str:
        """How every fit weighs the classes (config CLASS_BALANCES): logit-adjusted under balanced accuracy (what
        measured best: models/probe.fit_logistic), else as they come."""
        return "adjusted" if self.balanced else "none"

    @property
    def k(self) -> int:
        return int(self.folds.max()) + 1

    @property
    def multi(self) -> bool:
        return self.y.ndim == 2

    @property
    def metric(self) -> str:
        return "micro-F1" if self.multi else "balanced accuracy" if self.balanced else "accuracy"

    @property
    def split_column(self) -> str:
        return "split" if not self.multi or "split" not in self.names else "_split"

    def score(self, pred: np.ndarray) -> float:
        """The out-of-fold predictions' accuracy (balanced accuracy), or micro-F1 for sets of labels."""
        return score(pred, self.y, self.balanced)

    def interval(self, pred: np.ndarray) -> tuple[float, float]:
        """The 95% interval of `score(pred)` (autopilot/intervals.py)."""
        return interval(pred, self.y, self.balanced)

    def gap(self, a: np.ndarray, b: np.ndarray) -> dict:
        """Out-of-fold predictions a minus b on the N labels, paired (intervals.paired_gap)."""
        return paired_gap(a, b, self.y, self.balanced)

    @property
    def groups(self) -> np.ndarray | None:
        """(N,) ids shared by the copies of one text (data/sample.text_groups); None when all N differ."""
        from warmstart.data.sample import text_groups

        return text_groups(self.texts)

    def test_repeats(self) -> np.ndarray:
        """(M,) True where a test row of the file repeats one of the N texts (case and spaces aside): the model
        was fitted on that very text, so its score there is memory, not a forecast."""
        from warmstart.data.sample import text_groups

        ids = text_groups([*self.texts, *self.test_texts])
        if ids is None:
            return np.zeros(len(self.test_texts), dtype=bool)
        return np.isin(ids[len(self.texts):], ids[:len(self.texts)])

    def set_folds(self, k: int, seed: int) -> Labelled:
        """Assign each of the N labels to one of k stratified, seeded folds (iterative stratification for sets),
        the copies of a repeated text to one fold."""
        from warmstart.data.sample import iterative_folds, kfold

        if self.multi:
            self.folds[:] = iterative_folds(self.y, k, seed, self.groups)
            return self
        for i, (_, held) in enumerate(kfold(self.y, k, seed, self.groups)):
            self.folds[held] = i
        return self

    def fold(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(training rows, held-out rows) of fold i."""
        return np.flatnonzero(self.folds != i), np.flatnonzero(self.folds == i)

    def table(self, rows: np.ndarray | None = None, test_rows: np.ndarray | None = None,
              with_test: bool = False) -> pd.DataFrame:
        """A labelled table that the fine-tuning task reads: `rows` of the N as split=train, then `test_rows` of
        the N (a fold's held-out part) or, `with_test`, the file's test rows, as split=test. Sets of labels: one
        0/1 column per label (`data.label_columns`), so that every fold's model has every label, in one order,
        even one that its training rows never show."""
        rows = np.arange(len(self.y)) if rows is None else rows

        def part(texts: list[str], y: np.ndarray, split: str) -> pd.DataFrame:
            labels = (dict(zip(self.names, np.asarray(y).reshape(len(texts), -1).T, strict=True)) if self.multi
                      else {"label": [self.names[c] for c in y]})
            return pd.DataFrame({self.text_column: texts, **labels, self.split_column: split})

        parts = [part([self.texts[i] for i in rows], self.y[rows], "train")]
        if test_rows is not None:
            parts.append(part([self.texts[i] for i in test_rows], self.y[test_rows], "test"))
        if with_test and len(self.test_y):
            parts.append(part(self.test_texts, self.test_y, "test"))
        return pd.concat(parts, ignore_index=True)

    def decode(self, predicted: pd.Series) -> np.ndarray:
        """A fine-tuning run's predictions.csv `prediction` column -> (M,) class ids, or (M, L) 0/1 (JSON lists of
        label names)."""
        index = {n: c for c, n in enumerate(self.names)}
        if not self.multi:
            return predicted.astype(str).map(index).to_numpy()
        out = np.zeros((len(predicted), len(self.names)), dtype=int)
        for i, cell in enumerate(predicted):
            out[i, [index[str(n)] for n in json.loads(cell)]] = 1
        return out


def load_labelled(path: str, text_column: str, label_column: str, labels: int | None, per_class: int | None,
                  seed: int, folds: int, label_separator: str | None = None, label_columns: list[str] = (),
                  balanced: bool = False) -> Labelled:
    """Read the user's labelled table (a `split` column's test rows are kept apart; without one every row is a
    label), draw the N (`labels`, stratified; or `per_class` of each class) exactly as a fine-tuning run with
    `data.labels` draws them, and assign folds. Sets of labels (lists in the label column, `label_separator`,
    `label_columns`) are drawn as task multi_label draws them: uniformly. `balanced`: scored by balanced
    accuracy (one label a text only)."""
    from warmstart.config import LabelledDataConfig
    from warmstart.data.sample import most_folds
    from warmstart.data.sources import read_table
    from warmstart.tasks.labelled_table import holds_sets

    columns = (table := read_table(path)).columns
    data = LabelledDataConfig(path=path, text_column=text_column, label_column=label_column,
                              label_separator=label_separator, label_columns=list(label_columns),
                              split_column="split" if "split" in columns else None, validation_size=0.0, test_size=0.0)
    sets = bool(label_columns) or label_separator is not None or (
        label_column in columns and holds_sets(table[label_column]))
    if sets and balanced:
        raise WarmstartError(f"{path}: --metric balanced_accuracy weighs the classes of one label a text; the label "
                             "column holds sets of labels, which auto scores by micro-F1: leave --metric out")
    drawn = (_draw_sets if sets else _draw_classes)(data, labels, per_class, seed)
    drawn.balanced = balanced
    k = most_folds(drawn.y, folds, drawn.groups)
    if k < 2:  # every class has 2 labels (_draw_*), so a class's labels are copies of one text
        raise WarmstartError(f"{path}: a class's labels among the N are copies of one text; auto cross-validates "
                             "inside the labels, a text's copies in one fold, and needs 2 different texts of every "
                             "class")
    return drawn.set_folds(k, seed)


def _draw_classes(data, labels: int | None, per_class: int | None, seed: int) -> Labelled:
    from warmstart.data.sample import check_classes
    from warmstart.tasks.classification import load_splits, subsample
    from warmstart.tasks.labelled_table import note_conflicts

    splits, names = load_splits(data, seed)
    pool = splits["train"]
    n = per_class * len(names) if per_class else labels
    drawn = subsample(pool, n, seed, "--per-class" if per_class else "--labels", balanced=bool(per_class))
    note_conflicts(drawn, data.path)
    y = drawn["label"].to_numpy()
    check_classes([names[c] for c in y], data.path)  # one class: nothing to choose between (sklearn would raise deep)
    counts = np.bincount(y, minlength=len(names))
    if (counts < 2).any():
        few = names[int(np.argmin(counts))]
        raise WarmstartError(f"{data.path}: class {few!r} has {int(counts.min())} label(s) among the N; auto "
                             "cross-validates inside the labels and needs at least 2 of every class")
    test = splits["test"]
    return Labelled(drawn["text"].tolist(), y, [str(x) for x in names], np.zeros(len(y), dtype=int),
                    test["text"].tolist(), test["label"].to_numpy(), len(pool) - len(drawn) + len(splits["validation"]),
                    _table_column(data.text_column, {"label", "split"}))


def _draw_sets(data, labels: int | None, per_class: int | None, seed: int) -> Labelled:
    from warmstart.tasks.labelled_table import note_conflicts, subsample
    from warmstart.tasks.multi_label import load_splits, multi_hot

    if per_class:
        raise WarmstartError(f"{data.path}: --per-class spreads the N over the classes, one class a text; the label "
                             "column holds sets of labels: give --labels N")
    splits, names, form = load_splits(data, seed)
    pool = splits["train"]
    drawn = subsample(pool, labels, seed, "--labels", stratified=False)
    note_conflicts(drawn, data.path)
    y = multi_hot(drawn, len(names)).astype(int)
    if len(y) < 2 or not y.any():
        raise WarmstartError(f"{data.path}: {len(y)} labelled text(s) among the N, {int(y.sum())} label(s) on them; "
                             "auto cross-validates inside the labels and needs at least 2 texts and one label")
    test = splits["test"]
    names = [str(x) for x in names]
    return Labelled(drawn["text"].tolist(), y, names, np.zeros(len(y), dtype=int), test["text"].tolist(),
                    multi_hot(test, len(names)).astype(int), len(pool) - len(drawn) + len(splits["validation"]),
                    _table_column(data.text_column, {*names, "_split" if "split" in names else "split"}), form)


def _table_column(name: str, taken: set[str]) -> str:
    """The text column of the tables auto writes: the user's own name, so `warmstart predict` reads their file
    as it is (its default is the column the model was trained on); "text" (or "_text") where that name would
    clash with the table's other columns (`taken`) or not read back as a string from a `data.text_column=...`
    override."""
    import yaml

    if name not in taken and isinstance(yaml.safe_load(name), str):
        return name
    return "text" if "text" not in taken else "_text"


# ---------------------------------------------------------------- out-of-fold predictions, one per pipeline
def oof_probe(x: np.ndarray, data: Labelled, seed: int, rows: Callable[[np.ndarray], np.ndarray] | None = None
              ) -> np.ndarray:
    """A linear probe (logistic regression on frozen features x: (N, H), C by cross-validation inside each fold's
    training part), out of fold; for sets of labels one per label, with its decision offset (models/probe.py's
    fit_one_vs_rest). `rows`: a subset of each fold's training rows (the label-efficiency curve).
    -> (N,) predicted class ids, or (N, L) 0/1"""
    from warmstart.models.probe import fit_logistic_cv, fit_one_vs_rest

    pred, groups = np.zeros_like(data.y), data.groups
    for i in range(data.k):
        train, held = data.fold(i)
        train = rows(train) if rows else train
        inner = groups[train] if groups is not None else None  # C chosen with copies in one inner fold too
        if data.multi:
            fit = fit_one_vs_rest(x[train], data.y[train], None, None, seed, groups=inner)
            pred[held] = x[held] @ fit["weight"].T + fit["bias"] > 0
            continue
        fit = fit_logistic_cv(x[train], data.y[train], seed, groups=inner, balance=data.balance)
        pred[held] = fit["classes"][(x[held] @ fit["weight"].T + fit["bias"]).argmax(1)]
    return pred


def oof_tfidf(data: Labelled, seed: int, rows: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """TF-IDF + logistic regression (studies/baselines.py, C inside each fold's training part; for sets of
    labels one a label, multi_label.tfidf_sets), out of fold."""
    from warmstart.studies.baselines import tfidf_predict_cv
    from warmstart.tasks.multi_label import tfidf_sets

    pred = np.zeros_like(data.y)
    for i in range(data.k):
        train, held = data.fold(i)
        train = rows(train) if rows else train
        texts, held_texts = [data.texts[j] for j in train], [data.texts[j] for j in held]
        pred[held] = (tfidf_sets(texts, data.y[train], held_texts, seed) if data.multi else
                      tfidf_predict_cv(texts, data.y[train], held_texts, seed, balance=data.balance))[0]
    return pred


def fraction_of(fraction: float, y: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A stratified `fraction` of a fold's training rows (at least 2 of each class; sets of labels: a uniform
    one, at least 2 rows), for the curve."""
    def pick(train: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(seed)
        if np.ndim(y) == 2:
            return np.sort(rng.permutation(train)[:max(2, round(fraction * len(train)))])
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
                          settings, body, data.balanced)


def fold_finetune(data: Labelled, i: int | None, folder: Path, encoder: str, overrides: list[str],
                  with_test: bool = False, save_model: bool = False, run_dir: Path | None = None
                  ) -> tuple[np.ndarray, dict]:
    """One warmstart fine-tuning run (the task registry's `run_task`, the honest protocol inside its own labels) on
    fold i's training rows, predicting the held-out rows; `i` None: on all N (the refit), predicting the file's
    test rows when `with_test`. Its table lives in `folder`, its run in `run_dir` (default `folder`/run); a
    finished run with the same settings is reused. -> (predicted class ids of the split=test rows, the run's metrics)"""
    from warmstart.config import FinetuneConfig, finished_with, load_config
    from warmstart.engine.loop import bar_label
    from warmstart.tasks.protocol import scored_by_caller
    from warmstart.tasks.registry import run_task

    folder.mkdir(parents=True, exist_ok=True)
    train, held = data.fold(i) if i is not None else (None, None)
    table = folder / "labels.csv"
    frame = data.table(train, held, with_test)
    if not same_table(table, frame):  # whole or not at all: a kill while writing it once left an empty file that
        replace_file(table, lambda tmp: frame.to_csv(tmp, index=False))  # the resumed run could not read
    sets = {"data.label_columns": data.names, "data.split_column": data.split_column}  # (names: not overrides)
    cfg = load_config(FinetuneConfig, None, [
        f"output_dir={run_dir or folder / 'run'}", f"init={encoder}", f"tokenizer={encoder}", f"data.path={table}",
        f"data.text_column={data.text_column}", "task=multi_label" if data.multi else "task=classification",
        f"train.save_model={str(save_model).lower()}", *overrides], values=sets if data.multi else None)
    out = Path(cfg.output_dir)
    if finished_with(out, cfg):
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    else:
        label = bar_label(f"auto fold {i + 1}/{data.k}") if i is not None else contextlib.nullcontext()
        with scored_by_caller(), label:  # the refit's score is the cross-validation; its "no test split" is not news
            metrics = run_task(cfg)
    test = frame[frame[data.split_column] == "test"]
    if not len(test):
        return np.zeros((0, *data.y.shape[1:]), dtype=int), metrics
    return data.decode(pd.read_csv(out / "predictions.csv", keep_default_na=False)["prediction"]), metrics


def same_table(path: Path, frame: pd.DataFrame) -> bool:
    """Whether the CSV at `path` holds `frame`, cell for cell as text; a missing or unreadable file does not."""
    try:
        return path.is_file() and pd.read_csv(path, keep_default_na=False).astype(str).equals(frame.astype(str))
    except (ValueError, OSError):  # pandas' EmptyDataError and ParserError are ValueErrors
        return False


# ---------------------------------------------------------------- the final model on the file's test rows
def test_scores(data: Labelled, pred: np.ndarray, metrics: dict) -> dict:
    """The final model's score on the file's test rows (pred: their predictions; metrics: its run's) and, where
    some of them repeat one of the N texts, its score on the others alone (`test_unseen_score`, None when every
    one repeats); one label a text: how many test rows of the N's rarest class it found (`test_rare_found` of
    `test_rare`)."""
    if not len(pred):
        return {"test_score": None, "test_size": 0}
    key = "micro_f1" if data.multi else "balanced_accuracy" if data.balanced else "accuracy"
    out = {"test_score": metrics.get(key), "test_size": len(pred),
           **({"test_accuracy": metrics.get("accuracy")} if data.balanced else {})}
    if not data.multi:
        rare = (counts := np.bincount(data.y)).tolist().index(counts[counts > 0].min())
        out.update(test_rare=int((data.test_y == rare).sum()),
                   test_rare_found=int(((pred == rare) & (data.test_y == rare)).sum()))
    seen = data.test_repeats()
    if seen.any():
        out.update(test_repeats=int(seen.sum()),
                   test_unseen_score=score(pred[~seen], data.test_y[~seen], data.balanced) if not seen.all() else None)
    return out
