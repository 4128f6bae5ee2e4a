"""What every text task shares: building the HF model from a checkpoint or from scratch, padding, fine-tuning
with early stopping on a validation score through the one loop in train.py, and writing the run folder.

Each task module (classification, token_classification, summarization, response_selection) brings its data
format, its head (a standard `AutoModelFor...` class) and its metric; the rest lives here once.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import yaml

from warmstart.config import CONFIG_FILENAME, FinetuneConfig
from warmstart.data.sample import Sample, draw, holdout
from warmstart.engine.attention import use_attention
from warmstart.engine.checkpoint import (
    TRAINING_STATE,
    atomic_folder,
    keep_log_until,
    save_hf,
)
from warmstart.engine.loop import Budget, KeepBest, LoopSettings, LoopState, make_optimizer, train_loop
from warmstart.engine.outputs import write_marker
from warmstart.engine.runtime import place, set_threads, use_bf16
from warmstart.engine.tracking import TRACKING, tracking_for
from warmstart.errors import WarmstartError
from warmstart.models.common import load_model_config, load_pretrained, require_positions
from warmstart.tasks.resume import (
    CURRENT_RUN,
    RESUME,
    finetune_inputs,
    load_resumable,
    phase_folder,
    save_resumable,
)
from warmstart.tasks.strategies import (
    head_name,
    hold_frozen_norm_statistics,
    plan,
    save_adapter,
    set_trainable,
    trainable_parameters,
    unwrap_lora,
    wrap_lora,
)


def tokenizer_folder(cfg: FinetuneConfig) -> str:
    """The folder whose tokenizer (and, for scratch, architecture) the run uses."""
    if not cfg.init:
        raise WarmstartError("init is empty; give a checkpoint folder or 'scratch'")
    folder = cfg.tokenizer or cfg.init
    if folder == "scratch":
        raise WarmstartError("init: scratch needs `tokenizer: PATH` (a checkpoint giving tokenizer and architecture)")
    return folder


SPLITS = ("train", "validation", "test")
SPLIT_NAMES = {"train": "train", "validation": "validation", "valid": "validation", "dev": "validation",
               "val": "validation", "test": "test"}


def split_files(folder: Path) -> dict[str, Path]:
    """A folder of per-split files (`train.conll`, `dev.jsonl`, `test.txt`, ...). -> {split: file}"""
    found: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        split = SPLIT_NAMES.get(f.name.split(".")[0].lower())
        if f.is_file() and split and split not in found:
            found[split] = f
    if "train" not in found:
        raise WarmstartError(f"{folder}: no train file (expected train.*, and optionally validation.* / test.*)")
    return found


def split_examples(items: list, seed: int, validation_size: float, test_size: float,
                   group: Callable[[object], object] | None = None) -> dict[str, list]:
    """A seeded train/validation/test split; items with the same `group(item)` land in one split (a question
    asked twice must not be both trained on and tested)."""
    keys = list(dict.fromkeys(group(x) for x in items)) if group else list(range(len(items)))
    order = np.random.default_rng(seed).permutation(len(keys))
    n_test, n_val = int(round(test_size * len(keys))), int(round(validation_size * len(keys)))
    where = {}
    for rank, k in enumerate(order):
        where[keys[k]] = "test" if rank < n_test else "validation" if rank < n_test + n_val else "train"
    out: dict[str, list] = {s: [] for s in SPLITS}
    for i, x in enumerate(items):
        out[where[group(x) if group else i]].append(x)
    return out


def take(items: list, n: int | None, seed: int) -> list:
    """A seeded sample of n items, in their original order (all of them when n is None or larger): the text
    labelled sample (data/sample.py) for items without one class each."""
    if n is None or n >= len(items):
        return items
    return [items[i] for i in draw(len(items), n, seed)]


def start_run(cfg: FinetuneConfig):
    """Set-up every text task does first. -> (start time, bf16?, tokenizer)"""
    from warmstart.data.text import load_tokenizer

    t0 = time.perf_counter()
    folder = tokenizer_folder(cfg)
    # scratch copies the tokenizer folder's architecture; a longer input would fail inside the embeddings, mid-run
    require_positions(folder if cfg.init == "scratch" else cfg.init, cfg.train.max_length, cfg.trust_pickled_weights)
    set_threads(None)
    return t0, use_bf16(cfg.train.precision), load_tokenizer(folder)


def few_labels(splits: dict[str, list], cfg: FinetuneConfig, group: Callable[[object], object] | None = None
               ) -> Sample:
    """The labelled sample of a task whose items have no single class (sentences to tag, documents,
    conversations): the N items (`data.labels`), a share of them held out to choose with and a refit on all N;
    or an explicit dev set of `data.validation_labels` items (the validation split, else train beyond the N).
    `group(item)`: items with the same key are held out together (as `split_examples` keeps them in one split)."""
    seed, tc = cfg.train.seed, cfg.train
    train = splits["train"]
    chosen = draw(len(train), cfg.data.labels, seed)
    labelled = [train[i] for i in chosen]
    if cfg.data.validation_labels:
        pool = splits.get("validation") or [train[i] for i in sorted(set(range(len(train))) - set(chosen.tolist()))]
        dev = take(pool, cfg.data.validation_labels, seed)
        return Sample(labelled, labelled, dev, splits.get("test", []), refit=False, extra=len(dev))
    kept, held = holdout(len(labelled), tc.holdout, seed,
                         groups=[group(x) for x in labelled] if group else None)
    return Sample(labelled, [labelled[i] for i in kept], [labelled[i] for i in held], splits.get("test", []),
                  refit=tc.refit)


def chosen_pooling(pooling: str, init: str, strategy: str) -> str:
    """`train.pooling` as the run uses it: `auto` becomes the init folder's own pooling when it is a
    sentence-transformers folder (models/sentence.folder_pooling: mean -> `mean`, its cls, the [CLS] state
    itself -> `cls_token`), else `cls`, the HF classifier's pooler; SetFit trains the body's embeddings, so
    `auto` is its own pooling there too, else `mean` (as the setfit library does). Why: MiniLM's HF pooler was never trained for its embeddings; at 100 Rotten
    Tomatoes labels (seeds 0-2, AMD EPYC) its linear probe scored 58.6% with cls against 66.9% with mean, full
    fine-tuning 61.5% against 65.2%."""
    from warmstart.models.sentence import own_pooling

    if pooling != "auto":
        return pooling
    otherwise = "mean" if strategy == "setfit" else "cls"
    return own_pooling(init, otherwise) if init and init != "scratch" and Path(init).is_dir() else otherwise


def resolve_pooling(cfg, pools: bool = True) -> None:
    """Replace `train.pooling: auto` in `cfg` (in place, before the run folder and any resumable state record
    the config) by what the run uses; configs without the key (images) are left alone. A task that does not
    pool (`pools` False: it scores through the HF model's own head, [CLS] through its pooler, or per token)
    records `cls`, and refuses another pooling rather than ignore it."""
    train = getattr(cfg, "train", None)
    pooling = getattr(train, "pooling", None)
    if pooling is None:
        return
    if not pools:
        if pooling not in ("auto", "cls"):
            raise WarmstartError(f"train.pooling={pooling}: task {cfg.task} scores through the HF model's own "
                                 "head, so only classification reads the pooling; remove the key")
        train.pooling = "cls"
    elif pooling == "auto":
        train.pooling = chosen_pooling(pooling, cfg.init, train.strategy)


def build_model(auto_class, cfg: FinetuneConfig, **config_kwargs):
    """`auto_class` (e.g. AutoModelForTokenClassification) from `cfg.init`, or with random weights and the
    architecture of `cfg.tokenizer` when init is `scratch`. The task head is always new (seeded)."""
    kwargs = dict(hidden_dropout_prob=cfg.train.dropout, attention_probs_dropout_prob=cfg.train.dropout,
                  **config_kwargs)
    torch.manual_seed(cfg.train.seed)
    if cfg.init == "scratch":
        config = load_model_config(tokenizer_folder(cfg), cfg.trust_pickled_weights, **kwargs)
        model = place(auto_class.from_config(config, attn_implementation="sdpa"))
    else:  # quiet: "newly initialized head" is expected, not news
        model = place(load_pretrained(auto_class, cfg.init, cfg.trust_pickled_weights, quiet=True,
                                      attn_implementation="sdpa", **kwargs))
    use_attention(model, cfg.train.attention)
    return model


def pad(rows: list[list[int]], pad_id: int, fill: int | None = None) -> torch.Tensor:
    """Right-pad integer rows to the longest. -> (B, T)"""
    t = max(1, max(len(r) for r in rows))
    out = torch.full((len(rows), t), pad_id if fill is None else fill, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


def shuffled_epochs(n: int, batch_size: int, seed: int, make_batch: Callable[[np.ndarray], dict]
                    ) -> Iterator[tuple[int, int, dict]]:
    """Endless seeded epochs of `make_batch(row indices)`. -> (epoch, index in epoch, batch)"""
    rng = np.random.default_rng(seed)
    epoch = 0
    while True:
        order = rng.permutation(n)
        for i, s in enumerate(range(0, n, batch_size)):
            yield epoch, i, make_batch(order[s:s + batch_size])
        epoch += 1


def log_path(out: Path, phase: str = "select") -> Path:
    """A phase's training log lives beside the output folder until the folder is swapped in atomically."""
    return staging(out, "log.jsonl" if phase == "select" else f"{phase}-log.jsonl")


def staging(out: Path, name: str) -> Path:
    """Where a fine-tuning run keeps `name` (its log, its tracker's files) until its folder is published whole."""
    return out.parent / f".{out.name}.{name}"


def majority_share(y: np.ndarray | None) -> float | None:
    """The accuracy of predicting the commonest class: a model at or below it has learnt nothing yet."""
    return None if y is None or len(y) == 0 else float(np.bincount(np.asarray(y)).max() / len(y))


def fit(model: torch.nn.Module, tc, out: Path | None, batches: Iterator, loss_fn: Callable[[dict], dict],
        evaluate: Callable[[], float] | None, num_train: int, head: torch.nn.Module, bf16: bool, metric: str,
        start_score: float = float("-inf"), tokens_fn: Callable[[dict], int] | None = None, unit: str = "tokens",
        steps_per_epoch: int | None = None, generators: tuple[torch.Generator, ...] = (), steps: int | None = None,
        phase: str = "select", floor: float | None = None) -> dict:
    """Fine-tune with `tc.strategy` (strategies.py: which weights train, at which rates, with what penalty),
    evaluating every `eval_every` steps (default: once per epoch) and stopping after `patience` evaluations
    without a better validation score; the best weights are loaded at the end (LoRA: merged).

    `tc`: a text or image fine-tuning train config. `out`: the run folder (its training log is kept beside it
    until the folder is published; None: no log). `start_score`: the validation score of the weights as they
    come in (LP-FT's probed head); they stay the best candidate until fine-tuning beats them, so fine-tuning
    never ends worse on validation. Every `save_every_minutes` the run's state is saved beside `out`; under
    `--resume` (see RunContext) it continues from there, the batches fast-forwarded to the saved position.
    `generators`: the step's own RNGs (image augmentation), saved and restored with the rest.
    `evaluate=None` (the refit phase: nothing left to choose with): train `steps` steps and keep the last
    weights. `phase` names the phase's resumable state and log (select, refit). `floor`: the validation score of
    a model that has learnt nothing (KeepBest: evaluations on it do not use up the patience)."""
    steps_per_epoch = steps_per_epoch or max(1, int(np.ceil(num_train / tc.batch_size)))
    max_steps = steps if steps is not None else tc.max_steps or tc.max_epochs * steps_per_epoch
    peft_model = None
    if tc.strategy == "lora":  # PEFT swaps the head's top module for a wrapper holding its trainable copy
        top = head_name(model, head).split(".")[0]
        peft_model = wrap_lora(model, head, tc.lora)
        head = dict(model.named_modules())[top]
    place(model)  # what fit is given (and LoRA's new adapters) runs where the run computes
    # the optimizer holds every weight that may ever train; the strategy then turns some off (AdamW leaves a
    # weight without a gradient untouched, so frozen weights stay bit-identical)
    strategy = plan(tc.strategy, model, head, tc, tc.lr, tc.head_lr or tc.lr)
    optimizer = make_optimizer(model, tc.lr, tc.weight_decay, strategy.param_lrs)
    set_trainable(strategy.frozen, False)
    if strategy.before_step:
        strategy.before_step(0.0)
    freezes = any(not p.requires_grad for p in model.parameters()) or strategy.before_step is not None
    # the weights as they come in are the first candidate (the fallback when no evaluation beats them)
    best = KeepBest(metric, "max", tc.patience, ties_count=True, weights=copy.deepcopy(model.state_dict()),
                    value=start_score if math.isfinite(start_score) else None, floor=floor)
    calls = 0

    def step_fn(batch: dict) -> dict:
        nonlocal calls
        if strategy.before_step:
            strategy.before_step(calls / steps_per_epoch)
        if freezes:  # again each step: the loop puts the model in train mode after evaluating
            hold_frozen_norm_statistics(model)
        calls += 1
        out = loss_fn(batch)
        if strategy.penalty:
            extra = strategy.penalty()
            out = {**out, "loss": out["loss"] + extra, "l2sp": extra.detach()}
        return out

    def eval_fn(state):
        score = evaluate()
        stop = best.update({metric: score}, state.step, lambda: copy.deepcopy(model.state_dict()))
        return {metric: round(score, 4)}, stop

    ctx = CURRENT_RUN.get()
    resume_dir = phase_folder(out, phase) if out is not None else None
    state = LoopState()
    path = log_path(out, phase) if out is not None else None
    if ctx is not None and ctx.resume and resume_dir is not None and (resume_dir / TRAINING_STATE).is_file():
        state, calls = load_resumable(resume_dir, model, optimizer, best, generators)
        batches = itertools.dropwhile(lambda b: (b[0], b[1]) < (state.epoch, state.index), batches)
        keep_log_until(path, state.step)
        shown = best.value if best.value is not None else float("nan")
        print(f"warmstart finetune: resumed at step {state.step} (best {metric} {shown:.4f} at step {best.step})")
    elif path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)  # the log lives beside the run folder, made only at the end
        path.unlink(missing_ok=True)  # a crashed earlier run's log must not be appended to

    def save_fn(state: LoopState) -> None:
        save_resumable(resume_dir, model, optimizer, best, state, calls, generators, ctx)

    eval_every = tc.eval_every or steps_per_epoch
    settings = LoopSettings(warmup_fraction=tc.warmup_fraction, bf16=bf16, log_every=eval_every,
                            eval_every=eval_every if evaluate else None, desc=f"finetune ({phase})", unit=unit,
                            save_every_minutes=tc.save_every_minutes if resume_dir is not None else None,
                            tracking=tracking_for(tc.report_to, staging(out, TRACKING), f"{out.name}-{phase}")
                            if out is not None else None)
    budget = Budget(max_steps=max(1, max_steps), max_minutes=getattr(tc, "max_minutes", None))
    state = train_loop(model, optimizer, batches, step_fn, budget, settings, state,
                       tokens_fn=tokens_fn or (lambda b: int(b["attention_mask"].sum())),
                       eval_fn=eval_fn if evaluate else None, save_fn=save_fn if resume_dir is not None else None,
                       log_path=path)
    if evaluate is None:  # nothing to choose with: the last weights are the result
        best.weights, best.step, best.value = model.state_dict(), state.step, None
    elif state.step % eval_every:
        eval_fn(state)
    model.load_state_dict(best.weights)
    trainable = trainable_parameters(model)  # at the end: gradual unfreezing has turned its blocks on by then
    set_trainable(model.parameters(), True)
    if peft_model is not None:  # merged into a standard checkpoint; write_run saves the adapter beside it
        _, adapter, config = unwrap_lora(peft_model)
        model.warmstart_adapter = (adapter, config)
    score = best.value if best.value is not None else float("-inf")  # -inf: no evaluation was a number
    chosen = {metric: round(score, 4), "best_step": best.step} if evaluate else {}
    return {**chosen, "steps": state.step, "strategy": tc.strategy, "trainable_parameters": trainable}


