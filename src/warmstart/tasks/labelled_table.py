"""A labelled table of texts, for the classification tasks (one label a text, or a set of labels a text): read,
split, and its labelled sample (data/sample.py's rules: the N labels, a held-out share of them, or an explicit dev
set). Classification and multi-label classification differ only in what a label cell holds and in whether a
sample can be stratified by it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from warmstart.config import FinetuneConfig, LabelledDataConfig
from warmstart.data.sample import (
    Sample,
    check_classes,
    draw,
    draw_balanced,
    expand_groups,
    group_index,
    holdout,
    text_groups,
)
from warmstart.data.sources import class_names, read_table
from warmstart.errors import WarmstartError
from warmstart.tasks.protocol import caller_scores

SPLITS = ("train", "validation", "test")
UNLABELLED = -1  # HF's ClassLabel value for a row without a label (GLUE's test splits), and Kaggle's
_TOLD: set[str] = set()  # notes already printed in this process
AUTO_FLAGS = {"text_column": "--text-column NAME", "label_column": "--label-column NAME",
              "label_columns": "--label-columns A B"}  # where a config key is a flag of `warmstart auto`
THRESHOLD = 0.5  # multi-label: a label is predicted at this probability or above (HF's pipeline's rule too)


def written(probs: np.ndarray, names: list[str], form: str) -> list:
    """One text's predicted labels (probs: (L,)) as the user wrote theirs: a 0/1 vector for vectors (SetFit's
    and HF Trainer's labels), else the label names."""
    if form == "vectors":
        return [int(p >= THRESHOLD) for p in probs]
    return [m for m, p in zip(names, probs, strict=True) if p >= THRESHOLD]


def holds_sets(values: pd.Series) -> bool:
    """Whether a label column holds a set of labels a text (task multi_label): every filled cell a list, or a
    JSON list in text, and at least one filled (an empty cell is a text with no label)."""
    def listed(v) -> bool:
        return isinstance(v, (list, tuple, np.ndarray)) or (isinstance(v, str) and v.strip().startswith("[")
                                                             and v.strip().endswith("]"))
    filled = [v for v in values if isinstance(v, (list, tuple, np.ndarray)) or not pd.isna(v)]
    return bool(filled) and all(listed(v) for v in filled)


def read_labelled(cfg: LabelledDataConfig) -> tuple[pd.DataFrame, list[str] | None]:
    """The table at `cfg.path`, its text, pair and label columns checked; an HF dataset's `ClassLabel` ids read as
    their names, and its unlabelled rows (-1, as in GLUE's test splits) left out with a note.
    -> (DataFrame (the file's columns), the ClassLabel names in the dataset's order, or None)"""
    df = read_table(cfg.path)
    keys = [("text_column", cfg.text_column), *(("label_columns", c) for c in cfg.label_columns or []),
            ("label_column", None if cfg.label_columns else cfg.label_column), ("text_pair_column", cfg.text_pair_column)]
    for key, col in keys:
        if col is not None and col not in df.columns:
            flag = AUTO_FLAGS.get(key)
            raise WarmstartError(f"{cfg.path}: no column '{col}' (columns: {', '.join(map(str, df.columns))}); name "
                                 f"yours with data.{key}=" + ("[A, B]" if key == "label_columns" else "NAME")
                                 + (f" (warmstart auto: {flag})" if flag else ""))
    if df.empty:
        raise WarmstartError(f"{cfg.path}: the table has no rows")
    names = None if cfg.label_columns else class_names(cfg.path, cfg.label_column)
    if names is not None:
        df = _named(df, cfg, names)
    blank = df[cfg.text_column].isna() | (df[cfg.text_column].astype(str).str.strip() == "")
    if blank.any():  # nothing to read in them: a model fitted on "" learns the label's frequency, no more
        tell_once(f"note: {cfg.path}: {row_numbers(blank)} {'has' if blank.sum() == 1 else 'have'} no text in column "
                  f"'{cfg.text_column}'; left out ({int(blank.sum())} of {len(df)} rows)")
        df = df[~blank]  # the index stays the file's row number, which later notes and errors name
        if df.empty:
            raise WarmstartError(f"{cfg.path}: no row has text in column '{cfg.text_column}'")
    return df, names


def row_numbers(mask: pd.Series, shown: int = 5) -> str:
    """'row 4', or 'rows 4, 9 and 12', or 'rows 4, 9, 12, 15, 20 and 3 more': the rows `mask` marks, numbered
    as the file has them (a Series: by its index, which read_labelled keeps through the rows it leaves out; row 1
    is the first under a CSV's header, its line 2 unless a cell spans lines, or a JSONL file's first line)."""
    rows = [int(i) + 1 for i in (mask.index[mask.to_numpy()] if isinstance(mask, pd.Series) else
                                 np.flatnonzero(np.asarray(mask)))]
    if len(rows) == 1:
        return f"row {rows[0]}"
    if len(rows) > shown + 1:
        return f"rows {', '.join(map(str, rows[:shown]))} and {len(rows) - shown} more"
    return f"rows {', '.join(map(str, rows[:-1]))} and {rows[-1]}"


