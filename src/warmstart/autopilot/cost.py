"""What a fit will cost, measured before it runs, so that `warmstart auto` runs only what fits its budget.

A first version estimated training time from the encoder's inference rate; on chatterbot (texts with a long tail:
one long row pads a whole batch) a SetFit fold took 234 s against 134 s estimated, and on Rotten Tomatoes 25 s
against 33 s: inference rate does not carry over to training at other lengths. So each candidate's training
step is timed here on its own texts: SetFit's step (32 random labelled texts, i.e. 16 pairs, padded to the
expected longest of a random batch, forward, mean pooling, backward, an AdamW step), after one warm-up step. A
fit is then steps x that.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

# A strategy's cost in SetFit steps of the same encoder, per fit on n labels. SetFit: 2 * 20 pair iterations per
# label, 16 pairs (32 texts) a step (objectives/setfit.py). The setfit library makes as many pairs, but runs in
# fp32 at the body's own max_seq_length (256 for MiniLM) whatever auto chose, so its steps are timed apart
# (library_step_seconds): on a CPU where bf16 pays (an AMD EPYC with AVX512-BF16) a library fold took 2.9x
# warmstart's SetFit fold, where a fixed ratio measured on an AMX Xeon said 1.75. Timed as the library runs it
# (two columns of 16 encoded apart, its attention, dropout and clipping), the library's step was 0.91-1.27x the
# timed one on RT, WordNet and chatterbot (median 1.05; timed as one pass of 32 texts, 0.72-1.09x, median 0.89),
# and its whole fit 0.96-1.07x steps x the timed step (benchmarks/results/library_step.md). 1.1 leaves a margin.
SETFIT_STEPS_PER_LABEL = 2 * 20 / 16
SETFIT_TEXTS_PER_STEP = 2 * 16
RELATIVE = {"setfit": 1.0, "setfit_library": 1.1}
STARTUP_S = 5.0  # loading the encoder, tokenising, writing the run folder
FULL_EPOCHS = 10  # auto's full fine-tuning (sets of labels only): configs/finetune/multilabel.yaml's epochs


def choose_max_length(lengths: list[int], floor: int = 64, cap: int = 256) -> int:
    """Tokens kept per text: the 90th percentile of the labelled texts' lengths (a multiple of 8), at least
    `floor`, at most `cap`. A long tail (a few texts several times the median) would otherwise pad every batch
    it falls in: on chatterbot, 128 tokens cost SetFit twice the time of 64 for no gain on test
    (benchmarks/results/auto.md)."""
    p90 = float(np.percentile(lengths, 90)) if len(lengths) else floor
    return int(min(cap, max(floor, 8 * math.ceil(p90 / 8))))


def padded_width(lengths: list[int], batch: int, seed: int, draws: int = 2000) -> int:
    """The expected padded length of a random batch of `batch` texts (each batch is padded to its longest row):
    the mean, over `draws` drawn batches, of their longest length."""
    rows = np.random.default_rng(seed).integers(0, len(lengths), (draws, batch))
    return max(1, int(round(float(np.asarray(lengths)[rows].max(axis=1).mean()))))


def step_seconds(folder: str, texts: list[str], max_length: int, bf16: bool, seed: int, batch: int = 32,
                 repeats: int = 3, library: bool = False, sides: int = 1) -> float:
    """Seconds of one SetFit training step of the encoder in `folder` on `batch` random texts of `texts` padded to
    the expected padded length of a random batch (the mean of `repeats` steps after a warm-up). `library`: the
    model as code outside warmstart runs it, with torch's dropout kernel and transformers' own attention rather
    than what `place` and `use_attention` give it (engine/dropout.py, engine/attention.py). `sides`:
    the batch's texts encoded in that many forward passes, each padded to its own expected longest
    (sentence-transformers encodes a pair batch's two columns apart)."""
    import pandas as pd
    import torch.nn.functional as F
    from transformers import AutoModel

    from warmstart.data.text import load_tokenizer
    from warmstart.engine.attention import use_attention
    from warmstart.engine.dropout import use_torch_dropout
    from warmstart.engine.loop import make_optimizer
    from warmstart.engine.runtime import autocast, place, to_device
    from warmstart.models.common import load_pretrained
    from warmstart.tasks.classification import encode, make_batches

    tokenizer = load_tokenizer(folder)
    model = place(load_pretrained(AutoModel, folder, quiet=True)).train()
    if library:
        use_torch_dropout(model)
    else:
        use_attention(model)  # as fine-tuning computes (its first timing falls in the warm-up step)
    # the optimizer fits run with (fused AdamW; the library's transformers Trainer defaults to it too): torch's
    # default AdamW is several times slower on a CPU (benchmarks/cpu_profile.py adamw) and inflated the timed step
    optimizer = make_optimizer(model, 1e-9, 0.01)
    ids, types = encode(tokenizer, pd.DataFrame({"text": texts}), max_length)
    # A step's cost follows its batch's longest row, and 3 random batches sample that poorly where lengths have
    # a long tail: on chatterbot's labels three of them timed the library's step at 0.87-1.83x the mean of 24
    # random batches. Every timed batch is padded to the expected width instead: 1.04-1.15x (auto_step.py).
    side = batch // sides
    width = padded_width([len(i) for i in ids], side, seed)
    rng = np.random.default_rng(seed)
    times = []
    for r in range(repeats + 1):
        batches = []
        for _ in range(sides):
            rows = rng.integers(0, len(ids), side)
            cut = ([ids[i][:width] for i in rows], [types[i][:width] for i in rows] if types is not None else None)
            b = make_batches(cut, None, side, tokenizer.pad_token_id)[0]
            batches.append(to_device({k: F.pad(v, (0, width - v.shape[1]),
                                               value=tokenizer.pad_token_id if k == "input_ids" else 0)
                                      for k, v in b.items()}))
        t0 = time.perf_counter()
        loss = 0.0
        for b in batches:
            with autocast(bf16):
                hidden = model(**b).last_hidden_state
            mask = b["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            loss = loss + pooled.float().pow(2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # both clip: the loop's and transformers' default
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if r:
            times.append(time.perf_counter() - t0)
    return float(np.mean(times))


def library_step_seconds(folder: str, texts: list[str], seed: int) -> float:
    """Seconds of one step of the setfit library's SetFit on the body in `folder`: fp32, at the body's
    max_seq_length (sentence_bert_config.json; 512 without one), with transformers' attention and torch's dropout,
    each column of its 16 pairs encoded apart, as the library trains it (sentence-transformers pads each column to
    its own longest; the library's step was 0.72-1.09x a step timed as one pass of 32 texts, 0.91-1.27x this one:
    benchmarks/results/library_step.md)."""
    import json
    from pathlib import Path

    config = Path(folder) / "sentence_bert_config.json"
    max_length = 512
    if config.is_file():
        with open(config, encoding="utf-8") as f:
            max_length = int(json.load(f).get("max_seq_length") or 512)
    return step_seconds(folder, texts, max_length, False, seed, library=True, sides=2)


def lp_ft_setfit_steps(n_labels: float, epochs: int | None = None) -> float:
    """LP-FT's fit on n labels in SetFit steps: fine-tuning's fixed budget (train.max_epochs over the n in batches
    of train.batch_size: text fine-tuning holds nothing out by default) counted in texts through the body, against
    SetFit's 32 a step; the probe before it (one forward pass) is left out. A constant measured under the old early
    stopping (1.55 SetFit fits) overestimated these fits 6-8x and kept LP-FT out of budgets it fitted; measured
    fits take 0.49-0.96 of this count (median 0.83, as SetFit's fits take 0.85 of theirs: both err on the side of
    the budget; benchmarks/results/auto_cost.md). `epochs`: another train.max_epochs (auto's `full` for sets of
    labels runs 10)."""
    from warmstart.config import FinetuneTrainConfig

    train = FinetuneTrainConfig()
    texts = train.max_steps * train.batch_size if train.max_steps else (epochs or train.max_epochs) * n_labels
    return texts / SETFIT_TEXTS_PER_STEP


def fit_seconds(strategy: str, n_labels: float, step_s: float) -> float:
    """Seconds one fit of `strategy` on n labels should take, from the measured SetFit step."""
    steps = (lp_ft_setfit_steps(n_labels) if strategy == "lp_ft" else
             lp_ft_setfit_steps(n_labels, FULL_EPOCHS) if strategy == "full" else
             RELATIVE[strategy] * SETFIT_STEPS_PER_LABEL * n_labels)
    return STARTUP_S + steps * step_s
