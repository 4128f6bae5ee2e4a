"""`warmstart rank --task CONFIG --candidates DIR...`: score candidate checkpoints for a task from frozen
features, before paying for fine-tuning any of them.

The task's recipe gives the labelled data (its training sample, `data.labels` or `data.labels_per_class`, and
its validation split) and, for text, the maximum length. Each candidate (any HF encoder folder: text with a
tokenizer, or an image encoder with a preprocessor config) encodes both once (mean-pooled last hidden states;
pooled image features; for token classification, the last hidden state of each word's first piece, one
example per word, as the tagging head sees it); then LogME and H-score, and the task's metric (accuracy; entity
F1 for BIO tagging) of a weighted kNN and of a logistic-regression probe. Under the honest protocol (no explicit
dev set) a classification task is scored over all of its N labels (kNN and probe out of fold: k-fold
cross-validation); with `data.validation_labels`, or for token tasks, on the held-out rows. The default order
and why: see DEFAULT_SCORE.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from warmstart.data.sample import copies_said, kfold, most_folds
from warmstart.engine import partial
from warmstart.engine.attention import use_attention
from warmstart.engine.checkpoint import require_weights
from warmstart.engine.outputs import file_hash, kind_of, recorded_inputs, replace_file
from warmstart.engine.runtime import place, require_placed, set_threads, use_bf16
from warmstart.errors import WarmstartError
from warmstart.models.common import load_pretrained, require_positions
from warmstart.models.probe import (
    accuracy,
    balanced_accuracy,
    fit_logistic,
    fit_logistic_cv,
    fit_one_vs_rest,
    knn_predict,
    knn_predict_sets,
    micro_f1,  # symmetric in its two arguments: a Metric as it is
)
from warmstart.select.transferability import hscore, logme

SCORES = ("logme", "hscore", "knn", "probe")  # knn, probe: the task's validation metric (see `metric` column)
# The default order: weighted kNN's validation metric. Measured by benchmarks/rank_validation.py (24 candidates,
# sentiment, NER, Fashion-MNIST, each fine-tuned over 3 seeds) it has the best mean Kendall tau (0.79; probe
# 0.64, H-score 0.45, LogME 0.35): it fits nothing, scores with the task's own metric (entity F1 for NER,
# where LogME and H-score see mostly 'O'), and holds up with few labels per dimension (100 images, 512
# features), where LogME ranked 1-minute SimCLR encoders first.
DEFAULT_SCORE = "knn"
# Sets of labels: the probe. kNN predicts a label where the neighbours having it hold half the weight, and a
# label on a few percent of the texts never does: on WNUT-16's entity kinds (200 tweets, 10 labels, 62% with none)
# MiniLM's kNN micro-F1 read 0.017 and a random-weight twin's 0.0 (ML-kNN, Zhang & Zhou 2007, was tried: 0.0 for
# both), where the probe (its decision offset chosen out of fold) read 0.359 against 0.194 and fine-tuning MiniLM
# scores 0.29 to 0.39 (against 0.0 from scratch). Two candidates order nothing conclusively; kNN ties at 0 order nothing at all.
DEFAULT_SCORE_SETS = "probe"


# three Cs a decade apart, not fine-tuning's eight: the probe is most of a candidate's scoring time on token
# tasks (one example per word), and ranking needs its order, not its last point of accuracy
RANK_PROBE_CS = (0.01, 0.1, 1.0)
Metric = Callable[[np.ndarray, np.ndarray], float]  # (true ids, predicted ids) on validation -> score


def _sentence_data(train, val) -> tuple[list, list[np.ndarray], Metric, str]:
    return [train, val], [train["label"].to_numpy(), val["label"].to_numpy()], accuracy, "accuracy"


def _label_set_data(train, val) -> tuple[list, list[np.ndarray], Metric, str]:
    """Multi-label: each text's set as a (N, L) 0/1 row, scored by micro-F1 as fine-tuning reports it."""
    from warmstart.tasks.multi_label import multi_hot

    width = 1 + max((max(s) for part in (train, val) for s in part["label"] if s), default=0)
    return [train, val], [multi_hot(train, width), multi_hot(val, width)], micro_f1, "micro_f1"