def tell_once(note: str) -> None:
    """A note on stderr, once a process: the run, its rival and rank each read the table."""
    if note not in _TOLD:
        _TOLD.add(note)
        print(note, file=sys.stderr)


def _named(df: pd.DataFrame, cfg: LabelledDataConfig, names: list[str]) -> pd.DataFrame:
    """ClassLabel ids (one a row, or a list a row) -> their names; rows labelled -1 (none) left out, with a note."""
    column = df[cfg.label_column]
    unlabelled = column.map(lambda v: not isinstance(v, (list, tuple, np.ndarray)) and v == UNLABELLED)
    if unlabelled.any():
        where = (f" ({', '.join(f'{k}: {v}' for k, v in df.loc[unlabelled, cfg.split_column].value_counts().items())})"
                 if cfg.split_column in df.columns else "")
        tell_once(f"note: {cfg.path}: {int(unlabelled.sum())} rows have no label (-1){where}; they are left out")
        df = df[~unlabelled].reset_index(drop=True)
    if df.empty:
        raise WarmstartError(f"{cfg.path}: every row has label -1 (none); give a labelled split")

    def name(v):
        if isinstance(v, (list, tuple, np.ndarray)):
            return [names[int(i)] for i in v]
        return names[int(v)]
    return df.assign(**{cfg.label_column: df[cfg.label_column].map(name)})


def texts_of(df: pd.DataFrame, cfg: LabelledDataConfig, labels) -> pd.DataFrame:
    """-> DataFrame[text, label, (text_pair)] of the table's rows, `labels` the label column as read."""
    table = pd.DataFrame({"text": df[cfg.text_column].fillna("").astype(str), "label": labels})
    if cfg.text_pair_column:
        table["text_pair"] = df[cfg.text_pair_column].fillna("").astype(str)
    return table


def row_groups(table: pd.DataFrame) -> np.ndarray | None:
    """The copies of one text (or text pair) among a table's rows (data/sample.text_groups): a fold or hold-out
    keeps them on one side. None when every row differs."""
    if "text_pair" in table:
        return text_groups(list(zip(table["text"], table["text_pair"], strict=True)))
    return text_groups(table["text"].tolist())


def note_conflicts(labelled: pd.DataFrame, where: str) -> int:
    """Say on stderr (once) how many texts among the N labels appear in several rows with different labels (or
    sets of labels): no model gets every copy right, and the user may want to fix them. -> how many"""
    groups = row_groups(labelled)
    if groups is None:
        return 0
    cells = labelled["label"].map(lambda v: tuple(sorted(map(str, v))) if isinstance(v, (list, tuple, np.ndarray))
                                  else str(v))
    per_group = pd.Series(list(cells)).groupby(groups).nunique()
    conflicted = per_group.index[per_group > 1]
    if len(conflicted):
        example = labelled["text"].iloc[int(np.flatnonzero(groups == conflicted[0])[0])]
        tell_once(f"note: {where}: {len(conflicted)} text(s) among the {len(labelled)} labels appear in several rows "
                  f"with different labels (e.g. {str(example)[:60]!r}); no model gets every copy right")
    return len(conflicted)


def unseen_scores(labelled: pd.DataFrame, test: pd.DataFrame, metric: Callable, gold: np.ndarray,
                  pred: np.ndarray, name: str, quiet: bool = False) -> dict:
    """Where test rows repeat a text (or pair) among the labels the model learned from, its score there is memory:
    count them and score the others alone (`{name}_unseen`, None when none is new), with a note on stderr
    unless `quiet` (auto says it in its verdict). {} when no test row repeats one."""
    ids = row_groups(pd.concat([labelled, test], ignore_index=True))
    if ids is None or not (seen := np.isin(ids[len(labelled):], ids[:len(labelled)])).any():
        return {}
    rest = round(float(metric(gold[~seen], pred[~seen])), 4) if not seen.all() else None
    if not quiet:
        rest_said = f"its {name} on the other {int((~seen).sum())}: {rest}" if rest is not None else \
            f"none is new, so its {name} there measures memory"
        print(f"note: {int(seen.sum())} of the {len(test)} test rows repeat a text among the {len(labelled)} labels "
              f"the model learned from; {rest_said}", file=sys.stderr)
    return {"test_repeats": int(seen.sum()), f"{name}_unseen": rest}


def class_figures(y: np.ndarray, pred: np.ndarray) -> dict:
    """One label a text, (M,) class ids each: accuracy, macro-F1 and balanced accuracy (the mean of the classes'
    recalls: what a skewed table's rare classes weigh in); a fine-tuning run's and every rival's test figures."""
    from sklearn.metrics import f1_score

    from warmstart.models.probe import accuracy, balanced_accuracy

    return {"accuracy": round(accuracy(y, pred), 4), "macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
            "balanced_accuracy": round(balanced_accuracy(y, pred), 4)}


