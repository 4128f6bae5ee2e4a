"""Token classification (NER, POS): CoNLL / JSONL / HF data, word-piece alignment, entity repair, seqeval F1.

The model is a standard `AutoModelForTokenClassification`. Each word's tag is learnt and predicted on its first
word piece (the other pieces are ignored, label -100), as in the BERT paper's NER set-up. Entity tags (BIO,
IOB1, BIOES, BILOU: tasks/tag_schemes.py) are learnt in their IOB1 reading, predicted back in the data's
scheme and scored as entities with seqeval (micro F1, conlleval's convention) after a repair (an I-X that does not
continue an X entity becomes B-X); any other tag set is scored by token accuracy (POS).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from warmstart.config import FinetuneConfig, LabelledDataConfig
from warmstart.data.sources import TABLE_SUFFIXES, _is_hf_folder, class_names, read_table, read_text_file
from warmstart.engine.runtime import autocast, to_device
from warmstart.errors import WarmstartError
from warmstart.tasks.card import token_card
from warmstart.tasks.finetune import (
    build_model,
    elapsed,
    few_labels,
    fit,
    measure_forgetting,
    pad,
    shuffled_epochs,
    split_examples,
    split_files,
    start_run,
    write_run,
)
from warmstart.tasks.protocol import scored, select_then_refit
from warmstart.tasks.tag_schemes import (
    decode,
    entity_scheme,
    learnt_inventory,
    learnt_tags,
    tagging_metrics,
    written_scheme,
)

Sentence = tuple[list[str], list[str]]  # (words, tags)


def same_words(sentence: Sentence) -> str:
    """A sentence's words, case folded: the key that keeps a repeated sentence (a retweet, a boilerplate line)
    with all its copies in one split and on one side of the hold-out, as data/sample.text_groups does for texts."""
    return " ".join(sentence[0]).casefold()
IGNORE = -100  # cross_entropy's ignore_index: word pieces after the first, special tokens


# ---------------------------------------------------------------- data
def read_conll(path: Path) -> list[Sentence]:
    """`token<TAB>tag` (or space-separated columns: first = token, last = tag) per line; a blank line ends a
    sentence; `-DOCSTART-` lines are skipped."""
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    for n, line in enumerate(read_text_file(path).splitlines(), 1):
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                sentences.append((words, tags))
                words, tags = [], []
            continue
        parts = [p.strip() for p in (line.split("\t") if "\t" in line else line.split())]
        if len(parts) < 2 or not parts[0] or not parts[-1]:
            raise WarmstartError(f"{path}:{n}: expected 'token<TAB>tag', got {line[:60]!r}; a CoNLL file has one "
                                 "token and its tag per line and a blank line between sentences")
        words.append(parts[0])
        tags.append(parts[-1])
    if words:
        sentences.append((words, tags))
    if not sentences:
        raise WarmstartError(f"{path}: no sentences found (expected token<TAB>tag lines)")
    return sentences


def _table_sentences(df: pd.DataFrame, cfg: LabelledDataConfig, names: list[str] | None, where: str) -> list[Sentence]:
    for col in (cfg.tokens_column, cfg.tags_column):
        if col not in df.columns:
            raise WarmstartError(f"{where}: no column '{col}' (columns: {', '.join(map(str, df.columns))}); set "
                                 f"data.tokens_column / data.tags_column")
    out = []
    for i, (words, tags) in enumerate(zip(df[cfg.tokens_column], df[cfg.tags_column], strict=True)):
        words, tags = list(words), list(tags)
        if len(words) != len(tags):
            raise WarmstartError(f"{where}: row {i} has {len(words)} tokens but {len(tags)} tags")
        if names is not None:
            tags = [names[int(t)] for t in tags]
        if words:
            out.append(([str(w) for w in words], [str(t) for t in tags]))
    return out


def load_token_splits(cfg: LabelledDataConfig, seed: int) -> dict[str, list[Sentence]]:
    """A folder of per-split CoNLL/JSONL files, one CoNLL file (split 90/10 train/test, seeded; 80/10/10 with an
    explicit dev set), or a table / HF dataset (its `split` column or splits; seeded otherwise)."""
    path = Path(cfg.path)

    def read(file: Path) -> list[Sentence]:
        if file.suffix.lower() in TABLE_SUFFIXES:
            return _table_sentences(read_table(str(file)), cfg, None, str(file))
        return read_conll(file)

    if path.is_dir() and not _is_hf_folder(path):
        splits = {name: read(f) for name, f in split_files(path).items()}
    elif path.is_file() and path.suffix.lower() not in TABLE_SUFFIXES:
        splits = split_examples(read_conll(path), seed, cfg.carved_validation, cfg.test_size, group=same_words)
    else:
        df = read_table(cfg.path)
        names = None if path.is_file() else class_names(cfg.path, cfg.tags_column)
        if cfg.split_column and cfg.split_column in df.columns:
            split = df[cfg.split_column].astype(str).str.lower().replace({"valid": "validation", "dev": "validation"})
            splits = {s: _table_sentences(df[split == s], cfg, names, cfg.path) for s in ("train", "validation", "test")}
        else:
            splits = split_examples(_table_sentences(df, cfg, names, cfg.path), seed, cfg.carved_validation,
                                    cfg.test_size, group=same_words)
    if not splits.get("train"):
        raise WarmstartError(f"{cfg.path}: no training sentences")
    splits.setdefault("validation", [])  # none carved: the labelled sample chooses inside its own N
    splits.setdefault("test", [])
    return splits


# ---------------------------------------------------------------- the classic rival
def most_frequent_tag(train: list[Sentence], sentences: list[list[str]]) -> list[list[str]]:
    """The classic rival, no pretraining: each word gets the tag it had most often in `train` (lowercased),
    an unseen word the commonest tag."""
    from collections import Counter, defaultdict

    counts: dict[str, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for words, tags in train:
        for w, t in zip(words, tags, strict=True):
            counts[w.lower()][t] += 1
            overall[t] += 1
    default = overall.most_common(1)[0][0]
    return [[counts[w.lower()].most_common(1)[0][0] if w.lower() in counts else default for w in ws]
            for ws in sentences]


# ---------------------------------------------------------------- model inputs
def encode(tokenizer, sentences: list[list[str]], max_length: int, tag_ids: list[list[int]] | None = None):
    """-> (input ids per sentence, first-piece position of each word (-1 when truncated away), labels or None)"""
    enc = tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=max_length)
    firsts, labels = [], []
    for i, words in enumerate(sentences):
        first = [-1] * len(words)
        for pos, w in enumerate(enc.word_ids(i)):
            if w is not None and first[w] < 0:
                first[w] = pos
        firsts.append(first)
        if tag_ids is not None:
            row = [IGNORE] * len(enc["input_ids"][i])
            for w, pos in enumerate(first):
                if pos >= 0:
                    row[pos] = tag_ids[i][w]
            labels.append(row)
    return enc["input_ids"], firsts, (labels if tag_ids is not None else None)


def make_batch(ids: list[list[int]], rows, pad_id: int, labels: list[list[int]] | None = None) -> dict:
    """-> input_ids / attention_mask (B, T), labels (B, T) with -100 where no word starts."""
    b = {"input_ids": pad([ids[i] for i in rows], pad_id)}
    b["attention_mask"] = pad([[1] * len(ids[i]) for i in rows], 0)
    if labels is not None:
        b["labels"] = pad([labels[i] for i in rows], 0, fill=IGNORE)
    return b


def word_windows(tokenizer, sentences: list[list[str]], max_length: int) -> list[tuple[int, int, int]]:
    """-> (sentence, first word, end word) spans, in order, whose pieces fit `max_length` with the special tokens:
    a sentence longer than that is read window by window, where truncation tagged its tail 'O' unseen (HF's
    token-classification pipeline strides over long inputs likewise). A word longer than a window is its own
    window (its first piece, the one tagged, is kept)."""
    budget = max(1, max_length - tokenizer.num_special_tokens_to_add(pair=False))
    pieces = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False)
    spans = []
    for i, words in enumerate(sentences):
        counts = [0] * len(words)
        for w in pieces.word_ids(i):
            if w is not None:
                counts[w] += 1
        start, used = 0, 0
        for w, c in enumerate(counts):
            if used + c > budget and w > start:
                spans.append((i, start, w))
                start, used = w, 0
            used += c
        spans.append((i, start, len(words)))
    return spans


@torch.no_grad()
def per_word(forward, tokenizer, sentences: list[list[str]], max_length: int, bf16: bool, batch_size: int = 64,
             progress=None):
    """Run `forward(batch) -> (B, T, ...)` over the sentences in batches, a long one in windows of `max_length`
    (`word_windows`), and yield, per sentence, its output at each word's first piece, (W, ...), with the mask
    (W,) of the words that have a piece (a word the tokenizer drops has none). The windows go longest first, so a
    batch pads to windows of about its own length (as classification.inference_batches); the sentences come out
    in their order."""
    spans = word_windows(tokenizer, sentences, max_length)
    ids, firsts, _ = encode(tokenizer, [sentences[i][a:b] for i, a, b in spans], max_length)
    order = np.argsort([-len(x) for x in ids], kind="stable")
    left = np.bincount([i for i, _, _ in spans], minlength=len(sentences))  # windows still to run, per sentence
    got: list = [None] * len(ids)
    for s in range(0, len(order), batch_size):
        rows = order[s:s + batch_size]
        batch = to_device(make_batch(ids, rows, tokenizer.pad_token_id))
        with autocast(bf16):
            out = forward(batch).float().cpu()
        done = 0
        for j, k in enumerate(rows):
            pos = torch.tensor(firsts[k], dtype=torch.long)
            got[k] = (out[j, pos.clamp(min=0)], pos >= 0)
            left[spans[k][0]] -= 1
            done += int(left[spans[k][0]] == 0)
        if progress:
            progress(done)
    outs, kept = [], []
    for k, (i, _, end) in enumerate(spans):
        outs.append(got[k][0])
        kept.append(got[k][1])
        if end == len(sentences[i]):  # the sentence's last window
            yield torch.cat(outs), torch.cat(kept)
            outs, kept = [], []


def predict_tags(model, tokenizer, sentences: list[list[str]], max_length: int, bf16: bool, batch_size: int = 64,
                 progress=None) -> list[list[str]]:
    """Each word's tag from its first word piece (a sentence beyond max_length in windows); entity tags made
    well-formed in their scheme (tasks/tag_schemes.py)."""
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    fallback = "O" if "O" in names else names[0]
    model.eval()
    out = [[names[b] if k else fallback for b, k in zip(logits.argmax(-1).tolist(), kept.tolist(), strict=True)]
           for logits, kept in per_word(lambda b: model(**b).logits, tokenizer, sentences, max_length, bf16,
                                        batch_size, progress)]
    # the data's scheme, which the model's own (IOB1) tags are written back in; a folder from before it was
    # recorded learnt the data's tags as written, so its tags name the scheme
    scheme = getattr(model.config, "tag_scheme", None) or entity_scheme(names)
    return [decode(t, scheme) for t in out] if scheme else out


# ---------------------------------------------------------------- run
def held_out_score(rows: list[Sentence], pred: list[list[str]], scheme: str | None, metric: str) -> float:
    """The figure that chooses (early stopping, the refit's check): entity F1 (token accuracy for tags that are not
    entities). An entity model less accurate per word than tagging every word 'O' scores 0, the floor of a model
    that has learnt nothing: in its first epochs a model can tag half the words as entities and find one by chance
    (WNUT-16, 100 tweets, seed 2: F1 0.013 at step 5, token accuracy 47.6%), and patience counted from that
    'best' stopped the run before it had learnt anything and kept those weights."""
    m = tagging_metrics([ts for _, ts in rows], pred, scheme)
    if metric == "entity_f1":
        words = [t for _, ts in rows for t in ts]
        if m["token_accuracy"] < words.count("O") / max(1, len(words)):
            return 0.0
    return m[metric]


def run_token_classification(cfg: FinetuneConfig) -> dict:
    """Fine-tune, tag the test split, write metrics.json / predictions.jsonl / the checkpoint."""
    from transformers import AutoModelForTokenClassification

    tc = cfg.train
    t0, bf16, tokenizer = start_run(cfg)
    splits = load_token_splits(cfg.data, tc.seed)
    sample = few_labels(splits, cfg, group=same_words)
    test = sample.test
    # the tag inventory is the schema (every tag of every split), so a type absent from a small training
    # sample is still a class; entity tags of any scheme are learnt in their IOB1 reading (tasks/tag_schemes.py)
    # and predicted back in the data's scheme, which gold (validation, test) stays in
    tags = {t for part in splits.values() for _, ts in part for t in ts}
    scheme = written_scheme([ts for part in splits.values() for _, ts in part])
    names = sorted(learnt_inventory(tags, scheme, tc.entity_tags))
    index = {t: i for i, t in enumerate(names)}
    learnt = {"tag_scheme": scheme, "entity_tags": tc.entity_tags} if scheme else {}  # in config.json, for predict
    pad_id = tokenizer.pad_token_id
    metric = "entity_f1" if scheme else "token_accuracy"

    def train_once(train: list, val: list | None, steps: int | None, phase: str):
        model = build_model(AutoModelForTokenClassification, cfg, num_labels=len(names),
                            id2label=dict(enumerate(names)), label2id=index)
        model.config.update(learnt)  # from_pretrained would hand keys its config lacks to the model's __init__
        # a sentence beyond max_length trains window by window, as it is tagged: truncation dropped its tail's labels
        rows = [(words, learnt_tags(ts, scheme, tc.entity_tags)) for words, ts in train]
        pieces = [(rows[i][0][a:b], rows[i][1][a:b]) for i, a, b in word_windows(tokenizer, [w for w, _ in rows],
                                                                                 tc.max_length)]
        ids, _, labels = encode(tokenizer, [w for w, _ in pieces], tc.max_length,
                                [[index[t] for t in ts] for _, ts in pieces])

        def step_fn(batch):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            return {"loss": F.cross_entropy(logits.float().flatten(0, 1), batch["labels"].flatten(),
                                            ignore_index=IGNORE)}

        def evaluate() -> float:
            return held_out_score(val, predict_tags(model, tokenizer, [w for w, _ in val], tc.max_length, bf16),
                                  scheme, metric)

        batches = shuffled_epochs(len(ids), tc.batch_size, tc.seed, lambda rows: make_batch(ids, rows, pad_id, labels))
        return model, fit(model, tc, Path(cfg.output_dir), batches, step_fn, evaluate if val else None, len(ids),
                          model.classifier, bf16, f"val_{metric}", steps=steps, phase=phase,
                          floor=0.0 if metric == "entity_f1" else None)  # F1 0: no entity found yet

    def score(model, rows: list) -> float:  # the refit's check (tasks/protocol.py)
        return held_out_score(rows, predict_tags(model, tokenizer, [w for w, _ in rows], tc.max_length, bf16),
                              scheme, metric)

    model, fitted = select_then_refit(sample, tc.strategy, train_once, Path(cfg.output_dir), score, f"val_{metric}",
                                      tc.patience > 0)
    tested, files = {}, {}
    if test:
        pred = predict_tags(model, tokenizer, [w for w, _ in test], tc.max_length, bf16)
        tested = tagging_metrics([ts for _, ts in test], pred, scheme)
        # the classic rival beside it, on the same N labels and test split (Lead is summarisation's)
        classic = most_frequent_tag(sample.labelled, [w for w, _ in test])
        classic = tagging_metrics([ts for _, ts in test], [decode(c, scheme) for c in classic] if scheme else classic,
                                  scheme)
        tested |= {f"commonest_tag_{k}": classic[k] for k in (metric, "token_accuracy") if k in classic}
        predictions = pd.DataFrame({"tokens": [w for w, _ in test], "tags": [ts for _, ts in test], "prediction": pred})
        files["predictions.jsonl"] = lambda p: predictions.to_json(p, orient="records", lines=True, force_ascii=False)
    metrics = scored({**tested, "task": "token_classification", "test_sentences": len(test), "init": cfg.init,
                      "seed": tc.seed, **fitted, **measure_forgetting(cfg, model, tokenizer, bf16),
                      "seconds": elapsed(t0)}, len(test) > 0)
    if tc.save_model:  # how to use the folder, with transformers alone too
        card = token_card(metrics, names, str(cfg.init), tc.max_length, scheme, tc.entity_tags)
        files["README.md"] = lambda p: p.write_text(card, encoding="utf-8")
    write_run(cfg, model, tokenizer, metrics, files)
    return metrics


def labelled_sample(cfg: FinetuneConfig):
    """The (train, validation, test) items this task's runs, rank and baselines all see (data/sample.py)."""
    return few_labels(load_token_splits(cfg.data, cfg.train.seed), cfg, group=same_words)
