"""Extractive summarisation: score every sentence of a document with the encoder, keep the best under a word
budget, in document order; ROUGE-1/2/L (Google's `rouge-score`) against the references, and sentence F1
against the oracle labels.

The scorer is a standard `AutoModelForSequenceClassification` (2 classes: in the summary or not) reading the
sentence with a short second segment that says where it stands (`abstract 2`: section and position), as
BertSum gives its sentence encoder the position. Documents are JSONL records `{id, sentences, labels, summary}`
(`labels` 0/1 per sentence; when absent they come from a greedy ROUGE oracle, as in BertSum), or ACLSum
records (per-section sentences, per-aspect summaries and highlights; `data.aspect` picks one, `all` joins them).
Lead (the first sentences under the budget) and the greedy ROUGE oracle under the same budget are scored
beside the model, as the floor and the ceiling of an extractive summariser.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from warmstart.config import FinetuneConfig, LabelledDataConfig
from warmstart.data.sources import read_text_file
from warmstart.engine.runtime import device, use_bf16
from warmstart.errors import WarmstartError
from warmstart.tasks.card import extract_card
from warmstart.tasks.classification import encode, inference_batches, make_batches, predict_batches
from warmstart.tasks.finetune import (
    build_model,
    elapsed,
    few_labels,
    fit,
    measure_forgetting,
    shuffled_epochs,
    split_examples,
    split_files,
    start_run,
    write_run,
)
from warmstart.tasks.protocol import scored, select_then_refit
from warmstart.tasks.registry import PREDICT_CHUNK

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@dataclass
class Document:
    id: str
    sentences: list[str]
    sections: list[str]  # per sentence ("" when the format has none)
    labels: list[int] | None  # 1 = the sentence belongs in the summary
    summary: str | None  # the reference


# ---------------------------------------------------------------- data
def _from_record(r: dict, aspect: str, where: str) -> Document:
    sents = r.get("sentences")
    if isinstance(sents, dict):  # ACLSum: {section: [sentence, ...]}, highlights {aspect: {section: [0/1]}}
        sections = list(sents)
        sentences = [s for sec in sections for s in sents[sec]]
        names = [sec for sec in sections for _ in sents[sec]]
        summaries, highlights = r.get("summary") or {}, r.get("highlights") or {}
        aspects = list(summaries) if aspect == "all" else [aspect]
        if aspect != "all" and aspect not in summaries:
            raise WarmstartError(f"{where}: no aspect '{aspect}' (found {', '.join(summaries)}); set data.aspect")
        summary = " ".join(summaries[a] for a in aspects) if summaries else None
        labels = None
        if highlights:
            labels = [int(any(highlights[a][sec][k] for a in aspects)) for sec in sections for k in range(len(sents[sec]))]
        return Document(str(r.get("id", "")), sentences, names, labels, summary)
    if not isinstance(sents, list):
        raise WarmstartError(f"{where}: a document needs 'sentences' (a list of strings, or sections of lists)")
    labels = r.get("labels")
    if labels is not None and len(labels) != len(sents):
        raise WarmstartError(f"{where}: document {r.get('id', '?')} has {len(sents)} sentences but {len(labels)} labels")
    summary = r.get("summary")
    return Document(str(r.get("id", "")), [str(s) for s in sents], [""] * len(sents),
                    [int(x) for x in labels] if labels is not None else None,
                    " ".join(summary) if isinstance(summary, list) else summary)


def read_documents(path: Path, aspect: str = "all") -> list[Document]:
    docs = []
    for n, line in enumerate(read_text_file(path).splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise WarmstartError(f"{path}:{n}: not a JSON object ({e.msg}); expected one document per line") from None
            if not isinstance(record, dict):
                raise WarmstartError(f"{path}:{n}: not a JSON object (a {type(record).__name__}); expected one document "
                                     "per line, {\"sentences\": [...], \"summary\": ...}")
            docs.append(_from_record(record, aspect, f"{path}:{n}"))
    if not docs:
        raise WarmstartError(f"{path}: no documents")
    return docs


def load_document_splits(cfg: LabelledDataConfig, seed: int) -> dict[str, list[Document]]:
    """A folder of train/validation/test JSONL files, or one file split 90/10 train/test (seeded;
    80/10/10 with an explicit dev set, `data.validation_labels`)."""
    path = Path(cfg.path)
    if path.is_dir():
        splits = {name: read_documents(f, cfg.aspect) for name, f in split_files(path).items()}
    elif path.is_file():
        splits = split_examples(read_documents(path, cfg.aspect), seed, cfg.carved_validation, cfg.test_size)
    else:
        raise WarmstartError(f"{path}: not found; data.path is a JSONL file of documents or a folder of them")
    splits.setdefault("validation", [])  # none carved: the labelled sample chooses inside its own N
    splits.setdefault("test", [])
    for name, docs in splits.items():
        for d in docs:
            if d.summary is None and d.labels is None:
                raise WarmstartError(f"{cfg.path}: document {d.id or '?'} ({name}) has neither a summary nor labels")
            if d.labels is None:
                d.labels = oracle_labels(d.sentences, d.summary)
    return splits


# ---------------------------------------------------------------- ROUGE, oracle, selection
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge(extracts: list[str], references: list[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 (x100) over documents."""
    scorer = _scorer()
    scores = [scorer.score(ref, ext) for ext, ref in zip(extracts, references, strict=True)]
    return {k: round(100 * float(np.mean([s[k].fmeasure for s in scores])), 2) for k in ROUGE_TYPES}


