"""Sequence classification (sentiment, topics, sentence pairs): data, head, strategies, metrics.

The model is a standard `AutoModelForSequenceClassification`. Strategies:
  - `full`: every weight trains (the one loop in tasks/finetune.py), for the whole budget or, with
    `train.patience` > 0, early stopping on held-out accuracy;
  - `linear_probe`: the encoder is frozen, so its features are computed once and the head is fitted
    as an L2-regularised logistic regression whose strength is chosen on validation (far faster and
    steadier at 100 labels than SGD on the head); the fitted weights are written into the HF head;
  - `lp_ft`: the linear probe, then full fine-tuning from that head; with early stopping the probed model stays
    the best candidate until fine-tuning beats it on the held-out share.
Pooling `cls` is the HF head (pooler over [CLS]) and round-trips through `transformers` alone; `mean`
(mean of the last hidden states) is often better for small encoders, and `warmstart predict` applies it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from warmstart.config import FinetuneConfig, LabelledDataConfig
from warmstart.data.sample import Sample
from warmstart.data.sources import read_inputs
from warmstart.engine.runtime import autocast, require_placed, to_device
from warmstart.errors import WarmstartError
from warmstart.models.probe import accuracy, balanced_accuracy, class_weights, fit_logistic, fit_logistic_cv
from warmstart.tasks.card import finetune_card
from warmstart.tasks.finetune import (
    build_model,
    chosen_pooling,
    elapsed,
    fit,
    majority_share,
    measure_forgetting,
    resolve_pooling,
    shuffled_epochs,
    start_run,
    write_run,
)
from warmstart.tasks.labelled_table import (
    SPLITS,
    class_scores,
    holds_sets,
    read_labelled,
    row_groups,
    row_numbers,
    sample_splits,
    split_table,
    subsample,  # noqa: F401 (re-exported: autopilot and tests draw with it)
    texts_of,
    written,
)
from warmstart.tasks.protocol import caller_scores, scored, select_then_refit
from warmstart.tasks.registry import PREDICT_CHUNK
from warmstart.tasks.strategies import probe_then_finetune


# ---------------------------------------------------------------- data
def _check_labels(df: pd.DataFrame, column: str, where: str) -> pd.Series:
    labels = df[column]
    if holds_sets(labels):
        raise WarmstartError(f"{where}: label column '{column}' holds lists of labels, a set for each text: that is "
                             "multi-label classification; use task: multi_label (`warmstart finetune multilabel "
                             f"data.path={where} data.label_column={column} init=ENCODER`)")
    if (missing := labels.isna()).any():
        verb = "has" if missing.sum() == 1 else "have"
        raise WarmstartError(f"{where}: {row_numbers(missing)} {verb} no value in label column '{column}'; drop or "
                             "fill them")
    if pd.api.types.is_float_dtype(labels):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise WarmstartError(f"{where}: label column '{column}' holds non-integer floats (e.g. {labels.iloc[0]}); "
                                 "classification needs discrete labels")
        labels = labels.astype(int)
    return labels.astype(str) if not pd.api.types.is_integer_dtype(labels) else labels


def load_splits(cfg: LabelledDataConfig, seed: int) -> tuple[dict[str, pd.DataFrame], list]:
    """Read the table, split it, map labels to ids. -> ({split: DataFrame[text, (text_pair), label]}, label names)"""
    if cfg.label_columns:
        raise WarmstartError(f"data.label_columns={cfg.label_columns}: one 0/1 column per label lets a text have "
                             "several labels; that is task: multi_label (configs/finetune/multilabel.yaml)")
    df, order = read_labelled(cfg)
    where = cfg.path
    splits = split_table(df, texts_of(df, cfg, _check_labels(df, cfg.label_column, where)), cfg, seed)
    seen = set(splits["train"]["label"].tolist())
    names = [n for n in order if n in seen] if order else sorted(seen)  # a ClassLabel's ids keep their order
    for name in ("validation", "test"):
        unseen = sorted(set(splits[name]["label"]) - set(names))
        if unseen:
            raise WarmstartError(f"{where}: label {unseen[0]!r} appears in the {name} split but never in train; "
                                 "add training examples or drop those rows")
    index = {n: i for i, n in enumerate(names)}
    for name in SPLITS:
        splits[name] = splits[name].assign(label=splits[name]["label"].map(index)).reset_index(drop=True)
    return splits, names  # no validation split is carved: the labelled sample chooses inside its own N


def labelled_sample(cfg: FinetuneConfig) -> Sample:
    """The labelled sample that this task's runs, rank and the TF-IDF baseline all see."""
    return sample_splits(load_splits(cfg.data, cfg.train.seed)[0], cfg)


