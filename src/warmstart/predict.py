"""`warmstart predict CHECKPOINT --input FILE`: batch inference with any fine-tuned checkpoint.

The checkpoint's `warmstart_config.yaml` says which task it was trained for and how (pooling, max length,
columns, summary budget), so predictions match the fine-tuning run's; a plain HF sequence-classification
folder works too (pooling `cls`), and image classifiers are recognised by their preprocessor config. Output
is CSV or JSONL by the output's suffix, written to a temporary file and renamed into place.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from warmstart.config import CONFIG_FILENAME, FinetuneConfig, ImageFinetuneConfig, load_config
from warmstart.data.sources import TABLE_SUFFIXES, read_table, read_text_file
from warmstart.data.text import load_tokenizer
from warmstart.engine.checkpoint import require_weights
from warmstart.engine.runtime import device, set_threads, use_bf16
from warmstart.errors import WarmstartError
from warmstart.tasks.classification import encode, make_batches, predict_batches

CHUNK_ROWS = 2048  # rows tokenised and predicted at a time: memory stays flat on large inputs


def read_inputs(path: Path, text_column: str, text_pair_column: str | None) -> pd.DataFrame:
    """A table (CSV/TSV/JSONL/JSON) with the text column(s), or a text file with one input per line."""
    if not path.is_file():
        raise WarmstartError(f"{path}: input file not found")
    if path.suffix.lower() in TABLE_SUFFIXES:
        df = read_table(str(path))
        for col in filter(None, (text_column, text_pair_column)):
            if col not in df.columns:
                raise WarmstartError(f"{path}: no column '{col}' (columns: {', '.join(map(str, df.columns))}); "
                                     "pass --text-column")
        out = pd.DataFrame({"text": df[text_column].fillna("").astype(str)})
        if text_pair_column:
            out["text_pair"] = df[text_pair_column].fillna("").astype(str)
        return out
    lines = [line for line in read_text_file(path).splitlines() if line.strip()]
    return pd.DataFrame({"text": lines})


def run_predict(checkpoint: str, input_path: str, output: str | None = None, text_column: str | None = None,
                text_pair_column: str | None = None, batch_size: int = 64) -> Path:
    """Predict every row of `input_path`; returns the output file (default `<input>.predictions.csv`)."""
    from transformers import AutoModelForSequenceClassification

    folder = require_weights(checkpoint)
    if (folder / "preprocessor_config.json").is_file() and not (folder / "tokenizer.json").is_file():
        return predict_images(folder, input_path, output, batch_size)
    saved = folder / CONFIG_FILENAME
    cfg = load_config(FinetuneConfig, saved) if saved.is_file() else FinetuneConfig()
    src = Path(input_path)
    out = _output_path(src, output)
    if cfg.task in TASK_PREDICTORS:
        return _predict_task(folder, cfg, src, out, text_column, batch_size)
    data = read_inputs(src, text_column or cfg.data.text_column, text_pair_column or cfg.data.text_pair_column)
    if data.empty:
        raise WarmstartError(f"{src}: no inputs to predict")
    set_threads(None)
    bf16 = use_bf16(cfg.train.precision)
    tokenizer = load_tokenizer(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(folder, attn_implementation="sdpa").to(device())
    names = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]

    t0 = time.perf_counter()
    probs = []
    with tqdm(total=len(data), desc="predict", unit=" rows", mininterval=0.5 if os.isatty(2) else 10) as bar:
        for start in range(0, len(data), CHUNK_ROWS):
            part = data.iloc[start:start + CHUNK_ROWS]
            batches = make_batches(encode(tokenizer, part, cfg.train.max_length), None, batch_size,
                                   tokenizer.pad_token_id)
            probs.append(predict_batches(model, batches, cfg.train.pooling, bf16))
            bar.update(len(part))
    p = np.concatenate(probs)
    result = data.assign(prediction=[names[i] for i in p.argmax(1)],
                         **{f"prob_{n}": p[:, i].round(6) for i, n in enumerate(names)})
    return _write(result, out, t0)


# task -> module with `predict_file(folder, cfg, input, text_column, batch_size, progress) -> DataFrame`
TASK_PREDICTORS = {"token_classification": "warmstart.tasks.token_classification",
                   "summarization": "warmstart.tasks.summarization",
                   "response_selection": "warmstart.tasks.response_selection"}


def _predict_task(folder: Path, cfg: FinetuneConfig, src: Path, out: Path, text_column: str | None,
                  batch_size: int) -> Path:
    import importlib

    if not src.is_file():
        raise WarmstartError(f"{src}: input file not found")
    set_threads(None)
    t0 = time.perf_counter()
    bars = []

    def progress(total: int):
        bars.append(tqdm(total=total, desc="predict", unit=" rows", mininterval=0.5 if os.isatty(2) else 10))
        return bars[-1].update

    try:
        result = importlib.import_module(TASK_PREDICTORS[cfg.task]).predict_file(folder, cfg, src, text_column,
                                                                                  batch_size, progress)
    finally:
        for bar in bars:
            bar.close()
    if result.empty:
        raise WarmstartError(f"{src}: no inputs to predict")
    if out.suffix.lower() == ".csv":  # list cells (tokens, tags, candidates, scores) as JSON text
        result = result.apply(lambda col: col.map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v))
    return _write(result, out, t0)


def _output_path(src: Path, output: str | None) -> Path:
    out = Path(output) if output else src.with_name(src.name + ".predictions.csv")
    if out.suffix.lower() not in (".csv", ".jsonl"):
        raise WarmstartError(f"{out}: output must end in .csv or .jsonl")
    return out


def _write(result: pd.DataFrame, out: Path, t0: float) -> Path:
    """CSV or JSONL by suffix, through a temporary file renamed into place; prints rows/s."""
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    if out.suffix.lower() == ".jsonl":
        result.to_json(tmp, orient="records", lines=True, force_ascii=False)
    else:
        result.to_csv(tmp, index=False)
    os.replace(tmp, out)
    seconds = time.perf_counter() - t0
    print(f"warmstart predict: {len(result):,} rows in {seconds:.1f} s ({len(result) / max(seconds, 1e-9):,.0f} "
          f"rows/s) -> {out}")
    return out


def predict_images(folder: Path, input_path: str, output: str | None, batch_size: int) -> Path:
    """An image classifier (AutoModelForImageClassification + preprocessor_config.json) over an image source:
    a folder of images, IDX, .npy/.npz or an HF dataset. Rows: the image's file (or source[index])."""
    import torch
    from transformers import AutoModelForImageClassification

    from warmstart.data.images import load_images
    from warmstart.models.images import map_images, read_preprocessor

    out = _output_path(Path(input_path.rstrip("/")), output)
    size, mean, std = read_preprocessor(folder)
    images = load_images([input_path])
    saved = folder / CONFIG_FILENAME
    precision = load_config(ImageFinetuneConfig, saved).train.precision if saved.is_file() else "auto"
    set_threads(None)
    model = AutoModelForImageClassification.from_pretrained(folder).to(device()).eval()
    names = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
    t0 = time.perf_counter()
    with tqdm(total=len(images), desc="predict", unit=" images", mininterval=0.5 if os.isatty(2) else 10) as bar:
        logits = map_images(lambda x: model(pixel_values=x).logits, model, images.images, size, mean, std,
                            use_bf16(precision), batch_size, progress=bar.update)
    p = torch.softmax(logits, -1).numpy()
    result = pd.DataFrame({"image": images.paths, "prediction": [names[i] for i in p.argmax(1)],
                           **{f"prob_{n}": p[:, i].round(6) for i, n in enumerate(names)}})
    return _write(result, out, t0)
