"""`warmstart rank --task CONFIG --candidates DIR...`: score candidate checkpoints for a task from frozen
features, before paying for fine-tuning any of them.

The task's recipe gives the labelled data (its training sample, `data.labels` or `data.labels_per_class`, and
its validation split) and, for text, the maximum length. Each candidate (any HF encoder folder: text with a
tokenizer, or an image encoder with a preprocessor config) encodes both once (mean-pooled last hidden states;
pooled image features); then LogME and H-score on the training sample, and the validation accuracy of a
weighted kNN and of a logistic-regression probe fitted on the training sample. LogME is the default ranking
score (You et al., 2021: no hyper-parameter, no held-out split needed).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from warmstart.checkpoint import require_weights
from warmstart.config import FinetuneConfig, is_image_recipe, load_config
from warmstart.errors import WarmstartError
from warmstart.image_config import ImageFinetuneConfig
from warmstart.probe import fit_logistic, knn_accuracy
from warmstart.train import device, set_threads, use_bf16
from warmstart.transferability import hscore, logme

SCORES = ("logme", "hscore", "knn_accuracy", "probe_accuracy")
DEFAULT_SCORE = "logme"


def _text_data(cfg: FinetuneConfig) -> tuple[list[pd.DataFrame], list[np.ndarray]]:
    from warmstart.tasks.classification import load_splits, subsample

    if cfg.task != "classification":
        raise WarmstartError(f"rank: task '{cfg.task}' is not supported yet; use a classification recipe")
    splits, _ = load_splits(cfg.data, cfg.train.seed)
    train = subsample(splits["train"], cfg.data.labels, cfg.train.seed)
    val = subsample(splits["validation"], cfg.data.validation_labels, cfg.train.seed)
    return [train, val], [train["label"].to_numpy(), val["label"].to_numpy()]


def _text_features(folder: Path, tables: list[pd.DataFrame], max_length: int, bf16: bool) -> list[np.ndarray]:
    """Mean-pooled last hidden states, exactly as fine-tuning's `pooling: mean` sees them."""
    from transformers import AutoModel

    from warmstart.data.text import load_tokenizer
    from warmstart.tasks.classification import encode, features, make_batches

    tokenizer = load_tokenizer(str(folder))
    model = AutoModel.from_pretrained(folder).to(device())
    return [features(model, make_batches(encode(tokenizer, t, max_length), None, 64, tokenizer.pad_token_id), "mean", bf16)
            for t in tables]


def _image_data(cfg: ImageFinetuneConfig):
    from warmstart.data.images import load_images
    from warmstart.tasks.image_classification import per_class_split

    dc = cfg.data
    data = load_images(dc.sources, dc.load_size, dc.strict, dc.image_column, dc.label_column, dc.split)
    if data.labels is None:
        raise WarmstartError(f"{dc.sources[0]}: no labels; ranking needs a labelled sample")
    tr, va = per_class_split(data.labels, dc.labels_per_class, dc.validation_per_class, cfg.train.seed)
    train, val = data.subset(tr), data.subset(va)
    return [train.images, val.images], [train.labels.numpy(), val.labels.numpy()]


def _image_features(folder: Path, images: list[torch.Tensor], bf16: bool) -> list[np.ndarray]:
    from transformers import AutoModel

    from warmstart.data.vision import channel_stats
    from warmstart.pretrain_images import encode_images, read_preprocessor

    model = AutoModel.from_pretrained(folder).to(device()).eval()
    known = read_preprocessor(folder)
    size, mean, std = known if known else (32, *channel_stats(images[0]))
    return [encode_images(model, x, size, mean, std, bf16).numpy() for x in images]


def score_features(train: np.ndarray, y_train: np.ndarray, val: np.ndarray, y_val: np.ndarray, seed: int) -> dict:
    """Every score of one candidate's features. train/val: (N, D) float."""
    probe = fit_logistic(train, y_train, val, y_val, seed)
    t = [torch.from_numpy(np.array(a)) for a in (train, y_train, val, y_val)]  # copies: inputs may be read-only
    knn = knn_accuracy(*t, k=min(20, len(train)))
    return {"logme": round(logme(train, y_train), 4), "hscore": round(hscore(train, y_train), 4),
            "knn_accuracy": round(knn, 4), "probe_accuracy": round(float(probe["val_accuracy"]), 4)}


def run_rank(task_config: str, candidates: list[str], output: str | None = None, overrides: list[str] = ()) -> pd.DataFrame:
    """Score every candidate for the task; print the table (best first by LogME) and write it as CSV."""
    if not candidates:
        raise WarmstartError("rank: give at least one --candidates folder")
    set_threads(None)
    image = is_image_recipe(task_config, list(overrides))
    cfg = load_config(ImageFinetuneConfig if image else FinetuneConfig, task_config, list(overrides))
    bf16 = use_bf16(cfg.train.precision)
    t0 = time.perf_counter()
    inputs, labels = _image_data(cfg) if image else _text_data(cfg)
    data_seconds = time.perf_counter() - t0
    rows = []
    for candidate in candidates:
        folder = require_weights(candidate, cfg.trust_pickled_weights)
        t1 = time.perf_counter()
        feats = _image_features(folder, inputs, bf16) if image else _text_features(folder, inputs, cfg.train.max_length, bf16)
        rows.append({"candidate": str(candidate), **score_features(feats[0], labels[0], feats[1], labels[1], cfg.train.seed),
                     "feature_dim": feats[0].shape[1], "seconds": round(time.perf_counter() - t1, 1)})
        print(f"rank: {candidate}: " + ", ".join(f"{k} {rows[-1][k]}" for k in SCORES) + f" ({rows[-1]['seconds']} s)")
    table = pd.DataFrame(rows).sort_values(DEFAULT_SCORE, ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    out = Path(output) if output else Path("rank.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(f"warmstart rank: {len(table)} candidates on {len(labels[0])} labelled examples (data {data_seconds:.1f} s), "
          f"ranked by {DEFAULT_SCORE} -> {out}")
    print(table.to_string(index=False))
    return table