# ---------------------------------------------------------------- model
def encode(tokenizer, df: pd.DataFrame, max_length: int) -> tuple[list[list[int]], list[list[int]] | None]:
    """-> (input ids per row, token type ids per row or None)"""
    if df.empty:  # (a split with no rows: the tokenizer refuses an empty batch)
        return [], None
    pairs = df["text_pair"].tolist() if "text_pair" in df else None
    enc = tokenizer(df["text"].tolist(), pairs, truncation=True, max_length=max_length)
    return enc["input_ids"], enc.get("token_type_ids")


def make_batches(encoded, labels: np.ndarray | None, batch_size: int, pad_id: int, order=None) -> list[dict]:
    """Dynamic padding: each batch is padded to its own longest row. -> input_ids/attention_mask (B, T)."""
    ids, types = encoded
    order = np.arange(len(ids)) if order is None else order
    batches = []
    for s in range(0, len(order), batch_size):
        rows = order[s:s + batch_size]
        t = max(len(ids[i]) for i in rows)
        b = {"input_ids": torch.full((len(rows), t), pad_id, dtype=torch.long),
             "attention_mask": torch.zeros((len(rows), t), dtype=torch.long)}
        if types is not None:
            b["token_type_ids"] = torch.zeros((len(rows), t), dtype=torch.long)
        for j, i in enumerate(rows):
            n = len(ids[i])
            b["input_ids"][j, :n] = torch.tensor(ids[i])
            b["attention_mask"][j, :n] = 1
            if types is not None:
                b["token_type_ids"][j, :n] = torch.tensor(types[i])
        if labels is not None:
            y = np.asarray(labels)[rows]  # (B,) class ids, or (B, L) 0/1 for sets of labels
            b["labels"] = torch.as_tensor(y, dtype=torch.long if y.ndim == 1 else torch.float32)
        batches.append(b)
    return batches


def inference_batches(encoded, batch_size: int, pad_id: int) -> list[dict]:
    """make_batches for inference: the rows longest first, so each batch pads to rows of about its own length
    (as sentence-transformers' encode does), each batch's `rows` (B,) saying where its rows were; `_over_batches`
    puts the outputs back in the input's order. On 1,275 Rotten Tomatoes test reviews, batches of 64 in the given
    order padded to 1.94x the tokens of longest-first ones, and MiniLM's features took 1.99x as long in fp32
    (benchmarks/results/inference_order.md)."""
    ids, _ = encoded
    order = np.argsort([-len(x) for x in ids], kind="stable")
    batches = make_batches(encoded, None, batch_size, pad_id, order)
    for s, b in zip(range(0, len(order), batch_size), batches, strict=True):
        b["rows"] = torch.as_tensor(order[s:s + batch_size])
    return batches


def pooled(model, batch: dict, pooling: str) -> torch.Tensor:
    """Sentence features the head sees. -> (B, H)"""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if pooling == "cls":
        hidden = model.base_model(**inputs)
        return hidden.pooler_output if getattr(hidden, "pooler_output", None) is not None \
            else hidden.last_hidden_state[:, 0]
    if pooling == "cls_token":  # what a [CLS]-pooled sentence encoder (BGE) was trained to embed with
        return model.base_model(**inputs).last_hidden_state[:, 0]
    if pooling == "mean":
        hidden = model.base_model(**inputs).last_hidden_state  # (B, T, H)
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
    raise WarmstartError(f"train.pooling: unknown pooling '{pooling}'; use cls, cls_token or mean")


def logits_of(model, batch: dict, pooling: str) -> torch.Tensor:
    """(B, C) class scores; pooling `cls` is exactly `AutoModelForSequenceClassification.forward`."""
    if pooling == "cls":
        return model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    features = pooled(model, batch, pooling)
    head = getattr(model.classifier, "original_module", model.classifier)  # under LoRA, PEFT wraps the head
    if isinstance(head, torch.nn.Linear):  # BERT: dropout + linear
        return model.classifier(model.dropout(features))
    return model.classifier(features.unsqueeze(1))  # ELECTRA-style head: reads position 0, has its own dropout