def oracle_labels(sentences: list[str], summary: str, max_words: int | None = None) -> list[int]:
    """BertSum's greedy oracle: add the sentence that most raises ROUGE-1 + ROUGE-2 F1 against the reference,
    while it still rises (and, with `max_words`, while the extract fits that budget)."""
    scorer = _scorer()
    chosen: list[int] = []
    best, words = 0.0, 0
    for _ in range(len(sentences)):
        gains = []
        for i in range(len(sentences)):
            fits = max_words is None or not chosen or words + len(sentences[i].split()) <= max_words
            if i not in chosen and fits:
                s = scorer.score(summary, " ".join(sentences[j] for j in sorted([*chosen, i])))
                gains.append((s["rouge1"].fmeasure + s["rouge2"].fmeasure, i))
        if not gains or max(gains)[0] <= best:
            break
        best, pick = max(gains)
        chosen.append(pick)
        words += len(sentences[pick].split())
    return [int(i in chosen) for i in range(len(sentences))]


def select(scores: np.ndarray, sentences: list[str], max_words: int) -> list[int]:
    """The highest-scoring sentences while they fit `max_words` (the best one always), in document order."""
    chosen, words = [], 0
    for i in np.argsort(-scores, kind="stable"):
        n = len(sentences[i].split())
        if chosen and words + n > max_words:
            continue
        chosen.append(int(i))
        words += n
    return sorted(chosen)


def summary_budget(cfg: FinetuneConfig, labelled: list[Document]) -> int:
    """The extract's budget in words: `data.max_words`, else the median reference of the labelled documents."""
    if cfg.data.max_words is not None:
        return cfg.data.max_words
    refs = [len(d.summary.split()) for d in labelled if d.summary]
    return int(np.median(refs)) if refs else 100


def lead_extracts(docs: list[Document], max_words: int) -> list[str]:
    """Lead: each document's first sentences within the budget (the first one always), the rule a model must beat."""
    return [" ".join(d.sentences[i] for i in select(-np.arange(len(d.sentences), dtype=float), d.sentences, max_words))
            for d in docs]


def sentence_f1(selected: list[list[int]], labels: list[list[int]]) -> float:
    """F1 of the selected sentences against the oracle labels, pooled over all sentences."""
    tp = sum(lab[i] for sel, lab in zip(selected, labels, strict=True) for i in sel)
    n_sel, n_pos = sum(map(len, selected)), sum(map(sum, labels))
    return round(2 * tp / max(1, n_sel + n_pos), 4)


