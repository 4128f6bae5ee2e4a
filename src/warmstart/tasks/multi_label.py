"""Multi-label text classification: each text has a set of labels, none, one or several (topics, tags, the kinds
of entity a tweet mentions).

The model is a standard `AutoModelForSequenceClassification` with `problem_type="multi_label_classification"`: one
sigmoid per label, trained with binary cross-entropy (each label's positives weighted, `pos_weights`), a label
predicted at probability 0.5 or above (HF's and SetFit's rule), so `pipeline("text-classification", top_k=None)`
reads the folder as it was trained. The rest is classification's: tokenisation, pooling, every strategy (the probe
fits one logistic regression per label and carries a decision offset chosen inside the N in its biases,
models/probe.py; SetFit's pairs are "similar" when the two texts share a label, as setfit 1.x draws them), and the
honest protocol. Metrics: micro-F1 (the headline: every label decision counts once), macro-F1 over the labels the
test split or the model uses, exact match (the whole set right). Beside every run, its classic rival on the
same N labels: TF-IDF + one logistic regression per label.

A label cell is a list (JSONL, Parquet, an HF dataset; a `Sequence(ClassLabel)` read as its names), a JSON list in
a CSV cell (`["sports", "politics"]`), text joined by `data.label_separator` (`sports|politics`), or a 0/1 vector
over the labels (SetFit's and HF Trainer's format); an empty cell is a text with no label. Or `data.label_columns`
names one 0/1 column per label (Jigsaw, SemEval).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from warmstart.config import FinetuneConfig, LabelledDataConfig
from warmstart.data.sample import Sample
from warmstart.engine.runtime import to_device
from warmstart.errors import WarmstartError
from warmstart.models.probe import fit_one_vs_rest, micro_f1
from warmstart.tasks.card import multi_label_card
from warmstart.tasks.classification import (
    encode,
    features,
    inference_batches,
    logits_of,
    make_batches,
    predict_batches,
    train_setfit,
)
from warmstart.tasks.finetune import (
    build_model,
    elapsed,
    fit,
    measure_forgetting,
    resolve_pooling,
    shuffled_epochs,
    start_run,
    write_run,
)
from warmstart.tasks.labelled_table import (
    SPLITS,
    THRESHOLD,
    UNLABELLED,
    read_labelled,
    row_groups,
    sample_splits,
    split_table,
    tell_once,
    texts_of,
    unseen_scores,
    written,
)
from warmstart.tasks.protocol import caller_scores, scored, select_then_refit
from warmstart.tasks.strategies import probe_then_finetune

METRIC = "val_micro_f1"


# ---------------------------------------------------------------- data
def _name(x) -> str:
    if isinstance(x, (float, np.floating)) and float(x).is_integer():  # pandas reads 3 as 3.0 beside a gap
        return str(int(x))
    return str(x).strip()


def _binary(x) -> bool:
    return isinstance(x, (bool, int, float, np.bool_, np.integer, np.floating)) and x in (0, 1)


def _empty(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, (list, tuple, np.ndarray))
                                                                  and len(v) == 0)


def multi_hot_width(cells: list) -> int | None:
    """The width L when every cell is a vector of L 0/1 values (SetFit's and HF Trainer's multi-label labels:
    position i set when the text has label i) or empty (no label), else None. A vector repeats a value; a list of
    label ids never does, which tells [0, 1, 0] (labels 1) from [0, 1] (labels 0 and 1)."""
    cells = [c for c in cells if not _empty(c)]
    if not cells or not all(isinstance(c, (list, tuple, np.ndarray)) and all(_binary(x) for x in c) for c in cells):
        return None
    if not any(len(set(map(float, c))) < len(c) for c in cells):
        return None
    widths = sorted({len(c) for c in cells})
    if len(widths) > 1:
        raise ValueError(f"0/1 label vectors of different lengths ({widths[0]} and {widths[-1]}); give every text "
                         "one value per label")
    return widths[0]


def label_sets(values: pd.Series, separator: str | None, where: str, column: str) -> list[tuple[str, ...]]:
    """Each cell's labels, unique and sorted: a list, a JSON list in text, `separator`-joined text, an empty cell
    (no label), or a 0/1 vector over the labels (its positions named 0, 1, ...: a label id's name). A column of
    one plain label a row, without a separator, is refused: that is classification."""
    return read_sets(values, separator, where, column)[0]


def read_sets(values: pd.Series, separator: str | None, where: str, column: str
              ) -> tuple[list[tuple[str, ...]], list[str] | None]:
    """label_sets, and the labels that 0/1 vectors declare (every position, in order), else None."""
    cells, listed = [], False
    for v in values:
        if isinstance(v, str) and v.strip().startswith("["):
            try:
                v = json.loads(v)
            except ValueError:
                if separator is None:  # else a label may begin with a bracket
                    raise WarmstartError(f"{where}: label cell {v[:40]!r} in column '{column}' is not a JSON list; "
                                         'write it as ["a", "b"]') from None
        cells.append(v)
    try:
        width = multi_hot_width(cells)
    except ValueError as e:
        raise WarmstartError(f"{where}: label column '{column}' holds {e}") from None
    if width is not None:
        return [() if _empty(c) else tuple(str(i) for i, x in enumerate(c) if x) for c in cells], \
            [str(i) for i in range(width)]
    sets = []
    for v in cells:
        if isinstance(v, (list, tuple, np.ndarray)):
            items, listed = list(v), True
        elif _empty(v):
            items = []
        elif separator is not None:
            items, listed = str(v).split(separator), True
        else:
            items = [v]
        sets.append(tuple(sorted({_name(x) for x in items} - {""})))
    if not listed:
        raise WarmstartError(f"{where}: label column '{column}' holds one label a row, not a set of labels; give "
                             "lists (a JSON list in a CSV cell, JSONL or Parquet arrays), data.label_separator "
                             "(e.g. '|') or data.label_columns (one 0/1 column per label); one label a text is "
                             "task classification")
    return sets, None


def column_sets(df: pd.DataFrame, columns: list[str], where: str) -> tuple[pd.DataFrame, list[tuple[str, ...]]]:
    """One 0/1 column per label (Jigsaw, SemEval) -> the labelled rows, and each one's labels (the columns where
    it has a 1). A row of -1 in every column is unlabelled (Kaggle's test labels, HF's ClassLabel): left out."""
    values = df[columns].apply(lambda c: pd.to_numeric(c, errors="coerce").astype(float))
    unlabelled = (values == UNLABELLED).all(axis=1)
    if unlabelled.any():
        tell_once(f"note: {where}: {int(unlabelled.sum())} rows have -1 in every label column (no label); they are "
                  "left out")
        df, values = df[~unlabelled].reset_index(drop=True), values[~unlabelled].reset_index(drop=True)
    for c in columns:
        bad = ~values[c].isin([0, 1])
        if bad.any():
            raise WarmstartError(f"{where}: label column '{c}' holds {df[c][bad].tolist()[0]!r}; data.label_columns "
                                 "need 0 or 1 in every row (-1 in all of them: a row without labels)")
    hot = values.to_numpy() == 1
    return df, [tuple(c for c, h in zip(columns, row, strict=True) if h) for row in hot]


def load_splits(cfg: LabelledDataConfig, seed: int) -> tuple[dict[str, pd.DataFrame], list[str], str]:
    """Read the table, split it (seeded and uniform: a set of labels does not stratify), map labels to ids. The
    labels are those the data declares, in its order (a ClassLabel's names, the 0/1 vectors' positions or
    columns: output i is the user's label i), else those the training split uses, sorted (numbers as numbers).
    -> ({split: DataFrame[text, (text_pair), label: tuple of label ids]}, label names, the labels' form: "vectors"
    (0/1 vectors, which predictions are written as too), "columns" or "sets")"""
    df, declared = read_labelled(cfg)
    form = "sets"
    if cfg.label_columns:
        df, sets = column_sets(df, cfg.label_columns, cfg.path)
        declared, form = list(cfg.label_columns), "columns"
    else:
        sets, vectors = read_sets(df[cfg.label_column], cfg.label_separator, cfg.path, cfg.label_column)
        declared, form = (vectors, "vectors") if vectors else (declared, form)
    splits = split_table(df, texts_of(df, cfg, sets), cfg, seed, stratify=False)
    used = {n for s in splits["train"]["label"] for n in s}
    names = declared or sorted(used, key=lambda n: (0, int(n), "") if n.isdigit() else (1, 0, n))
    for name in ("validation", "test"):
        unseen = sorted({n for s in splits[name]["label"] for n in s} - set(names))
        if unseen:
            raise WarmstartError(f"{cfg.path}: label {unseen[0]!r} appears in the {name} split but never in train; "
                                 "add training examples or drop it from those rows")
    index = {n: i for i, n in enumerate(names)}
    for name in SPLITS:
        ids = pd.Series([tuple(sorted(index[n] for n in s)) for s in splits[name]["label"]], dtype=object)
        splits[name] = splits[name].reset_index(drop=True).assign(label=ids)
    return splits, names, form


def refuse_balanced(cfg: FinetuneConfig) -> None:
    if cfg.data.balanced:
        raise WarmstartError("data.balanced: spreads the N over the classes, one class a text; with sets of labels "
                             "there is no such spread: remove it")


def labelled_sample(cfg: FinetuneConfig) -> Sample:
    """The labelled sample that this task's runs and its TF-IDF rival see: N texts drawn uniformly."""
    refuse_balanced(cfg)
    return sample_splits(load_splits(cfg.data, cfg.train.seed)[0], cfg, single_label=False)


def label_count(cfg: FinetuneConfig) -> int:
    """The labels a run of `cfg` has (those of its training split): the width of its multi-hot rows."""
    return len(load_splits(cfg.data, cfg.train.seed)[1])


def multi_hot(rows: pd.DataFrame, n_labels: int) -> np.ndarray:
    """-> (N, L) float32, 1 where the row has the label"""
    y = np.zeros((len(rows), n_labels), dtype=np.float32)
    for i, labels in enumerate(rows["label"]):
        y[i, list(labels)] = 1
    return y


def set_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """(N, L) 0/1 each. -> micro_f1, macro_f1 (over the labels either side uses), exact_match"""
    used = np.flatnonzero(np.asarray(y_true).any(0) | np.asarray(y_pred).any(0))
    macro = f1_score(y_true, y_pred, average="macro", labels=used, zero_division=0) if len(used) else 0.0
    return {"micro_f1": round(micro_f1(y_pred, y_true), 4),
            "macro_f1": round(float(macro), 4),
            "exact_match": round(float(np.all(np.asarray(y_true) == np.asarray(y_pred), axis=1).mean()), 4)}


# ---------------------------------------------------------------- the rival
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def tfidf_rival(labelled: pd.DataFrame, test: pd.DataFrame, n_labels: int, seed: int, folds: int = 5) -> dict:
    """TF-IDF + one logistic regression per label (tfidf_sets) fitted on the N labelled texts, scored on `test`.
    -> tfidf_micro_f1, tfidf_macro_f1, tfidf_exact_match, tfidf_C, tfidf_offset"""
    def texts(rows: pd.DataFrame) -> list[str]:
        return (rows["text"] + " " + rows["text_pair"]).tolist() if "text_pair" in rows else rows["text"].tolist()

    pred, c, offset = tfidf_sets(texts(labelled), multi_hot(labelled, n_labels), texts(test), seed, folds)
    tested = set_metrics(multi_hot(test, n_labels), pred)
    return {**{f"tfidf_{name}": value for name, value in tested.items()}, "tfidf_C": c, "tfidf_offset": offset}


def tfidf_sets(x: list[str], y: np.ndarray, test: list[str], seed: int, folds: int = 5
               ) -> tuple[np.ndarray, float, float]:
    """TF-IDF (word 1-2-grams) + one L2 logistic regression per label, with the probe's protocol
    (models/probe.choose_c_and_offset): one C and one decision offset chosen together by the out-of-fold micro-F1
    of k-fold inside the texts `x` (the vectoriser refitted on each fold's training part). At a plain 0.5 it
    predicted no label at all on WNUT-16's entity kinds (0.0 micro-F1, 3 seeds), a rival no practitioner would
    stop at. y: (N, L) 0/1. -> ((M, L) 0/1 predictions of `test`, C, offset)"""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from warmstart.data.sample import kfold, most_folds, text_groups
    from warmstart.models.probe import choose_c_and_offset

    y = np.asarray(y)

    def fitted(train_texts: list[str], y: np.ndarray, c: float):
        """-> texts -> (n, L) logits; a label the training texts never (always) show scores a constant -8 (+8)"""
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        xt = vec.fit_transform(train_texts)
        heads = [None if y[:, j].min() == y[:, j].max() else
                 LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(xt, y[:, j]) for j in range(y.shape[1])]

        def logits(other: list[str]) -> np.ndarray:
            xo = vec.transform(other)
            return np.stack([h.decision_function(xo) if h is not None else np.full(xo.shape[0], 8.0 if y[0, j] else -8.0)
                             for j, h in enumerate(heads)], axis=1)
        return logits

    groups = text_groups(x)
    k = most_folds(y, folds, groups)
    held: dict[float, np.ndarray] = {}
    for tr, va in kfold(y, k, seed, groups) if k >= 2 else ():
        for c in C_GRID:
            held.setdefault(c, np.zeros(y.shape))[va] = fitted([x[i] for i in tr], y[tr], c)([x[i] for i in va])
    c, offset, _ = choose_c_and_offset(y, held, fallback=1.0)
    return (fitted(x, y, c)(test) > offset).astype(int), c, offset


# ---------------------------------------------------------------- training
def pos_weights(y: np.ndarray, cap: float) -> np.ndarray:
    """BCE's weight on each label's positive examples: its negatives / positives among the rows `y` (N, L), between
    1 and `cap` (a label no row has: 1). Unweighted, a label on a few percent of texts seldom reaches 0.5: full
    fine-tuning on WNUT-16's entity kinds (200 labels, MiniLM, 3 seeds) scored test micro-F1 28.8 and macro-F1 6.8
    unweighted, 45.3 and 27.1 at a cap of 10 (44.6 at 3, 42.6 uncapped: benchmarks/results/multi_label.md).
    -> (L,) float32"""
    pos = y.sum(0)
    return np.where(pos > 0, np.clip((len(y) - pos) / np.maximum(pos, 1), 1.0, cap), 1.0).astype(np.float32)


def train_full(model, cfg: FinetuneConfig, train_enc, y_train: np.ndarray, val_b, y_val, pad_id: int, bf16: bool,
               start_score: float, steps: int | None, phase: str) -> dict:
    """Fine-tune with the strategy on binary cross-entropy, one sigmoid per label, each label's positives weighted
    by pos_weights; with validation (`val_b`), early stopping on its micro-F1; without (the refit), `steps` steps."""
    tc = cfg.train
    weights = to_device(torch.as_tensor(pos_weights(y_train, tc.pos_weight_cap)))

    def step_fn(batch: dict) -> dict:
        logits = logits_of(model, batch, tc.pooling)  # (B, L)
        return {"loss": F.binary_cross_entropy_with_logits(logits.float(), batch["labels"], pos_weight=weights)}

    def evaluate() -> float:
        pred = predict_batches(model, val_b, tc.pooling, bf16, multi_label=True) >= THRESHOLD
        return micro_f1(pred, y_val)

    batches = shuffled_epochs(len(y_train), tc.batch_size, tc.seed,
                              lambda rows: make_batches(train_enc, y_train, len(rows), pad_id, rows)[0])
    return fit(model, tc, Path(cfg.output_dir), batches, step_fn, evaluate if val_b is not None else None,
               len(y_train), model.classifier, bf16, METRIC, start_score, steps=steps, phase=phase)


def _named(fitted: dict) -> dict:
    """The strategies name a probe's score `val_accuracy`; here it is micro-F1 (fine-tuning's own `val_micro_f1`
    wins where both are there: LP-FT's choice)."""
    out = {k: v for k, v in fitted.items() if "val_accuracy" not in k}
    for k, v in fitted.items():
        if "val_accuracy" in k:
            out.setdefault(k.replace("val_accuracy", "val_micro_f1"), v)
    return out


def run_multi_label(cfg: FinetuneConfig) -> dict:
    """Fine-tune, evaluate on the test split, write metrics.json / predictions.csv / the checkpoint."""
    from transformers import AutoModelForSequenceClassification

    refuse_balanced(cfg)
    resolve_pooling(cfg)
    tc = cfg.train
    t0, bf16, tokenizer = start_run(cfg)
    splits, names, form = load_splits(cfg.data, tc.seed)
    sample = sample_splits(splits, cfg, single_label=False)
    n, pad = len(names), tokenizer.pad_token_id
    id2label = {i: name for i, name in enumerate(names)}

    def train_once(train: pd.DataFrame, val: pd.DataFrame | None, steps: int | None, phase: str):
        """A fresh model fitted on `train`, choosing on `val` (or, without, for `steps` steps)."""
        model = build_model(AutoModelForSequenceClassification, cfg, num_labels=n, id2label=id2label,
                            label2id={v: k for k, v in id2label.items()}, problem_type="multi_label_classification")
        model.config.update({"label_form": form})  # predict writes 0/1 vectors for vectors
        enc, y_train = encode(tokenizer, train, tc.max_length), multi_hot(train, n)
        val_b = inference_batches(encode(tokenizer, val, tc.max_length), 64, pad) if val is not None else None
        y_val = multi_hot(val, n) if val is not None else None

        offset = {}

        def probe() -> dict:  # a logistic regression per label on frozen features; C on validation or by k-fold
            x = features(model, inference_batches(enc, 64, pad), tc.pooling, bf16)
            x_val = features(model, val_b, tc.pooling, bf16) if val_b is not None else None
            fit = fit_one_vs_rest(x, y_train, x_val, y_val, tc.seed,
                                  groups=row_groups(train) if val is None else None)
            offset["probe_offset"] = fit["offset"]  # the decision offset folded into its biases
            return fit

        def finetune(start: float) -> dict:
            if tc.strategy == "setfit":
                return train_setfit(model, cfg, enc, y_train, pad, bf16, phase)
            return train_full(model, cfg, enc, y_train, val_b, y_val, pad, bf16, start, steps, phase)

        fitted = _named(probe_then_finetune(tc.strategy, model.classifier, probe, finetune, steps))
        return model, {**fitted, **offset}

    def probabilities(model, rows: pd.DataFrame):  # (N, L)
        batches = inference_batches(encode(tokenizer, rows, tc.max_length), 64, pad)
        return predict_batches(model, batches, tc.pooling, bf16, multi_label=True)

    def score(model, rows: pd.DataFrame) -> float:  # the refit's check (tasks/protocol.py)
        return micro_f1(probabilities(model, rows) >= THRESHOLD, multi_hot(rows, n))

    model, fitted = select_then_refit(sample, tc.strategy, train_once, Path(cfg.output_dir), score, METRIC,
                                      early_stopping=tc.patience > 0)
    test, tested, files = sample.test, {}, {}
    if len(test):
        probs, gold = probabilities(model, test), multi_hot(test, n)
        # auto scores its folds and its TF-IDF rival itself: a fold's own rival (k folds x 6 Cs x L fits) was a
        # fifth of auto's time on a 24-label table (profiled)
        rival = {} if caller_scores() else tfidf_rival(sample.labelled, test, n, tc.seed)
        tested = {**set_metrics(gold, probs >= THRESHOLD), **rival, **unseen_scores(
            sample.labelled, test, micro_f1, gold, probs >= THRESHOLD, "micro_f1", caller_scores())}
        predictions = pd.DataFrame({"text": test["text"],
                                    "label": [json.dumps(written(row, names, form)) for row in gold],
                                    "prediction": [json.dumps(written(row, names, form)) for row in probs],
                                    **{f"prob_{m}": probs[:, i] for i, m in enumerate(names)}})
        files["predictions.csv"] = lambda p: predictions.to_csv(p, index=False)
    metrics = scored({**tested, "test_size": len(test), "label_count": n, "threshold": THRESHOLD,
                      "strategy": tc.strategy, "pooling": tc.pooling, "init": cfg.init, "seed": tc.seed, **fitted,
                      **measure_forgetting(cfg, model, tokenizer, bf16), "seconds": elapsed(t0)}, len(test) > 0)
    if tc.save_model:  # how to use the folder, with transformers alone too (the pooled head is not its forward)
        card = multi_label_card(metrics, names, str(cfg.init), tc.pooling, tc.max_length,
                                bool(cfg.data.text_pair_column), form)
        files["README.md"] = lambda p: p.write_text(card, encoding="utf-8")
    write_run(cfg, model, tokenizer, metrics, files)
    return metrics
