"""`warmstart predict` for a token classifier: its inputs (CoNLL, a table of tokens or texts, one sentence a line)
and its CoNLL output; the model and its tagging are tasks/token_classification.py's."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from warmstart.config import FinetuneConfig
from warmstart.data.sources import TABLE_SUFFIXES, read_table, read_text_file
from warmstart.engine.runtime import use_bf16
from warmstart.errors import WarmstartError
from warmstart.tasks.token_classification import predict_tags, read_conll


def read_predict_inputs(path: Path, tokens_column: str, text_column: str):
    """A table with a list column of tokens (or a text column, split at whitespace), a CoNLL file (lines with
    a TAB; its tags are kept as the gold `tags`), or plain text with one sentence per line.
    -> (sentences, the table's own columns or the CoNLL gold tags as a DataFrame (None for plain text),
    the column the words came from)"""
    if path.suffix.lower() in TABLE_SUFFIXES:
        df = read_table(str(path))
        if tokens_column in df.columns:
            return [_words(cell, path, i) for i, cell in enumerate(df[tokens_column])], df, tokens_column
        if text_column in df.columns:
            return [str(t).split() for t in df[text_column].fillna("")], df, None
        raise WarmstartError(f"{path}: no column '{tokens_column}' or '{text_column}' (columns: "
                             f"{', '.join(map(str, df.columns))}); pass --text-column")
    text = read_text_file(path)
    if "\t" in text:
        read = read_conll(path)
        return [w for w, _ in read], pd.DataFrame({"tags": [t for _, t in read]}), None
    return [line.split() for line in text.splitlines()], None, None  # a blank line keeps its row (no words)


def conll_text(rows: pd.DataFrame) -> str:
    """A token classifier's rows as CoNLL: `token<TAB>prediction` a line (`token<TAB>gold<TAB>prediction` when
    the input was CoNLL with tags: conlleval's layout, and `warmstart finetune` reads the last column as the
    tag, so the file trains as it is), a blank line after each sentence; a row without words has no lines."""
    gold = rows["tags"] if "tags" in rows.columns else None
    out = []
    for i, (words, tags) in enumerate(zip(rows["tokens"], rows["prediction"], strict=True)):
        known = _tag_list(gold.iloc[i]) if gold is not None else None
        cols = [words, known, tags] if known is not None and len(known) == len(words) else [words, tags]
        out += ["\t".join(parts) for parts in zip(*cols, strict=True)] + [""] if words else []
    return "\n".join(out) + "\n" if out else ""


def _tag_list(cell) -> list[str] | None:
    """A gold-tags cell as a list: a list (CoNLL, JSONL), an array (Parquet) or the JSON text of one (CSV)."""
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            return None
    listed = isinstance(cell, (list, tuple)) or getattr(cell, "ndim", 0) == 1
    return [str(t) for t in cell] if listed else None


def _words(cell, path: Path, row: int) -> list[str]:
    """A table cell of words: a list (JSONL, HF), or the JSON text warmstart writes lists as in CSV files."""
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            return cell.split()
        if not isinstance(cell, list):
            raise WarmstartError(f"{path}: row {row}: the tokens cell is JSON but not a list of words")
    return [str(w) for w in cell]


def predict_file(folder: Path, cfg: FinetuneConfig, request) -> pd.DataFrame:
    """`warmstart predict` for a token classifier. -> rows: the input's own columns (a CoNLL file's gold `tags`),
    tokens, prediction"""
    src, text_column, batch_size, progress = request.src, request.text_column, request.batch_size, request.progress
    from transformers import AutoModelForTokenClassification

    from warmstart.tasks.registry import PREDICT_CHUNK, beside_inputs

    sentences, own, words_from = read_predict_inputs(src, cfg.data.tokens_column,
                                                     text_column or cfg.data.text_column)
    model = request.load(AutoModelForTokenClassification, folder, attn_implementation="sdpa")
    tokenizer, bf16, done = request.tokenizer(folder), use_bf16(cfg.train.precision), progress(len(sentences))
    tags = request.chunks(len(sentences), PREDICT_CHUNK, lambda start, stop: predict_tags(
        model, tokenizer, sentences[start:stop], cfg.train.max_length, bf16, batch_size, done), done)
    return beside_inputs(own, pd.DataFrame({"tokens": sentences, "prediction": tags}),
                         consumed=(words_from,) if words_from else ())