@torch.no_grad()
def _over_batches(fn, model, batches: list[dict], bf16: bool) -> np.ndarray:
    """Apply `fn(batch) -> (B, D)` to every batch in eval mode, in the rows' own order (`inference_batches`'
    `rows`: where each batch's rows go). -> (N, D)"""
    require_placed(model, "predict")
    model.eval()
    out, rows = [], []
    for b in batches:
        if "rows" in b:
            rows.append(b["rows"])
            b = {k: v for k, v in b.items() if k != "rows"}
        with autocast(bf16):
            out.append(fn(to_device(b)).float())
    flat = torch.cat(out).cpu()
    if rows:
        flat = torch.empty_like(flat).index_copy_(0, torch.cat(rows), flat)
    return flat.numpy()


def predict_batches(model, batches: list[dict], pooling: str, bf16: bool, multi_label: bool = False) -> np.ndarray:
    """-> (N, C) class probabilities (softmax), or, `multi_label`, each label's own (sigmoid)."""
    def probs(b: dict) -> torch.Tensor:
        logits = logits_of(model, b, pooling).float()
        return torch.sigmoid(logits) if multi_label else F.softmax(logits, -1)

    return _over_batches(probs, model, batches, bf16)


def features(model, batches: list[dict], pooling: str, bf16: bool) -> np.ndarray:
    """-> (N, H) pooled sentence features."""
    return _over_batches(lambda b: pooled(model, b, pooling), model, batches, bf16)


def train_full(model, cfg: FinetuneConfig, train_enc, y_train, val_b, y_val, pad_id: int, bf16: bool,
               start_accuracy: float = float("-inf"), steps: int | None = None, phase: str = "select") -> dict:
    """Fine-tune with the strategy, early stopping on validation accuracy (LP-FT's probed head stays the best
    candidate until fine-tuning beats it); without validation (`val_b` None, the refit), `steps` steps.
    `train.class_balance`: weighted, the cross-entropy weighs each class by N / (C * n_c); adjusted, the loss
    reads logits + log(class share) (Menon et al., 2021: the model's own logits then answer as if the classes were
    equally common, and LP-FT's adjusted probe head starts it exactly there); either way balanced accuracy chooses."""
    tc, balance = cfg.train, cfg.train.class_balance
    k = model.config.num_labels
    weight = to_device(torch.tensor(class_weights(y_train, k), dtype=torch.float32)) if balance == "weighted" else None
    shares = np.bincount(y_train, minlength=k) / len(y_train)  # a class absent here is left as it is (0)
    prior = to_device(torch.tensor(np.where(shares > 0, np.log(np.maximum(shares, 1e-12)), 0.0), dtype=torch.float32)) \
        if balance == "adjusted" else None

    def step_fn(batch):
        logits = logits_of(model, batch, tc.pooling)
        loss = F.cross_entropy(logits.float() + (prior if prior is not None else 0), batch["labels"], weight=weight)
        return {"loss": loss, "acc": (logits.argmax(-1) == batch["labels"]).float().mean()}

    def evaluate() -> float:
        return chooser(tc)(y_val, predict_batches(model, val_b, tc.pooling, bf16).argmax(1))

    batches = shuffled_epochs(len(y_train), tc.batch_size, tc.seed,
                              lambda rows: make_batches(train_enc, y_train, len(rows), pad_id, rows)[0])
    return fit(model, tc, Path(cfg.output_dir), batches, step_fn, evaluate if val_b is not None else None,
               len(y_train), model.classifier, bf16, "val_accuracy", start_accuracy, steps=steps, phase=phase,
               floor=1 / len(np.unique(y_val)) if balance != "none" and y_val is not None else majority_share(y_val))


def chooser(tc):
    """The score that chooses (C, epochs, the refit's check): accuracy, or balanced accuracy under a
    `train.class_balance`. (y_true, y_pred) -> float"""
    return accuracy if tc.class_balance == "none" else balanced_accuracy