def _groups(inputs: list, kind: str) -> np.ndarray | None:
    """The copies of one text (or text pair) among the N pooled texts (labelled_table.row_groups); None for
    images."""
    from warmstart.tasks.labelled_table import row_groups

    return row_groups(pd.concat(inputs, ignore_index=True)) if kind in ("sentences", "label_sets") else None


def _encoder(folder: Path, trust_pickled: bool = False):
    """The candidate's encoder (a pretraining head in the checkpoint is left out: expected, not news)."""
    from transformers import AutoModel

    model = place(load_pretrained(AutoModel, folder, trust_pickled, quiet=True))
    use_attention(model)  # on a CPU, the faster attention kernel for each shape (engine/attention)
    return model


def _word_data(train, val, reading: str = "iob1") -> tuple[list[list[list[str]]], list[np.ndarray], Metric, str]:
    """The training sample's and validation split's sentences (word lists), one tag id per word (entity tags in
    the reading fine-tuning will learn, `train.entity_tags`: tasks/tag_schemes.learnt_tags; the probe's classes
    are the fine-tuned head's), and the task's metric over per-word
    predictions of the validation split: seqeval entity F1 for entity tags, as fine-tuning reports (token accuracy,
    dominated by 'O', barely separates candidates), token accuracy otherwise."""
    from warmstart.tasks.tag_schemes import decode, entity_scheme, learnt_tags, tagging_metrics

    scheme = entity_scheme({t for part in (train, val) for _, tags in part for t in tags})
    learnt = [[learnt_tags(tags, scheme, reading) for _, tags in part] for part in (train, val)]
    names = sorted({t for part in learnt for tags in part for t in tags})
    index = {t: i for i, t in enumerate(names)}
    starts = np.cumsum([0] + [len(tags) for _, tags in val])

    def entity_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:  # y_true: the validation split's, as below
        pred = [decode([names[i] for i in y_pred[a:b]], scheme) for a, b in zip(starts[:-1], starts[1:], strict=True)]
        return tagging_metrics([tags for _, tags in val], pred, scheme)["entity_f1"]

    return ([[w for w, _ in train], [w for w, _ in val]],
            [np.array([index[t] for tags in part for t in tags]) for part in learnt],
            entity_f1 if scheme else accuracy, "entity_f1" if scheme else "token_accuracy")


def _text_features(folder: Path, inputs: list, max_length: int, bf16: bool, token_level: bool,
                   trust_pickled: bool = False) -> list[np.ndarray]:
    """Sentence features as the folder embeds (its own pooling, models/sentence.own_pooling: mean-pooled last
    hidden states unless it is a [CLS]-pooled sentence encoder; exactly what fine-tuning with that
    `train.pooling` sees), or word features (N_words, H) for token tasks."""

    from warmstart.data.text import load_tokenizer
    from warmstart.models.sentence import own_pooling
    from warmstart.tasks.classification import encode, features, inference_batches

    tokenizer = load_tokenizer(str(folder))
    model = _encoder(folder, trust_pickled)
    if token_level:
        return [_word_features(model, tokenizer, sentences, max_length, bf16) for sentences in inputs]
    pooling = own_pooling(folder, "mean")
    return [features(model, inference_batches(encode(tokenizer, t, max_length), 64, tokenizer.pad_token_id), pooling,
                     bf16) for t in inputs]


def sentence_features(folder: str | Path, texts: list[str], max_length: int, bf16: bool) -> np.ndarray:
    """-> (N, H) the pooled last hidden states of `texts` under the encoder in `folder` (its own pooling, else
    mean): what `rank` scores and what a linear probe with that pooling is fitted on (warmstart auto computes
    each candidate's once)."""
    return _text_features(Path(folder), [pd.DataFrame({"text": list(texts)})], max_length, bf16, False)[0]


