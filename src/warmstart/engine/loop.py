"""The one training loop: budgets, a schedule tied to the budget, bf16 autocast, progress, logging.

Pretraining and fine-tuning both call `train_loop` with their own `step_fn` (batch -> dict of scalar
losses/metrics), so budgets, schedules, mixed precision, progress and checkpoint timing live here once.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from warmstart.engine.distributed import Cluster, agree_max, average_gradients, mean_over_processes
from warmstart.engine.runtime import autocast, require_placed, to_device
from warmstart.engine.tracking import Tracker, Tracking
from warmstart.errors import WarmstartError

_BAR_LABEL: ContextVar[str | None] = ContextVar("warmstart_bar_label", default=None)


@contextlib.contextmanager
def bar_label(label: str) -> Iterator[None]:
    """Training bars inside this block are called `label`, not their run's own name: a fold of `warmstart auto`
    reads "auto fold 2/3", where the fine-tuning run it is would say "finetune (refit)" (its fit on all of the
    fold's training rows), which read as auto's own refit."""
    token = _BAR_LABEL.set(label)
    try:
        yield
    finally:
        _BAR_LABEL.reset(token)


@dataclass
class Budget:
    """The first limit reached ends the run; the learning-rate schedule ends exactly there."""

    max_steps: int | None = None
    max_tokens: int | None = None
    max_minutes: float | None = None
    max_epochs: float | None = None  # turned into steps by `per_epoch` once the job knows its epoch's length

    def __post_init__(self) -> None:
        if not any((self.max_steps, self.max_tokens, self.max_minutes, self.max_epochs)):
            raise WarmstartError("no training budget: set train.max_steps, train.max_tokens, train.max_minutes or "
                                 "train.max_epochs")

    def per_epoch(self, steps: float) -> Budget:
        """This budget with `max_epochs` as optimizer steps (`steps` per epoch, at least 1 in all)."""
        if self.max_epochs is None:
            return self
        cap = max(1, math.ceil(self.max_epochs * steps))
        return Budget(min(self.max_steps or cap, cap), self.max_tokens, self.max_minutes)

    def progress(self, step: int, tokens: int, seconds: float) -> float:
        """Fraction of the budget used, in [0, 1+)."""
        parts = [0.0]
        if self.max_steps:
            parts.append(step / self.max_steps)
        if self.max_tokens:
            parts.append(tokens / self.max_tokens)
        if self.max_minutes:
            parts.append(seconds / (60 * self.max_minutes))
        return max(parts)


@dataclass
class KeepBest:
    """Early stopping on a held-out figure: the best value seen, its step, its metrics and (a CPU copy of) its
    weights, and the evaluations since. `mode`: "min" for a loss, "max" for an accuracy. `patience`: evaluations
    worse than the best by more than `tolerance` (relative) before `update` says stop (0: never); one within it
    is a plateau and counts for nothing, unless `ties_count` (fine-tuning's validation accuracy: a score that
    stays flat is no progress, and a few hundred labels make many ties). A NaN is never a best and always counts
    as worse. `floor` ("max" mode): the score of a model that has learnt nothing yet (entity F1 0: no entity
    found; the commonest class's share); evaluations at or below it count for nothing until one rises above
    it: a model still on its starting plateau has not stopped improving, it has not started (seen on WNUT-16:
    small encoders and some MiniLMs sit at F1 0 for five epochs, then learn). On the plateau the latest
    evaluation is the best: the figure cannot tell them apart, and the latest has trained longest. A run that
    never rises thus keeps its last weights and its whole length, where keeping the first would refit for one
    epoch (seen on ACLSum sections, 500 labels: held-out accuracy never above the commonest class's 0.64, the
    first epoch kept, its refit predicted one class for every test row: 33.3% on each seed, 47.8% with this;
    benchmarks/results/fixed_budget.md)."""

    key: str
    mode: str = "min"
    patience: int = 0
    tolerance: float = 0.0
    ties_count: bool = False
    value: float | None = None
    step: int = 0
    bad: int = 0
    metrics: dict = field(default_factory=dict)
    weights: object | None = None
    floor: float | None = None

    def better(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return self.value is None or (value < self.value if self.mode == "min" else value > self.value)

    def risen(self, value: float) -> bool:
        """Worse than the best by more than the tolerance (a NaN, or no best yet to compare with, counts)."""
        return not math.isfinite(value) or self.value is None or self.ties_count or \
            abs(value - self.value) > self.tolerance * abs(self.value)

    def on_floor(self, value: float) -> bool:
        """Still on the starting plateau: this value and the best so far at or below the floor."""
        return (self.floor is not None and self.mode == "max" and math.isfinite(value) and value <= self.floor
                and (self.value is None or self.value <= self.floor))

    def update(self, metrics: dict, step: int, snapshot: Callable[[], object]) -> bool:
        """Record `metrics` of step `step`; `snapshot()` copies the weights when they are the new best.
        -> whether to stop (patience used up). Metrics without `key` change nothing."""
        if self.key not in metrics:
            return False
        value = float(metrics[self.key])
        if self.better(value) or self.on_floor(value):
            self.value, self.step, self.bad, self.metrics, self.weights = value, step, 0, dict(metrics), snapshot()
        elif self.risen(value):  # (on the floor, the branch above took it)
            self.bad += 1
        return bool(self.patience) and self.bad >= self.patience

    def state(self) -> dict:
        """What a resumable checkpoint keeps (the weights travel separately)."""
        return {"key": self.key, "value": self.value, "step": self.step, "bad": self.bad, "metrics": self.metrics}

    def load(self, saved: dict, weights: object | None) -> None:
        if saved.get("key") == self.key:
            self.value, self.step, self.bad = saved["value"], saved["step"], saved["bad"]
            self.metrics, self.weights = dict(saved["metrics"]), weights


def cpu_copy(tree: object) -> object:
    """A CPU copy of nested dicts of tensors (a job's gathered weights), tensors that share storage (tied
    weights) kept shared, so the copy saves as the original would."""
    memo: dict[tuple, torch.Tensor] = {}

    def copy(x: object) -> object:
        if isinstance(x, dict):
            return {k: copy(v) for k, v in x.items()}
        if isinstance(x, torch.Tensor):
            key = (x.device, x.untyped_storage().data_ptr(), x.storage_offset(), tuple(x.shape), x.dtype)
            if key not in memo:
                memo[key] = x.detach().to("cpu", copy=True)
            return memo[key]
        return x

    return copy(tree)


def lr_factor(progress: float, warmup_fraction: float, schedule: str) -> float:
    """Linear warm-up, then decay to zero at progress 1 (the end of the budget)."""
    if warmup_fraction > 0 and progress < warmup_fraction:
        return max(progress / warmup_fraction, 1e-3)
    if schedule == "constant":
        return 1.0
    rest = min(1.0, (progress - warmup_fraction) / max(1e-8, 1 - warmup_fraction))
    if schedule == "linear":
        return max(0.0, 1.0 - rest)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * rest))
    raise WarmstartError(f"train.schedule: unknown schedule '{schedule}'; use linear, cosine or constant")


@dataclass
class LoopState:
    """Everything the loop needs to continue exactly where it stopped (saved in checkpoints)."""

    step: int = 0
    tokens: int = 0
    seconds: float = 0.0
    epoch: int = 0
    index: int = 0  # next batch of `epoch`
    extra: dict = field(default_factory=dict)


@dataclass
class LoopSettings:
    """How the loop runs (the learning rates themselves live in the optimizer's groups, as `base_lr`)."""

    warmup_fraction: float = 0.06
    schedule: str = "linear"
    grad_accum: int = 1
    bf16: bool = True
    max_grad_norm: float = 1.0
    log_every: int = 10
    eval_every: int | None = None
    save_every_minutes: float | None = None
    desc: str = "training"
    unit: str = "tokens"  # what `tokens_fn` counts (tokens, images): names the throughput in logs and the bar
    cluster: Cluster = field(default_factory=Cluster)  # multi-process data parallelism (distributed.py)
    engine: object | None = None  # a DeepSpeed engine: it does backward, reduction, clipping and the step
    tracking: Tracking | None = None  # an experiment tracker that gets the logged records (tracking.py)


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float,
                   param_lrs: dict[int, float] | None = None) -> torch.optim.AdamW:
    """AdamW without decay on biases and LayerNorm weights; fused where this torch supports it."""
    groups: dict[tuple[float, float], list] = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        group_lr = (param_lrs or {}).get(id(p), lr)
        decay = weight_decay if p.ndim >= 2 else 0.0
        groups.setdefault((group_lr, decay), []).append(p)
    param_groups = [{"params": ps, "lr": glr, "base_lr": glr, "weight_decay": wd} for (glr, wd), ps in groups.items()]
    try:
        return torch.optim.AdamW(param_groups, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(param_groups, lr=lr, foreach=True)


def train_loop(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterator[tuple[int, int, dict[str, torch.Tensor]]],
    step_fn: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]],
    budget: Budget,
    settings: LoopSettings,
    state: LoopState | None = None,
    tokens_fn: Callable[[dict[str, torch.Tensor]], int] = lambda b: int(b["input_ids"].numel()),
    eval_fn: Callable[[LoopState], tuple[dict, bool]] | None = None,
    save_fn: Callable[[LoopState], None] | None = None,
    log_path: Path | None = None,
) -> LoopState:
    """Train until the budget runs out (or `eval_fn` asks to stop). Returns the final state.

    `eval_fn(state) -> (metrics, stop)` runs every `eval_every` steps; `save_fn(state)` every
    `save_every_minutes`, on rank 0 (on every process when the weights are sharded: it gathers them).
    Timing counts everything, evaluation included, so a budget in minutes is a wall-clock promise.
    """
    state = state or LoopState()
    model.train()
    require_placed(model, "train_loop")  # the batches go to device(): the weights must be there too
    world, main = settings.cluster.world, settings.cluster.main
    # what the optimizer updates (gradual unfreezing turns some on later): reduced across processes and clipped
    params = [p for g in optimizer.param_groups for p in g["params"]]
    log = open(log_path, "a", encoding="utf-8") if log_path and main else None
    tracker = Tracker(settings.tracking) if settings.tracking and main else None
    start = time.perf_counter() - state.seconds
    last_save = time.perf_counter()
    window = {"tokens": 0, "t": time.perf_counter(), "sums": {}, "n": 0}
    # In a log file (CI, nohup) a bar redrawn every 0.1 s is noise: redraw every 10 s there.
    bar = tqdm(total=100, desc=_BAR_LABEL.get() or settings.desc, unit="%", dynamic_ncols=True, disable=not main,
               mininterval=0.1 if sys.stderr.isatty() else 10.0,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}",
               initial=int(100 * budget.progress(state.step, state.tokens, state.seconds)))

    def write(record: dict) -> None:
        if log:
            log.write(json.dumps(record) + "\n")
            log.flush()
        if tracker:
            tracker.log(record)

    stop = False
    try:
        while not stop:
            # processes agree on the progress, so a time budget ends on the same step everywhere
            progress = agree_max(budget.progress(state.step, state.tokens, time.perf_counter() - start), world)
            if progress >= 1.0:
                break
            factor = lr_factor(progress, settings.warmup_fraction, settings.schedule)
            for g in optimizer.param_groups:
                g["lr"] = g["base_lr"] * factor
            for _ in range(settings.grad_accum):
                epoch, index, batch = next(batches)
                counted = tokens_fn(batch)  # on the host batch: counting on the device would wait for it
                batch = to_device(batch, non_blocking=True)
                with autocast(settings.bf16):
                    out = step_fn(batch)
                if settings.engine is None:
                    (out["loss"] / settings.grad_accum).backward()
                else:  # loss already divided here; the engine steps at the accumulation boundary only
                    settings.engine.backward(out["loss"] / settings.grad_accum, scale_wrt_gas=False)
                    settings.engine.step()
                state.tokens += counted
                state.epoch, state.index = epoch, index + 1
                window["tokens"] += counted
                for k, v in out.items():
                    if v.ndim == 0:  # scalars are logged (tensors, e.g. targets, are for tests), summed where
                        # they are: reading one back each step would make a GPU's host wait for it every step
                        window["sums"][k] = window["sums"].get(k, 0.0) + v.detach().float()
                window["n"] += 1
            if settings.engine is None:
                if not settings.cluster.sharded:  # FSDP reduce-scatters the gradients itself
                    average_gradients(params, world)
                if settings.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.seconds = time.perf_counter() - start

            if state.step % settings.log_every == 0:
                now = time.perf_counter()
                rate = window["tokens"] / max(1e-9, now - window["t"])
                means = mean_over_processes({k: float(v) / window["n"] for k, v in window["sums"].items()}, world)
                write({"step": state.step, "tokens": state.tokens, "seconds": round(state.seconds, 3),
                       "lr": optimizer.param_groups[0]["lr"], f"{settings.unit}_per_s": round(rate, 1), **means})
                bar.set_postfix_str(" ".join(f"{k}={v:.3f}" for k, v in means.items() if k != "loss")
                                    + f" loss={means['loss']:.3f} {settings.unit[:3]}/s={rate:,.0f}", refresh=False)
                window = {"tokens": 0, "t": now, "sums": {}, "n": 0}
            if eval_fn and settings.eval_every and state.step % settings.eval_every == 0:
                metrics, stop = eval_fn(state)
                model.train()
                write({"step": state.step, "tokens": state.tokens, "seconds": round(state.seconds, 3), **metrics})
            due = bool(save_fn and settings.save_every_minutes
                       and time.perf_counter() - last_save > 60 * settings.save_every_minutes)
            if settings.cluster.sharded:  # gathering sharded weights is collective: all save, or none
                due = agree_max(float(due), world) > 0
            if due and (main or settings.cluster.sharded):
                save_fn(state)
                last_save = time.perf_counter()
            # update() (not refresh()) so that the redraw interval above is respected
            bar.update(min(100, int(100 * budget.progress(state.step, state.tokens, state.seconds))) - bar.n)
    finally:
        bar.close()
        if log:
            log.close()
        if tracker:
            tracker.close()
    state.seconds = time.perf_counter() - start
    return state