def train_setfit(model, cfg: FinetuneConfig, train_enc, y_train: np.ndarray, pad_id: int, bf16: bool,
                 phase: str) -> dict:
    """SetFit's body training on any encoder (Tunstall et al., 2022): contrastive pairs of the labelled rows
    (objectives/setfit.py), their embeddings (`train.pooling`: the body's own, mean for a plain encoder)
    regressed to cos 1 (same class) / 0, every encoder weight training, through the one loop (resumable,
    budgeted, bf16 where measured faster); the caller then fits the
    head on the trained features. The setfit library's trainer is not used here: it neither resumes nor runs in
    bf16 on a CPU, and it draws its pairs with a fixed seed. -> fit's result + the pairs' count"""
    import dataclasses

    from warmstart.objectives.setfit import contrastive_pairs, cosine_similarity_loss

    s = cfg.train.setfit
    pairs = contrastive_pairs(y_train, s.num_iterations, cfg.train.seed)  # (P, 3): i, j, same class?

    def make(rows: np.ndarray) -> dict:  # one padded batch: the pairs' first sentences, then their second ones
        p = pairs[rows]
        batch = make_batches(train_enc, None, 2 * len(p), pad_id, np.concatenate([p[:, 0], p[:, 1]]))[0]
        return {**batch, "labels": torch.as_tensor(p[:, 2], dtype=torch.float32)}

    def loss_fn(batch: dict) -> dict:
        u, v = pooled(model, batch, cfg.train.pooling).chunk(2)  # (B, H) each: the body's own embedding
        return {"loss": cosine_similarity_loss(u, v, batch["labels"])}

    per_epoch = max(1, -(-len(pairs) // s.batch_size))
    steps = min(per_epoch * s.epochs, s.max_steps or per_epoch * s.epochs)
    tc = dataclasses.replace(cfg.train, lr=s.lr, head_lr=s.lr, batch_size=s.batch_size, eval_every=min(20, steps))
    batches = shuffled_epochs(len(pairs), s.batch_size, cfg.train.seed, make)
    out = fit(model, tc, Path(cfg.output_dir), batches, loss_fn, None, len(pairs), model.classifier, bf16,
              "val_accuracy", steps_per_epoch=per_epoch, steps=steps, phase=phase)
    return {**out, "setfit_pairs": int(min(len(pairs) * s.epochs, steps * s.batch_size))}


def run_finetune(cfg: FinetuneConfig) -> dict:
    """Fine-tune, evaluate on the test split, write metrics.json / predictions.csv / the checkpoint."""
    from transformers import AutoModelForSequenceClassification

    resolve_pooling(cfg)  # run_task has, where the run came through it
    tc = cfg.train
    t0, bf16, tokenizer = start_run(cfg)
    splits, names = load_splits(cfg.data, tc.seed)
    sample = sample_splits(splits, cfg)
    id2label = {i: str(n) for i, n in enumerate(names)}
    pad = tokenizer.pad_token_id
    Path(cfg.output_dir).parent.mkdir(parents=True, exist_ok=True)

    def train_once(train: pd.DataFrame, val: pd.DataFrame | None, steps: int | None, phase: str):
        """A fresh model fitted on `train`, choosing on `val` (or, without, for `steps` steps)."""
        model = build_model(AutoModelForSequenceClassification, cfg, num_labels=len(names), id2label=id2label,
                            label2id={v: k for k, v in id2label.items()})
        enc, y_train = encode(tokenizer, train, tc.max_length), train["label"].to_numpy()
        val_b = inference_batches(encode(tokenizer, val, tc.max_length), 64, pad) if val is not None else None
        y_val = val["label"].to_numpy() if val is not None else None

        def probe() -> dict:  # logistic regression on frozen features; C on validation, or cross-validated
            x = features(model, inference_batches(enc, 64, pad), tc.pooling, bf16)
            if val is None:
                return fit_logistic_cv(x, y_train, tc.seed, groups=row_groups(train), balance=tc.class_balance)
            return fit_logistic(x, y_train, features(model, val_b, tc.pooling, bf16), y_val, tc.seed,
                                balance=tc.class_balance)

        def finetune(start: float) -> dict:
            if tc.strategy == "setfit":
                return train_setfit(model, cfg, enc, y_train, pad, bf16, phase)
            return train_full(model, cfg, enc, y_train, val_b, y_val, pad, bf16, start, steps, phase)

        return model, probe_then_finetune(tc.strategy, model.classifier, probe, finetune, steps)

    def score(model, rows: pd.DataFrame) -> float:  # the refit's check (tasks/protocol.py)
        batches = inference_batches(encode(tokenizer, rows, tc.max_length), 64, pad)
        return chooser(tc)(rows["label"].to_numpy(), predict_batches(model, batches, tc.pooling, bf16).argmax(1))

    model, fitted = select_then_refit(sample, tc.strategy, train_once, Path(cfg.output_dir), score,
                                      early_stopping=tc.patience > 0)
    test = sample.test
    tested, files = {}, {}
    if len(test):
        probs = predict_batches(model, inference_batches(encode(tokenizer, test, tc.max_length), 64, pad), tc.pooling,
                                bf16)
        pred = probs.argmax(1)
        tested = class_scores(sample.labelled, test, pred, caller_scores())
        predictions = pd.DataFrame({"text": test["text"], "label": [names[i] for i in test["label"]],
                                    "prediction": [names[i] for i in pred],
                                    **{f"prob_{n}": probs[:, i] for i, n in enumerate(names)}})
        files["predictions.csv"] = lambda p: predictions.to_csv(p, index=False)
    metrics = scored({**tested, "test_size": len(test), "strategy": tc.strategy, "pooling": tc.pooling, "init": cfg.init, "seed": tc.seed, **fitted,
                      **measure_forgetting(cfg, model, tokenizer, bf16), "seconds": elapsed(t0)}, len(test) > 0)
    if tc.save_model:  # how to use the folder, with transformers alone too (the pooled head is not its forward)
        card = finetune_card(metrics, names, str(cfg.init), tc.pooling, tc.max_length, bool(cfg.data.text_pair_column))
        files["README.md"] = lambda p: p.write_text(card, encoding="utf-8")
    write_run(cfg, model, tokenizer, metrics, files)
    return metrics


def predict_file(folder: Path, cfg: FinetuneConfig, request) -> pd.DataFrame:
    """`warmstart predict` for a sequence classifier: each row's class and class probabilities, beside the
    row's own columns (ids stay with their rows); for a multi-label one (`problem_type`, as HF's pipeline reads
    it), each row's list of labels at probability 0.5 or above. A blank text gets no prediction, not a guess."""
    from transformers import AutoModelForSequenceClassification

    from warmstart.engine.runtime import use_bf16

    text_column = request.text_column or cfg.data.text_column
    pair_column = request.text_pair_column or cfg.data.text_pair_column
    rows = read_inputs(request.src, text_column, pair_column)
    data = pd.DataFrame({"text": rows[text_column].fillna("").astype(str)})
    if pair_column:
        data["text_pair"] = rows[pair_column].fillna("").astype(str)
    blank = (data["text"].str.strip() == "").to_numpy()
    tokenizer = request.tokenizer(folder)
    model = request.load(AutoModelForSequenceClassification, folder, attn_implementation="sdpa")
    names = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
    multi = model.config.problem_type == "multi_label_classification"
    bf16, done = use_bf16(cfg.train.precision), request.progress(len(data))
    pooling = chosen_pooling(cfg.train.pooling, str(folder), cfg.train.strategy)  # a run's config names it; auto: resolved here
    probs = np.full((len(data), len(names)), np.nan)
    # a text (pair) the file repeats is predicted once, its copies given the same row: a retweet-heavy file costs
    # its distinct texts; every row keeps its place
    codes = pd.factorize(data["text"] + ("\x1f" + data["text_pair"] if pair_column else ""))[0]
    first = np.unique(codes, return_index=True)[1]
    todo = first[~blank[first]]

    def chunk(start: int, stop: int) -> np.ndarray:  # tokenised and predicted a chunk at a time (kept: resumable)
        part = todo[start:stop]
        batches = inference_batches(encode(tokenizer, data.iloc[part], cfg.train.max_length), request.batch_size,
                                    tokenizer.pad_token_id)
        out = predict_batches(model, batches, pooling, bf16, multi)
        done(len(part))
        return out

    if len(todo):
        probs[todo] = np.asarray(request.chunks(len(todo), PREDICT_CHUNK, chunk, done), dtype=float)
        probs = probs[first[codes]]
        done(int((~blank).sum()) - len(todo))  # the copies
    if blank.any():
        print(f"warmstart predict: {int(blank.sum())} blank rows left without a prediction")
    out = rows.rename(columns={c: f"input_{c}" for c in rows.columns if c == "prediction" or str(c).startswith("prob_")})
    form = getattr(model.config, "label_form", "sets")  # trained on 0/1 vectors: predicts them
    out["prediction"] = [None if b else written(p, names, form) if multi else names[p.argmax()]
                         for b, p in zip(blank, np.nan_to_num(probs), strict=True)]
    for i, n in enumerate(names):
        out[f"prob_{n}"] = probs[:, i].round(6)
    return out