# ---------------------------------------------------------------- model inputs
def sentence_table(docs: list[Document]) -> pd.DataFrame:
    """One row per sentence: text, text_pair (`section position`), document index, label."""
    rows = []
    for d_i, d in enumerate(docs):
        seen: dict[str, int] = {}
        for k, (s, sec) in enumerate(zip(d.sentences, d.sections, strict=True)):
            seen[sec] = seen.get(sec, 0) + 1
            rows.append({"text": s, "text_pair": f"{sec} {min(seen[sec], 30)}".strip(), "doc": d_i,
                         "label": (d.labels or [0] * len(d.sentences))[k]})
    return pd.DataFrame(rows, columns=["text", "text_pair", "doc", "label"])


def score_sentences(model, tokenizer, docs: list[Document], max_length: int, bf16: bool, batch_size: int = 64
                    ) -> list[np.ndarray]:
    """P(in summary) of every sentence. -> one (S_d,) array per document"""
    table = sentence_table(docs)
    probs = predict_batches(model, inference_batches(encode(tokenizer, table, max_length), batch_size,
                                                     tokenizer.pad_token_id), "cls", bf16)[:, 1]
    return [probs[table["doc"].to_numpy() == i] for i in range(len(docs))]


def summarise(model, tokenizer, docs: list[Document], max_length: int, max_words: int, bf16: bool) -> pd.DataFrame:
    """-> one row per document: id, selected sentence indices, summary, sentence scores"""
    scores = score_sentences(model, tokenizer, docs, max_length, bf16)
    picks = [select(s, d.sentences, max_words) for s, d in zip(scores, docs, strict=True)]
    return pd.DataFrame({"id": [d.id for d in docs], "selected": picks,
                         "summary": [" ".join(d.sentences[i] for i in p) for d, p in zip(docs, picks, strict=True)],
                         "scores": [s.round(6).tolist() for s in scores]})


# ---------------------------------------------------------------- run
def run_summarization(cfg: FinetuneConfig) -> dict:
    """Fine-tune the sentence scorer, summarise the test documents, write metrics / predictions / checkpoint."""
    from transformers import AutoModelForSequenceClassification

    tc = cfg.train
    t0, bf16, tokenizer = start_run(cfg)
    splits = load_document_splits(cfg.data, tc.seed)
    sample = few_labels(splits, cfg)
    train, test = sample.labelled, sample.test
    if cfg.data.max_words is None:  # resolved once and saved with the run, so predict uses the same budget
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, max_words=summary_budget(cfg, train)))
    budget = cfg.data.max_words
    pad_id = tokenizer.pad_token_id

    def rouge_mean(model, docs: list) -> float:  # the selection's metric; also the refit's check (tasks/protocol.py)
        out = summarise(model, tokenizer, docs, tc.max_length, budget, bf16)
        return float(np.mean(list(rouge(out["summary"].tolist(), [d.summary for d in docs]).values())))

    def train_once(docs: list, val: list | None, steps: int | None, phase: str):
        model = build_model(AutoModelForSequenceClassification, cfg, num_labels=2,
                            id2label={0: "out", 1: "in_summary"}, label2id={"out": 0, "in_summary": 1})
        table = sentence_table(docs)
        enc, y = encode(tokenizer, table, tc.max_length), table["label"].to_numpy()
        # positives are a minority (about 1 in 4 on ACLSum): weight them up so the scorer does not learn "never"
        weight = torch.tensor([1.0, float((y == 0).sum() / max(1, (y == 1).sum()))], device=device())

        def step_fn(batch):
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
            return {"loss": F.cross_entropy(logits.float(), batch["labels"], weight=weight)}

        def evaluate() -> float:
            return rouge_mean(model, val)

        batches = shuffled_epochs(len(y), tc.batch_size, tc.seed,
                                  lambda rows: make_batches(enc, y, len(rows), pad_id, rows)[0])
        return model, {**fit(model, tc, Path(cfg.output_dir), batches, step_fn, evaluate if val else None, len(y),
                             model.classifier, bf16, "val_rouge_mean", steps=steps, phase=phase),
                       "train_sentences": len(y)}

    model, fitted = select_then_refit(sample, tc.strategy, train_once, Path(cfg.output_dir), rouge_mean,
                                      "val_rouge_mean", tc.patience > 0)
    if not test:
        metrics = scored({"task": "summarization", "max_words": budget, "test_documents": 0,
                          "train_documents": len(train), "init": cfg.init, "seed": tc.seed, **fitted,
                          "seconds": elapsed(t0)}, False)
        write_run(cfg, model, tokenizer, metrics, card_file(cfg, metrics))
        return metrics
    out = summarise(model, tokenizer, test, tc.max_length, budget, bf16)
    refs = [d.summary or "" for d in test]
    lead = lead_extracts(test, budget)
    oracle = [" ".join(d.sentences[i] for i, x in enumerate(oracle_labels(d.sentences, r, budget)) if x)
              for d, r in zip(test, refs, strict=True)]
    metrics = {**rouge(out["summary"].tolist(), refs),
               "sentence_f1": sentence_f1(out["selected"].tolist(), [d.labels for d in test]),
               **{f"lead_{k}": v for k, v in rouge(lead, refs).items()},
               **{f"oracle_{k}": v for k, v in rouge(oracle, refs).items()},
               "task": "summarization", "max_words": budget, "test_documents": len(test),
               "train_documents": len(train), "init": cfg.init, "seed": tc.seed,
               **fitted, **measure_forgetting(cfg, model, tokenizer, bf16), "seconds": elapsed(t0)}
    out["reference"] = refs
    metrics = scored(metrics, True)
    write_run(cfg, model, tokenizer, metrics,
              {"predictions.jsonl": lambda p: out.to_json(p, orient="records", lines=True, force_ascii=False),
               **card_file(cfg, metrics)})
    return metrics


