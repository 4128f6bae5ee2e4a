"""Dialogue response selection: given a context and N candidate replies, rank them with a cross-encoder.

The cross-encoder is a standard `AutoModelForSequenceClassification` with one output (a score) reading
`context [SEP] reply`. When the pretrained checkpoint has a next-sentence-prediction head it starts from it
(score = IsNext logit - NotNext logit: a reply *is* a next sentence), otherwise the score head is new.
Training is listwise: each context with its true reply and `train.negatives` replies sampled from other
contexts, softmax cross-entropy over the group. Evaluation: every test context against `data.candidates - 1`
sampled replies (fixed by the seed, written beside the run), recall@1 and MRR; a tie counts against the
true reply, so a constant scorer gets recall@1 = 0.

Conversations come from JSONL records `{turns: [...]}` (e.g. chatterbot) or from a novel's text, where
paragraphs that open with a quotation mark in a row are taken as the turns of one conversation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from warmstart.config import FinetuneConfig, LabelledDataConfig
from warmstart.data.sources import read_text_file
from warmstart.engine.runtime import autocast, require_placed, to_device, use_bf16
from warmstart.errors import WarmstartError
from warmstart.tasks.card import reply_card
from warmstart.tasks.classification import encode, inference_batches, make_batches
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

QUOTES = ('"', "“", "‘", "'")


@dataclass
class Example:
    context: list[str]  # the earlier turns, oldest first
    reply: str
    key: str  # the conversation's opening turn: replies to the same opening are not negatives of each other


# ---------------------------------------------------------------- data
def conversations_from_novel(text: str) -> list[list[str]]:
    """Runs of two or more consecutive paragraphs (one per line) that open with a quotation mark."""
    out, run = [], []
    for line in [*text.splitlines(), ""]:
        line = line.strip()
        if line.startswith(QUOTES):
            run.append(line)
            continue
        if len(run) >= 2:
            out.append(run)
        run = []
    return out


def read_conversations(path: Path) -> list[list[str]]:
    if path.suffix.lower() == ".jsonl":
        convs = []
        for n, line in enumerate(read_text_file(path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                turns = json.loads(line).get("turns")
            except (json.JSONDecodeError, AttributeError):
                raise WarmstartError(f"{path}:{n}: expected a JSON object with 'turns' (a list of strings)") from None
            if not isinstance(turns, list):
                raise WarmstartError(f"{path}:{n}: 'turns' must be a list of strings")
            convs.append([str(t) for t in turns if str(t).strip()])
    else:
        convs = conversations_from_novel(read_text_file(path))
    convs = [c for c in convs if len(c) >= 2]
    if not convs:
        raise WarmstartError(f"{path}: no conversation of two or more turns (JSONL {{\"turns\": [...]}} lines, or "
                             "a text whose quoted paragraphs follow each other)")
    return convs


def examples_of(convs: list[list[str]], context_turns: int) -> list[Example]:
    return [Example(c[max(0, t - context_turns):t], c[t], c[0].strip().lower()) for c in convs for t in range(1, len(c))]


def same_opening(example: Example) -> str:
    """The group a conversation's examples share: held out together, never on both sides of a choice."""
    return example.key


def load_dialogue_splits(cfg: LabelledDataConfig, seed: int) -> dict[str, list[Example]]:
    """Per-split files in a folder, or conversations split 90/10 train/test (seeded) with every conversation that
    opens the same way in one split (chatterbot asks 'What is AI?' several times)."""
    path = Path(cfg.path)
    if path.is_dir():
        files = split_files(path)
        convs = {name: read_conversations(f) for name, f in files.items()}
    elif path.is_file():
        convs = split_examples(read_conversations(path), seed, cfg.carved_validation, cfg.test_size,
                               group=lambda c: c[0].strip().lower())
    else:
        raise WarmstartError(f"{path}: not found; data.path is a JSONL file of conversations, a text, or a folder")
    convs.setdefault("validation", [])  # none carved: the labelled sample chooses inside its own N
    convs.setdefault("test", [])
    return {name: examples_of(c, cfg.context_turns) for name, c in convs.items()}


