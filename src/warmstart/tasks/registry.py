"""The task registry: one record per fine-tuning task. The CLI, the Python API, `predict`, `study`, `rank`, the
baselines and the demo read it; nothing else switches on task names. Adding a task is one module plus one
`register(Task(...))` line (a test adds a toy task this way and runs it through finetune, predict and study).

A record names its functions as "module:function" strings, imported on first use, so that one task's
dependencies (seqeval, rouge) never slow another's start; a test may give the callables themselves.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmstart.config import (
    SGD_STRATEGIES,
    STRATEGIES,
    TEXT_ONLY,
    FinetuneConfig,
    ImageFinetuneConfig,
    load_config,
    peek,
    validate,
)
from warmstart.engine.checkpoint import check_resumable, require_weights
from warmstart.engine.outputs import claim, file_hash, recorded_inputs
from warmstart.engine.partial import KeptChunks
from warmstart.errors import WarmstartError
from warmstart.tasks.resume import CURRENT_RUN, RESUMABLE_CHANGES, RunContext, finetune_inputs, saved_states

Ref = str | Callable[..., Any]


def fitted(auto_class: Any, folder: Path, **kwargs: Any) -> Any:
    """A fine-tuned model to predict with (models/common.load_fitted: every weight from the folder), placed on
    the run's device."""
    from warmstart.engine.runtime import place
    from warmstart.models.common import load_fitted

    return place(load_fitted(auto_class, folder, **kwargs))


def fitted_tokenizer(folder: Path) -> Any:
    from warmstart.data.text import load_tokenizer

    return load_tokenizer(str(folder))


PREDICT_CHUNK = 2048  # rows tokenised, predicted and kept at a time: memory stays flat, a kill loses one chunk


@dataclass
class PredictRequest:
    """What `warmstart predict` asks a task's predictor: the input file, its columns, the batch size,
    `progress(total)` -> a callback taking the number of rows done, and where its model and tokenizer come from:
    `load(auto_class, folder, **kwargs)` -> the fitted model, placed; `tokenizer(folder)`. A `Predictor` hands
    loaders that keep what they loaded, so a second call reads nothing from disk. The rows are predicted through
    `chunks(total, size, compute, skipped)` (engine/partial.KeptChunks), which keeps each chunk's predictions
    beside the output file, so a killed `warmstart predict` on a large file resumes where it stopped."""

    src: Path
    text_column: str | None = None
    text_pair_column: str | None = None
    batch_size: int = 64
    progress: Callable[[int], Callable[[int], None]] = lambda total: (lambda n: None)
    load: Callable[..., Any] = fitted
    tokenizer: Callable[[Path], Any] = fitted_tokenizer
    chunks: KeptChunks = field(default_factory=lambda: KeptChunks(None))



def beside_inputs(own, predicted, consumed: tuple[str, ...] = ()):
    """The input table's own columns (ids, gold labels) first, then the predictions, row for row; an input column
    named like a prediction column is kept as `input_<name>`, and the `consumed` ones (which the predictions
    repeat, e.g. the tokens) are dropped. `own` None (a text or CoNLL file): the predictions alone.
    (DataFrame, DataFrame) -> DataFrame"""
    if own is None:
        return predicted
    kept = own.drop(columns=[c for c in consumed if c in own.columns]).reset_index(drop=True)
    kept = kept.rename(columns={c: f"input_{c}" for c in kept.columns if c in predicted.columns})
    return kept.join(predicted.reset_index(drop=True))