def class_scores(labelled: pd.DataFrame, test: pd.DataFrame, pred: np.ndarray, quiet: bool = False) -> dict:
    """A run's test figures (class_figures), the first rival's accuracy (always answering the labelled rows' most
    frequent class) and, where test rows repeat a labelled text, the others' (unseen_scores)."""
    from warmstart.models.probe import accuracy

    y = test["label"].to_numpy()
    return {**class_figures(y, pred),
            "majority_accuracy": round(accuracy(y, np.bincount(labelled["label"]).argmax()), 4),
            **unseen_scores(labelled, test, accuracy, y, pred, "accuracy", quiet)}


def split_table(df: pd.DataFrame, table: pd.DataFrame, cfg: LabelledDataConfig, seed: int, stratify: bool = True
                ) -> dict[str, pd.DataFrame]:
    """The table's own `split` column, else a seeded split (stratified by label when `stratify`; a repeated
    text's copies on one side): test_size for test, and a validation share only for an explicit dev set. A share
    of 0 (auto's own table: every row is a label) carves nothing. -> {train, validation, test: rows of `table`}"""
    if cfg.split_column and cfg.split_column in df.columns:
        split = df[cfg.split_column].astype(str).str.lower().replace({"valid": "validation", "dev": "validation"})
        splits = {name: table[split == name].reset_index(drop=True) for name in SPLITS}
        if splits["train"].empty:
            raise WarmstartError(f"{cfg.path}: no rows with {cfg.split_column}=train")
        return splits

    def carve(rows: pd.DataFrame, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        if share == 0:
            return rows, rows.iloc[:0]
        groups = row_groups(rows)
        if groups is None:
            return train_test_split(rows, test_size=share, random_state=seed,
                                    stratify=rows["label"] if stratify else None)
        # a text's copies on one side: a test row that repeats a training text would score memory
        ids, first = group_index(groups)
        out = train_test_split(np.arange(len(first)), test_size=share, random_state=seed,
                               stratify=rows["label"].to_numpy()[first] if stratify else None)[1]
        kept, held = expand_groups(ids, out)
        return rows.iloc[kept], rows.iloc[held]

    rest, test = carve(table, cfg.test_size)
    train, val = carve(rest, cfg.carved_validation / (1 - cfg.test_size))
    return {"train": train, "validation": val, "test": test}


def subsample(df: pd.DataFrame, n: int | None, seed: int, where: str = "data.labels", balanced: bool = False,
              stratified: bool = True) -> pd.DataFrame:
    """A stratified (or, `balanced`, evenly spread over the classes; or, not `stratified`, uniform), seeded
    sample of `n` rows (all rows if n is None or larger): data/sample.py's `draw` / `draw_balanced`."""
    y = df["label"].to_numpy() if stratified else None
    rows = draw_balanced(y, n, seed, where) if balanced else draw(len(df), n, seed, y, where)
    return df.iloc[rows].reset_index(drop=True)


def sample_splits(splits: dict[str, pd.DataFrame], cfg: FinetuneConfig, single_label: bool = True) -> Sample:
    """The labelled sample of `splits` (data/sample.py): the N labels (at least two classes; for sets of labels,
    at least one label among them), a share of them held out to choose with (stratified by class when each row
    has one) and a refit on all N; or, when the user asks for one, an explicit dev set of
    `data.validation_labels` rows from the validation split (else from the training rows beyond the N)."""
    seed, tc = cfg.train.seed, cfg.train
    labelled = subsample(splits["train"], cfg.data.labels, seed, balanced=cfg.data.balanced, stratified=single_label)
    if not caller_scores():  # auto said it of the user's file; its folds' own tables are its making
        note_conflicts(labelled, cfg.data.path)
    if single_label:
        check_classes(labelled["label"])
    elif not any(len(s) for s in labelled["label"]):
        raise WarmstartError("data.labels: no text of the labelled training sample has a label; a classifier needs "
                             "positive examples (more labels, or check the label column)")
    if cfg.data.validation_labels:
        pool = splits["validation"]
        if pool.empty:  # the training rows the N did not take: extra labels, the user's explicit choice
            taken = set(zip(labelled["text"], labelled["label"], strict=True))
            pool = splits["train"][[(x, y) not in taken for x, y in zip(splits["train"]["text"],
                                                                       splits["train"]["label"], strict=True)]]
        dev = subsample(pool.reset_index(drop=True), cfg.data.validation_labels, seed, "data.validation_labels",
                        stratified=single_label)
        return Sample(labelled, labelled, dev, splits["test"], refit=False, extra=len(dev))
    kept, held = holdout(len(labelled), tc.holdout, seed, labelled["label"].to_numpy() if single_label else None,
                         row_groups(labelled))
    return Sample(labelled, labelled.iloc[kept].reset_index(drop=True), labelled.iloc[held].reset_index(drop=True),
                  splits["test"], refit=tc.refit)