def _word_features(model, tokenizer, sentences: list[list[str]], max_length: int, bf16: bool) -> np.ndarray:
    """-> (N_words, H): the last hidden state at each word's first piece (a sentence beyond max_length in
    windows, as fine-tuning tags it); a word with no piece gets zeros."""
    from warmstart.tasks.token_classification import per_word

    require_placed(model, "rank")
    model.eval()
    out = []
    for hidden, kept in per_word(lambda b: model(**b).last_hidden_state, tokenizer, sentences, max_length, bf16):
        hidden[~kept] = 0.0
        out.append(hidden)
    return torch.cat(out).numpy()


def _image_data(train, val) -> tuple[list, list[np.ndarray], Metric, str]:
    return [train.images, val.images], [train.labels.numpy(), val.labels.numpy()], accuracy, "accuracy"


def _image_features(folder: Path, images: list[torch.Tensor], bf16: bool, trust_pickled: bool = False
                    ) -> list[np.ndarray]:

    from warmstart.data.vision import channel_stats
    from warmstart.models.images import encode_images, read_preprocessor

    model = _encoder(folder, trust_pickled).eval()
    known = read_preprocessor(folder)
    size, mean, std = known if known else (32, *channel_stats(images[0]))
    return [encode_images(model, x, size, mean, std, bf16).numpy() for x in images]


def score_features(train: np.ndarray, y_train: np.ndarray, val: np.ndarray, y_val: np.ndarray, seed: int,
                   metric: Metric = accuracy, scores: tuple[str, ...] = SCORES, balanced: bool = False) -> dict:
    """The requested scores of one candidate's features. train/val: (N, D) float; knn and probe score their
    validation predictions with `metric` (the probe's C is chosen by it too). y: (N,) class ids, or (N, L) 0/1
    sets of labels (kNN's label shares, a logistic regression per label). `balanced`: as score_cross_validated's."""
    sets = np.ndim(y_train) == 2

    def knn() -> float:
        t = [torch.from_numpy(np.array(a)) for a in (train, y_train, val)]  # copies: inputs may be read-only
        return float(metric(y_val, (knn_predict_sets(*t, k=min(20, len(train))) if sets else
                                    knn_predict(*t, k=min(20, len(train)), balanced=balanced)).numpy()))

    def probe() -> float:
        if sets:
            return fit_one_vs_rest(train, y_train, val, y_val, seed, cs=RANK_PROBE_CS)["val_score"]
        return fit_logistic(train, y_train, val, y_val, seed, cs=RANK_PROBE_CS, score=metric,
                            balance="adjusted" if balanced else "none")["val_score"]

    compute = {"logme": lambda: logme(train, y_train), "hscore": lambda: hscore(train, y_train), "knn": knn,
               "probe": probe}
    return {name: round(float(compute[name]()), 4) for name in scores}


def score_cross_validated(x: np.ndarray, y: np.ndarray, seed: int, scores: tuple[str, ...] = SCORES,
                          folds: int = 5, groups: np.ndarray | None = None, balanced: bool = False) -> dict | None:
    """The scores of one candidate's features over all N labels (x: (N, D), y: (N,) class ids), as the honest
    protocol has it: kNN's and the probe's accuracy out of fold (stratified k-fold, k = min(`folds`, the smallest
    class's count)); LogME and H-score on all N. With 16 labels a class, a 20% hold-out scores a candidate on 6
    to 10 examples; every one of the N scores here. None when a class has a single example (no fold possible).
    y (N, L) 0/1 sets of labels: micro-F1 out of plain k-fold (a set does not stratify). `groups`
    (data/sample.text_groups): a text's copies in one fold; kNN would otherwise find each held-out copy's twin.
    `balanced` (one label a text): kNN's votes (times each class's N / (C * n_c)) and the probe (logit-adjusted)
    weigh the classes alike and score balanced accuracy."""
    y = np.asarray(y)
    sets = y.ndim == 2
    k = most_folds(y, folds, groups)
    if k < 2:
        return None

    def knn() -> float:
        predicted = np.empty_like(y)
        for kept, held in kfold(y, k, seed, groups):
            t = [torch.from_numpy(np.array(a)) for a in (x[kept], y[kept], x[held])]
            predicted[held] = (knn_predict_sets(*t, k=min(20, len(kept))) if sets else
                               knn_predict(*t, k=min(20, len(kept)), balanced=balanced)).numpy()
        return micro_f1(y, predicted) if sets else (balanced_accuracy if balanced else accuracy)(y, predicted)

    def probe() -> float:
        if sets:
            return fit_one_vs_rest(x, y, None, None, seed, cs=RANK_PROBE_CS, folds=folds, groups=groups)["val_accuracy"]
        return fit_logistic_cv(x, y, seed, cs=RANK_PROBE_CS, folds=folds, groups=groups,
                               balance="adjusted" if balanced else "none")["val_accuracy"]

    compute = {"logme": lambda: logme(x, y), "hscore": lambda: hscore(x, y), "knn": knn, "probe": probe}
    return {name: round(float(compute[name]()), 4) for name in scores}