@dataclass(frozen=True)
class Task:
    """A fine-tuning task: its config, how it runs, predicts, samples its labels and what it reports."""

    name: str
    run: Ref  # (cfg) -> test metrics; writes the run folder (the registry has claimed it)
    predict: Ref | None = None  # (checkpoint folder, its config, PredictRequest) -> DataFrame of rows
    sample: Ref | None = None  # (cfg) -> (train, validation, test) in the task's own item type
    metrics: tuple[str, ...] = ("accuracy",)  # what a study compares: the first one the metrics hold
    strategies: tuple[str, ...] = SGD_STRATEGIES
    config: type = FinetuneConfig
    rank_features: str | None = None  # what `rank` reads: sentences | label_sets | words | images (None: not rankable)
    baseline: str | None = None  # the classic no-pretraining model (studies/baselines.py): tfidf_logreg | ...
    baselines: tuple[str, ...] = ()  # every baseline a study may fit beside it (the classic one included)
    count_key: str = "data.labels"  # the knob a study sets to a label count
    scratch_key: str = "tokenizer"  # the key that gives a scratch model its architecture
    pools: bool = False  # reads train.pooling (the others score through the HF model's own head)
    weighs_classes: bool = False  # reads train.class_balance
    # a format `predict --output` also writes besides CSV and JSONL: (suffix, "module:function" (rows) -> text)
    text_output: tuple[str, Ref] | None = None
    score_scale: float = 1.0  # a study's score = metric x this, a fraction (ROUGE is reported in points)
    description: str = ""
    extra: dict = field(default_factory=dict)

    def resolve(self, what: str) -> Callable[..., Any]:
        ref = getattr(self, what)
        if what == "text_output" and ref is not None:
            ref = ref[1]
        if ref is None:
            raise WarmstartError(f"task {self.name}: has no {what}")
        if callable(ref):
            return ref
        module, _, function = ref.partition(":")
        return getattr(importlib.import_module(module), function)


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add (or replace) a task; returns it."""
    TASKS[task.name] = task
    return task


def get(name: str) -> Task:
    if name not in TASKS:
        raise WarmstartError(f"task: unknown task '{name}'; use {', '.join(TASKS)}")
    return TASKS[name]


def plain_checkpoint_task(folder: Path) -> str:
    """The task of a plain HF folder that warmstart did not fine-tune: an image classifier when it has an image
    preprocessor and no tokenizer, else a sequence classifier."""
    image = (folder / "preprocessor_config.json").is_file() and not (folder / "tokenizer.json").is_file()
    return "image_classification" if image else "classification"


def task_of(recipe: str | Path | None, overrides: list[str] = (), values: dict | None = None) -> Task:
    """The task a fine-tuning recipe declares (`task:`; classification when it says nothing)."""
    name = (values or {}).get("task") or peek(recipe, overrides, "task") or "classification"
    return get(str(name))


def load_task_config(recipe: str | Path | None, overrides: list[str] = (), values: dict | None = None):
    """-> (task, its config loaded from the recipe, overrides and Python values, checked)"""
    task = task_of(recipe, overrides, values)
    return task, load_config(task.config, recipe, list(overrides), values)


def run_task(cfg, overwrite: bool = False, resume: bool = False) -> dict:
    """Fine-tune `cfg.task` and return its test metrics: the config checked, the strategy one the task can
    use, the output folder claimed (owned, not an input's, locked) for the whole run. `resume`: continue from the
    state a stopped run saved beside its folder (the same recipe and data, a budget that may grow)."""
    # imports torch: when a run starts, not with the registry
    from warmstart.tasks.finetune import resolve_pooling

    task = get(cfg.task)
    if not isinstance(cfg, task.config):
        raise WarmstartError(f"task {task.name}: expects a {task.config.__name__}, got a {type(cfg).__name__}")
    validate(cfg)
    if cfg.train.strategy not in task.strategies:
        raise WarmstartError(f"train.strategy: '{cfg.train.strategy}' is not available for task {task.name}; use "
                             f"{', '.join(task.strategies)}")
    if getattr(cfg.train, "class_balance", "none") != "none" and not task.weighs_classes:
        raise WarmstartError(f"train.class_balance: {cfg.train.class_balance} weighs the classes of one label a text "
                             f"(task classification); task {task.name} does not read it: leave it none")
    if not cfg.init:
        raise WarmstartError("init is empty; give a checkpoint folder or 'scratch'")
    for key in ("init", "tokenizer", "architecture"):  # every checkpoint checked before any work or folder
        folder = getattr(cfg, key, None)
        if folder and folder != "scratch":
            require_weights(folder, cfg.trust_pickled_weights)
    resolve_pooling(cfg, task.pools)  # before the folder and any state record the config (a resume compares it)
    with claim(cfg.output_dir, "finetune", finetune_inputs(cfg), overwrite) as owned:
        states = saved_states(owned.folder)
        if resume:
            if not states:
                raise WarmstartError(f"{cfg.output_dir}: nothing to resume (no state saved beside it); run without "
                                     "--resume")
            check_resumable(cfg, states[0], RESUMABLE_CHANGES)
            recorded = recorded_inputs(states[0])
            changed = [k for k, v in finetune_inputs(cfg).items() if k in recorded and recorded[k] != file_hash(v)]
            if changed:
                raise WarmstartError(f"--resume: {changed[0]} changed since the run started; resume with the same data, "
                                     "or start without --resume")
        else:  # a new run: a stopped run's state here is not ours to continue
            for stale in states:
                shutil.rmtree(stale, ignore_errors=True)
        token = CURRENT_RUN.set(RunContext(cfg, resume))
        try:
            return task.resolve("run")(cfg)
        finally:
            CURRENT_RUN.reset(token)


for _task in (
    Task("classification", "warmstart.tasks.classification:run_finetune",
         "warmstart.tasks.classification:predict_file", "warmstart.tasks.classification:labelled_sample",
         strategies=STRATEGIES, rank_features="sentences", baseline="tfidf_logreg", pools=True, weighs_classes=True,
         baselines=("tfidf_logreg", "setfit"),
         description="sequence classification (sentiment, topics, sentence pairs)"),
    Task("multi_label", "warmstart.tasks.multi_label:run_multi_label", "warmstart.tasks.classification:predict_file",
         "warmstart.tasks.multi_label:labelled_sample", metrics=("micro_f1", "macro_f1"), strategies=STRATEGIES,
         rank_features="label_sets",
         baseline="tfidf_ovr", baselines=("tfidf_ovr", "setfit"), pools=True,
         description="multi-label text classification (a set of labels a text: topics, tags)"),
    Task("token_classification", "warmstart.tasks.token_classification:run_token_classification",
         "warmstart.tasks.token_predict:predict_file", "warmstart.tasks.token_classification:labelled_sample",
         metrics=("entity_f1", "token_accuracy"), rank_features="words", description="NER, POS (CoNLL, JSONL, HF)",
         baseline="commonest_tag", baselines=("commonest_tag",),
         text_output=(".conll", "warmstart.tasks.token_predict:conll_text")),
    Task("summarization", "warmstart.tasks.summarization:run_summarization",
         "warmstart.tasks.summarization:predict_file", "warmstart.tasks.summarization:labelled_sample",
         metrics=("rouge1",), baseline="lead", baselines=("lead",), score_scale=0.01,
         description="extractive summarisation (sentence scorer, word budget, ROUGE)"),
    Task("response_selection", "warmstart.tasks.response_selection:run_response_selection",
         "warmstart.tasks.response_selection:predict_file", "warmstart.tasks.response_selection:labelled_sample",
         metrics=("recall_at_1",), baseline="tfidf_cosine", baselines=("tfidf_cosine",),
         description="dialogue response selection (cross-encoder, recall@1 of N)"),
    Task("image_classification", "warmstart.tasks.image_classification:run_image_finetune",
         "warmstart.tasks.image_classification:predict_file", "warmstart.tasks.image_classification:labelled_sample",
         strategies=tuple(s for s in STRATEGIES if s not in TEXT_ONLY), config=ImageFinetuneConfig, rank_features="images", baseline="pixels_logreg",
         baselines=("pixels_logreg",),
         scratch_key="architecture",
         description="image classification (ResNet / ViT encoders)"),
):
    register(_task)
