"""The one pretraining skeleton, text or images: claim the run folder, set up processes and precision, resume,
run the loop, save resumable checkpoints, publish the final HF folder.

A modality (text.py, images.py) supplies a `Job`: the model, the objective that the processes' wrapping
(ddp, FSDP, DeepSpeed) calls, its batches, one training step, a validation pass, and how to write its weights.
Everything else about a run lives here once.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import torch
import yaml

from warmstart.config import CONFIG_FILENAME, validate
from warmstart.engine.attention import use_attention
from warmstart.engine.checkpoint import (
    RESUME_DIR,
    TRAINING_STATE,
    check_resumable,
    keep_log_until,
    load_training_state,
    publish_into,
    recover_folder,
    require_weights,
    rng_state,
    set_rng_state,
)
from warmstart.engine.distributed import (
    Cluster,
    agree_max,
    barrier,
    broadcast_parameters,
    cluster,
    full_optimizer_state,
    parallelize,
    resume_optimizer,
    save_collectively,
)
from warmstart.engine.loop import (
    Budget,
    KeepBest,
    LoopSettings,
    LoopState,
    cpu_copy,
    make_optimizer,
    train_loop,
)
from warmstart.engine.outputs import Claim, check_output, replace_file
from warmstart.engine.runtime import place, set_threads, use_bf16
from warmstart.engine.tracking import TRACKING, tracking_for
from warmstart.errors import WarmstartError

LOG = "training_log.jsonl"
# Early stopping counts a held-out loss as risen only 1% above the best: on a 45k-word corpus checked once a
# pass (24 held-out documents, one batch) a plain "no new best" stopped the demo recipe at step 696 (loss 6.21),
# on a plateau, where the whole run's lowest was 5.86 at step 1500 (benchmarks/results/small_corpus.md)
RISE = 0.01
# what may change between a run and its --resume: budgets, logging, saving, threads, the launch
RESUMABLE_CHANGES = {"output_dir", "train.max_steps", "train.max_tokens", "train.max_minutes", "train.max_epochs",
                     "train.log_every", "train.patience",
                     "train.eval_every", "train.save_every_minutes", "train.num_threads", "train.report_to",
                     "train.parallel", "train.compile", "corpus.cache_dir",
                     "model.keep_init"}  # applied when the final folder is written; checkpoint-last stays unmixed


class Job(Protocol):
    """What a modality supplies to the skeleton."""

    model: torch.nn.Module  # every trained module, under one optimizer
    unit: str  # what `count` counts: tokens | images
    data_key: str  # content hash of the training data: --resume refuses another corpus
    setup_seconds: float  # spent before the loop (e.g. PPMI-SVD embeddings), counted in a time budget

    def objective(self, *args: Any) -> Any: ...  # the forward that ddp / FSDP / DeepSpeed wrap
    def describe(self) -> str: ...
    def batches(self, state: LoopState) -> Iterator[tuple[int, int, dict]]: ...
    def count(self, batch: dict) -> int: ...
    def step(self, forward: Callable, batch: dict, progress: float) -> dict: ...
    def evaluate(self, forward: Callable) -> dict: ...
    def gather(self) -> dict: ...  # whole weights of what is saved (a collective when sharded)
    def write(self, folder: Path, whole: dict, files: dict[str, str], final: bool) -> None: ...
    def rng_state(self) -> dict: ...
    def load_rng_state(self, saved: dict) -> None: ...
    def summary(self, state: LoopState) -> dict: ...
    # optional: `watch = (key, "min" | "max")`, the held-out figure that early stopping follows (None: none)


def prepare_run_folder(out: Path, resume: bool, main: bool, world: int) -> Path:
    """Create `out`, recover its resumable checkpoint from a kill mid-save, and check that `--resume` has
    something to resume. Rank 0 touches the disk; every process waits for it. -> OUT/checkpoint-last"""
    resume_dir = out / RESUME_DIR
    if main:
        recover_folder(resume_dir)
        out.mkdir(parents=True, exist_ok=True)
    barrier(world)
    if resume and not (resume_dir / TRAINING_STATE).is_file():
        raise WarmstartError(f"{out}: nothing to resume (no {RESUME_DIR}/{TRAINING_STATE}); run without --resume")
    return resume_dir


def _claim(cfg: Any, inputs: Mapping[str, Any], resume: bool, overwrite: bool, group: Cluster) -> Claim | None:
    """Every process checks the folder (same answer everywhere); rank 0 locks it, and all learn whether it could."""
    folder = check_output(cfg.output_dir, "pretrain", inputs, overwrite)
    claimed, error = None, None
    if group.main:
        try:
            claimed = Claim(folder, "pretrain", inputs).acquire()
        except WarmstartError as e:
            error = e
    if agree_max(float(error is not None), group.world) > 0:
        raise error or WarmstartError(f"output_dir={cfg.output_dir}: another warmstart run is writing it")
    return claimed


def run(cfg: Any, build: Callable[[Any, Cluster, Path, bool, bool], Job], inputs: Mapping[str, Any],
        resume: bool = False, overwrite: bool = False) -> Path:
    """Pretrain `build(cfg, group, resume_dir, resume, bf16)`'s job; write the HF checkpoint to `cfg.output_dir`.
    `inputs`: what the run reads from disk (init, corpus), which the output folder must not overlap."""
    t0 = time.perf_counter()
    validate(cfg)  # loaded configs are checked already; one built in Python is checked here
    out, tc = Path(cfg.output_dir), cfg.train
    budget = Budget(tc.max_steps, tc.max_tokens, tc.max_minutes, tc.max_epochs)  # fail before any data is read
    if inputs.get("model.init"):  # the checkpoint checked before any folder is made
        require_weights(inputs["model.init"], getattr(cfg.model, "trust_pickled_weights", False))
    group = cluster(tc.parallel)
    if tc.batch_size % group.world:
        raise WarmstartError(f"train.batch_size={tc.batch_size} is not divisible by {group.world} processes")
    claimed = _claim(cfg, inputs, resume, overwrite, group)
    try:
        set_threads(tc.num_threads or max(1, (os.cpu_count() or 1) // group.world))
        resume_dir = prepare_run_folder(out, resume, group.main, group.world)  # recovers a kill mid-save
        if resume:
            check_resumable(cfg, resume_dir, RESUMABLE_CHANGES)
        if claimed:
            claimed.mark()
        return _train(cfg, build, resume, group, resume_dir, budget, t0)
    except BaseException:
        if claimed:
            claimed.discard_if_unused()
        raise
    finally:
        if claimed:
            claimed.release()


def _train(cfg: Any, build: Callable, resume: bool, group: Cluster, resume_dir: Path, budget: Budget,
           t0: float) -> Path:
    out, tc = Path(cfg.output_dir), cfg.train
    bf16 = use_bf16(tc.precision)
    job = build(cfg, group, resume_dir, resume, bf16)
    if budget.max_epochs is not None:  # the job knows its epoch's length once its data is read
        per_epoch = getattr(job, "batches_per_epoch", None)
        if not per_epoch:
            raise WarmstartError("train.max_epochs: this objective's epoch length is unknown; set train.max_steps, "
                                 "train.max_tokens or train.max_minutes")
        budget = budget.per_epoch(per_epoch / tc.grad_accum)
    place(job.model, channels_last=getattr(job, "channels_last", False))
    use_attention(job.model, tc.attention)
    broadcast_parameters(job.model, group.world)  # before sharding: every process cuts its shard from one tensor
    forward, optimizer, engine = parallelize(job.model, job.objective,
                                             lambda: make_optimizer(job.model, tc.lr, tc.weight_decay), group,
                                             tc.batch_size, tc.grad_accum, LoopSettings.max_grad_norm)
    state = LoopState(seconds=job.setup_seconds)  # a budget in minutes includes the set-up
    # early stopping (issue 21, small corpora): the held-out loss is followed; after `patience` checks more than
    # RISE above its best the run stops, and the folder gets the best check's weights
    watch, patience = getattr(job, "watch", None), getattr(tc, "patience", 0)
    keeper = KeepBest(watch[0], watch[1], patience, RISE) if watch and patience else None
    eval_every, per_pass = tc.eval_every, getattr(job, "steps_per_pass", None)
    if keeper and per_pass and per_pass < eval_every:  # a small corpus: validated once a pass at least, so a
        eval_every = per_pass  # rise is seen as it begins, not dozens of passes later

    def snapshot() -> dict | None:  # a collective when sharded; elsewhere rank 0 alone keeps a copy
        return cpu_copy(job.gather()) if group.main or group.sharded else None

    if resume:
        saved = load_training_state(resume_dir)
        if saved.get("data_key", job.data_key) != job.data_key:
            raise WarmstartError(f"--resume: the training data of {out} changed since the run started (the corpus or "
                                 "images differ); resume with the same data, or start a new output_dir")
        resume_optimizer(optimizer, engine, saved, resume_dir)
        state = LoopState(**saved["loop"])
        set_rng_state(saved["rng"])
        job.load_rng_state(saved)
        if keeper and saved.get("best"):
            keeper.load(saved["best"], saved.get("best_weights") or snapshot())
        if group.main:
            keep_log_until(out / LOG, state.step)
    elif group.main:
        shutil.rmtree(resume_dir, ignore_errors=True)
        (out / LOG).unlink(missing_ok=True)
    config_text = yaml.safe_dump(asdict(cfg), sort_keys=False)
    if group.main:
        replace_file(out / CONFIG_FILENAME, lambda tmp: tmp.write_text(config_text, encoding="utf-8"))
        print(f"warmstart pretrain: {job.describe()}, {'bf16' if bf16 else 'fp32'}"
              + (f", {group.world} processes" if group.world > 1 else "")
              + (f" ({group.mode}: sharded)" if group.sharded else "")
              + (f"; held-out {keeper.key} every {eval_every} steps (about one pass over this small corpus)"
                 if keeper and eval_every != tc.eval_every else "")
              # the first step compiles (48 s at BERT-base on an H200): said, so a bar at 0% is not taken for a hang
              + (f"; compiled ({tc.compile_mode}): the first step takes a minute or so, later runs reuse the cache"
                 if tc.compile else ""))

    def save_resumable(state: LoopState) -> dict:
        whole = {**job.gather(), "optimizer": full_optimizer_state(optimizer, group)}  # collective when sharded

        def write(folder: Path) -> None:
            job.write(folder, whole, {CONFIG_FILENAME: config_text}, final=False)
            best = {"best": keeper.state(), "best_weights": keeper.weights if keeper.step != state.step else None} \
                if keeper and keeper.value is not None else {}
            torch.save({"optimizer": whole["optimizer"], "loop": asdict(state), "rng": rng_state(),
                        "data_key": job.data_key, **job.rng_state(), **best}, folder / TRAINING_STATE)
        save_collectively(resume_dir, write, engine, out, group)
        return whole

    settings = LoopSettings(warmup_fraction=tc.warmup_fraction, schedule=tc.schedule, grad_accum=tc.grad_accum,
                            bf16=bf16, log_every=tc.log_every, eval_every=eval_every,
                            save_every_minutes=tc.save_every_minutes, desc="pretrain", unit=job.unit,
                            cluster=group, engine=engine, tracking=tracking_for(tc.report_to, out / TRACKING))
    def eval_fn(s: LoopState) -> tuple[dict, bool]:
        metrics = job.evaluate(forward)
        stop = keeper.update(metrics, s.step, snapshot) if keeper else False
        return metrics, agree_max(float(stop), group.world) > 0  # every process stops on the same step

    state = train_loop(job.model, optimizer, job.batches(state),
                       lambda b: job.step(forward, b, budget.progress(state.step, state.tokens, state.seconds)),
                       budget, settings, state, tokens_fn=job.count, eval_fn=eval_fn,
                       save_fn=save_resumable, log_path=out / LOG)
    stopped = bool(keeper and keeper.patience and keeper.bad >= keeper.patience)
    final = job.evaluate(forward)
    if keeper:  # the last weights compete too, and are kept unless they have really risen above the best
        keeper.update(final, state.step, snapshot)
    kept_best = bool(keeper and keeper.weights is not None and keeper.step != state.step
                     and keeper.risen(final.get(keeper.key, float("nan"))))
    whole = save_resumable(state) if group.main or group.sharded else None  # the last weights, to resume from
    if not group.main:
        barrier(group.world)
        return out
    kept, held_out = (keeper.weights, keeper.metrics) if kept_best else (whole, final)
    rate = round(state.tokens / max(state.seconds, 1e-9), 1)
    metrics = {"steps": state.step, job.unit: state.tokens, **job.summary(state),
               "train_seconds": round(state.seconds, 1), f"{job.unit}_per_s": rate,
               "wall_seconds": round(time.perf_counter() - t0, 1), **held_out,
               **({"early_stopping": early_stopping_record(keeper, final, state.step, stopped, kept_best)} if keeper
                  else {})}
    publish_into(out, lambda f: job.write(f, kept, {CONFIG_FILENAME: config_text,
                                                     "metrics.json": json.dumps(metrics, indent=2)}, final=True))
    print(f"warmstart pretrain: done, {state.step} steps, {state.tokens:,} {job.unit}, {rate:,.0f} {job.unit}/s; "
          + " ".join(f"{k}={v}" for k, v in final.items()) + f"\n  checkpoint: {out}")
    if kept_best:
        why = (f"it rose more than {RISE:.0%} above its best at {keeper.patience} checks, so the run stopped at "
               f"step {state.step}" if stopped else f"it ended more than {RISE:.0%} above its best (step {state.step})")
        print(f"  kept step {keeper.step}'s weights, the held-out {keeper.key}'s best ({keeper.value:g}, last "
              f"{final[keeper.key]:g}): {why}: more passes over-fitted this corpus")
    barrier(group.world)
    return out


def early_stopping_record(keeper: KeepBest, last: dict, step: int, stopped: bool, kept_best: bool) -> dict:
    """What metrics.json says about early stopping: which weights the folder holds and why."""
    return {"watched": keeper.key, "patience": keeper.patience, "best_step": keeper.step,
            "best": keeper.value, "last": last.get(keeper.key), "last_step": step, "stopped_early": stopped,
            "kept": "best" if kept_best else "last"}