def card_file(cfg: FinetuneConfig, metrics: dict) -> dict:
    """{"README.md": writer}: how to use the folder, with transformers alone too (when the model is saved)."""
    if not cfg.train.save_model:
        return {}
    card = extract_card(metrics, str(cfg.init), cfg.train.max_length, metrics["max_words"])
    return {"README.md": lambda p: p.write_text(card, encoding="utf-8")}


def predict_file(folder: Path, cfg: FinetuneConfig, request) -> pd.DataFrame:
    """`warmstart predict` for a summariser: JSONL documents (or a text file: one sentence a line, a blank line
    between documents, as a pretraining corpus is written) in, one extract per document out."""
    src, progress = request.src, request.progress
    from transformers import AutoModelForSequenceClassification

    docs = read_documents(src, cfg.data.aspect) if src.suffix.lower() in (".jsonl", ".json") else text_documents(src)
    model = request.load(AutoModelForSequenceClassification, folder, attn_implementation="sdpa")
    tokenizer, bf16, done = request.tokenizer(folder), use_bf16(cfg.train.precision), progress(len(docs))

    def chunk(start: int, stop: int) -> list[dict]:  # a document is tens of sentences: chunks of fewer of them
        out = summarise(model, tokenizer, docs[start:stop], cfg.train.max_length, cfg.data.max_words or 100, bf16)
        done(stop - start)
        return out.to_dict("records")

    return pd.DataFrame(request.chunks(len(docs), PREDICT_CHUNK // 32, chunk, done),
                        columns=["id", "selected", "summary", "scores"])


def text_documents(path: Path) -> list[Document]:
    """Documents from a text file: each line a sentence, a blank line between documents (`data.sources`'
    format; no sentence splitter is guessed at), ids doc0, doc1, ..."""
    from warmstart.data.sources import split_documents

    docs = [Document(f"doc{i}", sents, [""] * len(sents), None, None)
            for i, sents in enumerate(split_documents(read_text_file(path), str(path)))]
    if not docs:
        raise WarmstartError(f"{path}: no documents (one sentence a line, a blank line between documents)")
    return docs


def labelled_sample(cfg: FinetuneConfig):
    """The (train, validation, test) items this task's runs, rank and baselines all see (data/sample.py)."""
    return few_labels(load_document_splits(cfg.data, cfg.train.seed), cfg)