def sample_negatives(examples: list[Example], pool: list[Example], k: int, rng: np.random.Generator) -> list[list[str]]:
    """k replies per example drawn from `pool`, never a reply to the same opening, nor the true reply's text."""
    out = []
    for ex in examples:
        picks: list[str] = []
        for _ in range(50 * k):
            if len(picks) == k:
                break
            other = pool[int(rng.integers(len(pool)))]
            if other.key != ex.key and other.reply != ex.reply and other.reply not in picks:
                picks.append(other.reply)
        if len(picks) < k:
            raise WarmstartError(f"only {len(picks)} distinct replies to sample as negatives, {k} needed; lower "
                                 "data.candidates / train.negatives or give more conversations")
        out.append(picks)
    return out


def evaluation_candidates(sample, candidates: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """The held-out and test contexts' candidates, the true reply first: the same for every model compared (a
    run, the TF-IDF baseline) at one seed. The held-out ones' wrong replies come from the labelled conversations,
    the test ones' from the test split."""
    fixed = np.random.default_rng(seed + 1)
    val, test = sample.validation, sample.test
    val_cands = [[e.reply, *n] for e, n in zip(val, sample_negatives(val, sample.labelled, candidates - 1, fixed),
                                               strict=True)]
    test_cands = [[e.reply, *n] for e, n in zip(test, sample_negatives(test, test, candidates - 1, fixed), strict=True)]
    return val_cands, test_cands


def tfidf_similarity(fit_texts: list[str], contexts: list[str], candidates: list[list[str]]) -> list[np.ndarray]:
    """The classic rival, no pretraining: cosine similarity of word TF-IDF vectors (fitted on `fit_texts`)
    between a context and each candidate."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True).fit(fit_texts)
    out = []
    for context, cands in zip(contexts, candidates, strict=True):
        c, r = vec.transform([context]), vec.transform(cands)
        out.append((r @ c.T).toarray()[:, 0])
    return out


def tfidf_rival(labelled: list[Example], test: list[Example], test_cands: list[list[str]]) -> dict:
    """TF-IDF cosine's recall@1 and MRR on the test candidates, its vocabulary fitted on the labelled
    conversations: what a run must beat (a study's `tfidf_cosine` baseline, and every run's metrics)."""
    texts = [join_turns(e.context, " ") for e in labelled] + [e.reply for e in labelled]
    return ranking_metrics(tfidf_similarity(texts, [join_turns(e.context, " ") for e in test], test_cands))


# ---------------------------------------------------------------- model
def join_turns(context: list[str] | str, sep: str) -> str:
    return context if isinstance(context, str) else f" {sep} ".join(context)


def pair_table(contexts: list[str], candidates: list[list[str]]) -> pd.DataFrame:
    """One row per (context, candidate), grouped by context."""
    return pd.DataFrame({"text": [c for c, cands in zip(contexts, candidates, strict=True) for _ in cands],
                         "text_pair": [r for cands in candidates for r in cands]})


def nsp_head_start(model, init: str) -> bool:
    """Score head := the pretrained NSP head's IsNext - NotNext row, when the checkpoint has one."""
    from safetensors import safe_open

    path = Path(init) / "model.safetensors"
    if not path.is_file():
        return False
    with safe_open(str(path), "pt") as f:
        if "cls.seq_relationship.weight" not in f.keys():
            return False
        w, b = f.get_tensor("cls.seq_relationship.weight"), f.get_tensor("cls.seq_relationship.bias")
    with torch.no_grad():
        model.classifier.weight.copy_((w[0] - w[1]).unsqueeze(0))
        model.classifier.bias.copy_((b[0] - b[1]).unsqueeze(0))
    return True


@torch.no_grad()
def score_candidates(model, tokenizer, contexts: list, candidates: list[list[str]], max_length: int, bf16: bool,
                     batch_size: int = 64, progress=None) -> list[np.ndarray]:
    """-> one (len(candidates[i]),) array of scores per context"""
    require_placed(model, "score_candidates")
    table = pair_table([join_turns(c, tokenizer.sep_token) for c in contexts], candidates)
    model.eval()
    scores, rows = [], []
    for b in inference_batches(encode(tokenizer, table, max_length), batch_size, tokenizer.pad_token_id):
        rows.append(b.pop("rows"))  # longest pairs first: where each batch's pairs go back
        with autocast(bf16):
            scores.append(model(**to_device(b)).logits.float()[:, 0].cpu())
        if progress:
            progress(len(b["input_ids"]))
    flat = torch.cat(scores) if scores else torch.zeros(0)
    flat = torch.empty_like(flat).index_copy_(0, torch.cat(rows), flat).numpy() if rows else flat.numpy()
    ends = np.cumsum([len(c) for c in candidates])
    return np.split(flat, ends[:-1])


def ranking_metrics(scores: list[np.ndarray]) -> dict:
    """Scores with the true reply first. Rank = 1 + number of others scored at least as high."""
    ranks = np.array([1 + int((s[1:] >= s[0]).sum()) for s in scores])
    return {"recall_at_1": round(float((ranks == 1).mean()), 4), "recall_at_2": round(float((ranks <= 2).mean()), 4),
            "mrr": round(float((1 / ranks).mean()), 4)}


# ---------------------------------------------------------------- run
def run_response_selection(cfg: FinetuneConfig) -> dict:
    from transformers import AutoModelForSequenceClassification

    tc = cfg.train
    t0, bf16, tokenizer = start_run(cfg)
    splits = load_dialogue_splits(cfg.data, tc.seed)
    sample = few_labels(splits, cfg, group=same_opening)
    train, val, test = sample.labelled, sample.validation, sample.test
    val_cands, test_cands = evaluation_candidates(sample, cfg.data.candidates, tc.seed)
    sep = tokenizer.sep_token
    pad_id = tokenizer.pad_token_id
    group = 1 + tc.negatives
    from_nsp = False

    def mrr(model, held: list) -> float:  # on the held-out contexts' fixed candidates; also the refit's check
        s = score_candidates(model, tokenizer, [e.context for e in held], val_cands, tc.max_length, bf16)
        return ranking_metrics(s)["mrr"]

    def train_once(items: list, held: list | None, steps: int | None, phase: str):
        nonlocal from_nsp
        model = build_model(AutoModelForSequenceClassification, cfg, num_labels=1)
        from_nsp = cfg.init != "scratch" and nsp_head_start(model, cfg.init)
        rng = np.random.default_rng(tc.seed)

        def make_batch(rows) -> dict:
            exs = [items[i] for i in rows]
            # the wrong replies come from this phase's labelled conversations only: the rest of the training
            # split is labels the user does not have (its replies and, for the same-opening check, its contexts)
            cands = [[e.reply, *n] for e, n in zip(exs, sample_negatives(exs, items, tc.negatives, rng),
                                                   strict=True)]
            enc = encode(tokenizer, pair_table([join_turns(e.context, sep) for e in exs], cands), tc.max_length)
            return make_batches(enc, None, len(exs) * group, pad_id)[0]

        def step_fn(batch):
            scores = model(**batch).logits.float().view(-1, group)  # (B, 1 + negatives), the true reply first
            target = torch.zeros(len(scores), dtype=torch.long, device=scores.device)
            return {"loss": F.cross_entropy(scores, target), "acc": (scores.argmax(1) == 0).float().mean()}

        def evaluate() -> float:
            return mrr(model, held)

        batches = shuffled_epochs(len(items), tc.batch_size, tc.seed, make_batch)
        return model, fit(model, tc, Path(cfg.output_dir), batches, step_fn, evaluate if held else None, len(items),
                          model.classifier, bf16, "val_mrr", steps=steps, phase=phase)

    model, fitted = select_then_refit(sample, tc.strategy, train_once, Path(cfg.output_dir), mrr, "val_mrr",
                                      tc.patience > 0)
    if not test:
        metrics = scored({"task": "response_selection", "test_contexts": 0, "train_contexts": len(train),
                          "validation_contexts": len(val), "init": cfg.init, "seed": tc.seed, **fitted,
                          "seconds": elapsed(t0)}, False)
        write_run(cfg, model, tokenizer, metrics, card_file(cfg, metrics))
        return metrics
    scores = score_candidates(model, tokenizer, [e.context for e in test], test_cands, tc.max_length, bf16)
    rival = {f"tfidf_{k}": v for k, v in tfidf_rival(sample.labelled, test, test_cands).items() if k != "recall_at_2"}
    metrics = {**ranking_metrics(scores), **rival, "candidates": cfg.data.candidates, "task": "response_selection",
               "test_contexts": len(test), "train_contexts": len(train), "validation_contexts": len(val),
               "score_head_from_nsp": from_nsp, "init": cfg.init, "seed": tc.seed, **fitted, **measure_forgetting(cfg, model, tokenizer, bf16), "seconds": elapsed(t0)}
    inputs = pd.DataFrame({"context": [e.context for e in test], "candidates": test_cands})
    predictions = inputs.assign(scores=[s.round(6).tolist() for s in scores],
                                best=[c[int(np.argmax(s))] for c, s in zip(test_cands, scores, strict=True)])

    def jsonl(df: pd.DataFrame):
        return lambda p: df.to_json(p, orient="records", lines=True, force_ascii=False)

    metrics = scored(metrics, True)
    write_run(cfg, model, tokenizer, metrics, {"test_candidates.jsonl": jsonl(inputs), "predictions.jsonl": jsonl(predictions),
                                               **card_file(cfg, metrics)})
    return metrics


def card_file(cfg: FinetuneConfig, metrics: dict) -> dict:
    """{"README.md": writer}: how to use the folder, with transformers alone too (when the model is saved)."""
    if not cfg.train.save_model:
        return {}
    card = reply_card(metrics, str(cfg.init), cfg.train.max_length, cfg.data.context_turns)
    return {"README.md": lambda p: p.write_text(card, encoding="utf-8")}


def predict_file(folder: Path, cfg: FinetuneConfig, request) -> pd.DataFrame:
    """`warmstart predict` for a cross-encoder: JSONL `{context, candidates}` in (context: a string or a list of
    turns, as the run's test_candidates.jsonl); a score per candidate and the best one out."""
    src, batch_size, progress = request.src, request.batch_size, request.progress
    from transformers import AutoModelForSequenceClassification

    from warmstart.data.sources import read_table

    df = read_table(str(src))
    for col in ("context", "candidates"):
        if col not in df.columns:
            raise WarmstartError(f"{src}: no column '{col}'; expected JSONL lines {{\"context\": ..., \"candidates\": [...]}}")
    contexts = [c if isinstance(c, str) else list(c) for c in df["context"]]
    candidates = [list(c) for c in df["candidates"]]
    model = request.load(AutoModelForSequenceClassification, folder, attn_implementation="sdpa")
    tokenizer, bf16, tick = request.tokenizer(folder), use_bf16(cfg.train.precision), progress(len(contexts))

    def chunk(start: int, stop: int) -> list:  # a chunk of contexts, each with its candidates (kept: resumable)
        ends, pairs = np.cumsum([len(c) for c in candidates[start:stop]]), [0]

        def scored(n: int) -> None:  # pairs scored -> contexts done: the bar counts the file's rows, as predict's rate
            before = int(np.searchsorted(ends, pairs[0], "right"))
            pairs[0] += n
            tick(int(np.searchsorted(ends, pairs[0], "right")) - before)

        return [s.tolist() for s in score_candidates(model, tokenizer, contexts[start:stop], candidates[start:stop],
                                                     cfg.train.max_length, bf16, batch_size, scored)]

    from warmstart.tasks.registry import PREDICT_CHUNK, beside_inputs

    scores = [np.asarray(s, dtype=np.float32) for s in request.chunks(len(contexts), PREDICT_CHUNK // 8, chunk, tick)]
    ranked = pd.DataFrame({"context": contexts, "candidates": candidates, "scores": [s.round(6).tolist() for s in scores],
                           "best": [c[int(np.argmax(s))] for c, s in zip(candidates, scores, strict=True)]})
    return beside_inputs(df, ranked, consumed=("context", "candidates"))


def labelled_sample(cfg: FinetuneConfig):
    """The (train, validation, test) items this task's runs, rank and baselines all see (data/sample.py)."""
    return few_labels(load_dialogue_splits(cfg.data, cfg.train.seed), cfg, group=same_opening)