def measure_forgetting(cfg: FinetuneConfig, model, tokenizer, bf16: bool) -> dict:
    """Forgetting and drift against the pretrained `init` (forgetting.py), when `forgetting.texts` is set."""
    if not cfg.forgetting.texts or cfg.init == "scratch":
        return {}
    from warmstart.tasks.forgetting import sample_texts, text_forgetting

    texts = sample_texts(cfg.forgetting.texts, cfg.forgetting.samples, cfg.train.seed)
    return text_forgetting(cfg.init, model.base_model, tokenizer, texts, cfg.train.max_length, bf16,
                           cfg.trust_pickled_weights)


def write_run(cfg, model, tokenizer, metrics: dict, files: dict[str, Callable[[Path], None]]) -> None:
    """Publish the run folder atomically (`cfg`: a text or image fine-tuning config): checkpoint (unless
    save_model is off; a LoRA run's adapter beside it), resolved config, metrics,
    training log, and each of `files` (name -> writer of that path)."""
    out = Path(cfg.output_dir)

    def write(folder: Path) -> None:
        if cfg.train.save_model:
            save_hf(folder, model, tokenizer)
            if getattr(model, "warmstart_adapter", None):
                save_adapter(folder / "adapter", *model.warmstart_adapter)
        (folder / CONFIG_FILENAME).write_text(yaml.safe_dump(asdict(cfg), sort_keys=False), encoding="utf-8")
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        # the marker: a fine-tuning run's folder, with its data's content hashes (a study reuses it while they hold)
        write_marker(folder, "finetune", {k: v for k, v in finetune_inputs(cfg).items() if k.startswith("data.")})
        for name, writer in files.items():
            writer(folder / name)
        for phase, name in (("select", "training_log.jsonl"), ("refit", "training_log_refit.jsonl")):
            if log_path(out, phase).exists():
                log_path(out, phase).replace(folder / name)
        tracked = staging(out, TRACKING)
        if tracked.exists():  # the tracker's files join the run folder (engine/tracking.py)
            shutil.move(str(tracked), folder / TRACKING)

    atomic_folder(out, write)
    for stale in out.parent.glob(f".{out.name}.{RESUME}*"):  # published: nothing left to resume
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def elapsed(t0: float) -> float:
    return round(time.perf_counter() - t0, 1)