FEATURES = {"sentences": _sentence_data, "label_sets": _label_set_data, "words": _word_data, "images": _image_data}


def rank_candidates(cfg, candidates: list[str], output: str | Path | None = None, scores: list[str] | None = None
                    ) -> pd.DataFrame:
    """Score every candidate for the task of `cfg` (a fine-tuning config) on its labelled sample (`scores`: a subset
    of SCORES, default all; the first orders the table unless the default score is among them); print the table
    and write it as CSV."""
    from warmstart.tasks.registry import TASKS, get

    if not candidates:
        raise WarmstartError("rank: give at least one --candidates folder")
    scores = tuple(scores or SCORES)
    unknown = set(scores) - set(SCORES)
    if unknown:
        raise WarmstartError(f"rank: unknown score {', '.join(sorted(unknown))}; use {', '.join(SCORES)}")
    task = get(cfg.task)
    if task.rank_features is None:
        rankable = [name for name, t in TASKS.items() if t.rank_features]
        raise WarmstartError(f"rank: task '{cfg.task}' is not supported; rank scores {', '.join(rankable)} recipes")
    out = Path(output) if output else Path("rank.csv")
    if out.is_dir():
        raise WarmstartError(f"{out}: a folder; give --output a .csv file name")
    if out.is_file() and not _is_rank_table(out):  # rank.csv is a common name: a user's file is never replaced
        raise WarmstartError(f"{out}: exists and is not a table warmstart rank wrote; give --output another file name")
    default = DEFAULT_SCORE_SETS if task.rank_features == "label_sets" else DEFAULT_SCORE
    order = default if default in scores else scores[0]
    if task.rank_features != "images":  # every candidate reads train.max_length tokens: refuse before any work
        for candidate in candidates:
            require_positions(candidate, cfg.train.max_length, cfg.trust_pickled_weights)
    set_threads(None)
    bf16 = use_bf16(cfg.train.precision)
    t0 = time.perf_counter()
    sample = task.resolve("sample")(cfg)
    train, val, _ = sample
    reading = {"reading": cfg.train.entity_tags} if task.rank_features == "words" else {}
    inputs, labels, metric, metric_name = FEATURES[task.rank_features](train, val, **reading)
    # a recipe that balances its classes is ranked as it will be scored: by balanced accuracy, the classes alike
    balanced = task.weighs_classes and getattr(cfg.train, "class_balance", "none") != "none"
    if balanced:
        metric, metric_name = balanced_accuracy, "balanced_accuracy"
    # the honest protocol (no explicit dev set): classes are scored by cross-validation over all N labels; token
    # tasks keep the held-out sentences (their entity F1 is a per-sentence metric)
    pooled = not getattr(sample, "extra", 0) and task.rank_features != "words"
    groups = _groups(inputs, task.rank_features) if pooled else None
    protocol = f"{len(labels[0]) + len(labels[1])} labels{copies_said(groups)}, cross-validated" if pooled else \
        f"{len(labels[0])} labels scored on {len(labels[1])} held out"
    data_seconds = time.perf_counter() - t0
    data_hash = file_hash(cfg.data.path) if task.rank_features != "images" else None  # text's labelled file
    rows, progress = [], partial.partial_path(out)
    # what a candidate's row depends on besides its own files (engine/partial.py: a killed ranking resumes)
    settings = {"config": asdict(cfg), "scores": scores, "bf16": bf16,
                "data": partial.files_signature(partial.data_paths(asdict(cfg.data)))}
    done = partial.finished(progress)
    kind = {"words": "sentences", "images": "images"}.get(task.rank_features, "texts")
    examples = f"{sum(len(part) for part in inputs):,} {kind}"
    for i, candidate in enumerate(candidates, 1):
        folder = require_weights(candidate, cfg.trust_pickled_weights)
        key = partial.candidate_key(settings, folder)
        if key in done:
            rows.append({**done[key], "candidate": str(candidate)})
            print(f"rank: {candidate}: scored before this run was stopped, kept ({progress.name})")
            continue
        # a large encoder takes minutes over the N: say which candidate is being encoded, and how far along
        print(f"rank: {i}/{len(candidates)} {candidate}: encoding {examples}", flush=True)
        t1 = time.perf_counter()
        if task.rank_features == "images":
            feats = _image_features(folder, inputs, bf16, cfg.trust_pickled_weights)
        else:
            feats = _text_features(folder, inputs, cfg.train.max_length, bf16, task.rank_features == "words",
                                   cfg.trust_pickled_weights)
        values = score_cross_validated(np.concatenate(feats), np.concatenate(labels), cfg.train.seed, scores,
                                       groups=groups, balanced=balanced) if pooled else None
        if values is None:
            values = score_features(feats[0], labels[0], feats[1], labels[1], cfg.train.seed, metric, scores,
                                    balanced)
        seen = fitted_on(folder, data_hash)
        rows.append({"candidate": str(candidate), **values, "metric": metric_name, "feature_dim": feats[0].shape[1],
                     "seconds": round(time.perf_counter() - t1, 1), "fitted_on_these_labels": seen})
        partial.record(progress, key, rows[-1])
        print(f"rank: {candidate}: " + ", ".join(f"{k} {rows[-1][k]}" for k in scores) + f" ({rows[-1]['seconds']} s)")
        if seen:
            print(f"rank: {candidate} was fine-tuned on {cfg.data.path}: it has seen the labels it is scored on, so "
                  "its score is no forecast; rank it on labels it has not seen")
    table = pd.DataFrame(rows).sort_values(order, ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    replace_file(out, lambda tmp: table.to_csv(tmp, index=False))  # a killed run leaves the old table
    progress.unlink(missing_ok=True)
    print(f"warmstart rank: {len(table)} candidates, {protocol} (data {data_seconds:.1f} s), "
          f"ranked by {order} -> {out}")
    print(table.to_string(index=False))
    return table


def fitted_on(folder: Path, data_hash: str | None) -> bool:
    """Whether `folder` was fine-tuned on the data whose sha256 is `data_hash`: a run's marker records its
    `data.path`, an `auto` model's parent folder its `labelled` table. Such a candidate has seen the labels it
    is scored on (kNN finds each row itself: 1.0), so its score forecasts nothing."""
    if data_hash is None:
        return False
    own = recorded_inputs(folder).get("data.path") if kind_of(folder) == "finetune" else None
    parent = recorded_inputs(folder.parent).get("labelled") if kind_of(folder.parent) == "auto" else None
    return data_hash in (own, parent)


def _is_rank_table(path: Path) -> bool:
    """Whether `path` is a ranking this command wrote (its header starts with rank,candidate)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.readline().startswith("rank,candidate,")


def run_rank(task_config: str, candidates: list[str], output: str | None = None, overrides: list[str] = (),
             scores: list[str] | None = None) -> pd.DataFrame:
    """`rank_candidates` for a task recipe file plus `section.key=value` overrides."""
    from warmstart.tasks.registry import load_task_config

    _, cfg = load_task_config(task_config, list(overrides))
    return rank_candidates(cfg, candidates, output, scores)
