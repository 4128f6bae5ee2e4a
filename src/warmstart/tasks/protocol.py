"""The honest few-label protocol, for every task: "N labels" means N labelled examples in all.

By default (`train.patience: 0`, a fixed budget, as HF's Trainer and SetFit) there is nothing to choose: one fit
on all N for the whole budget (benchmarks/results/fixed_budget.md: stopping on a held-out fifth of 100 labels
ended 3.7 to 16 points lower on four classification tasks (full, LP-FT, LoRA) and NER).

With early stopping (`train.patience` > 0): Phase 1 (select) trains on the N minus a held-out share and chooses on
that share: when to stop, and for LP-FT whether fine-tuning beat the probe. Phase 2 (refit) trains a fresh model on
all N for the chosen number of epochs, with nothing left to choose with (a probe chooses its C by cross-validation
inside the N). With an explicit dev set (`data.validation_labels`) phase 1 chooses on it and there is no refit:
that is the user's choice, reported as "N train + M validation". Each task supplies `train_once(train, validation,
steps, phase)`, which builds a fresh model and fits it (tasks/finetune.fit does the loop); this module decides the
phases.

The refit is checked where the task gives a `score`: nothing is left to choose with, but the held-out share is
now training data, so a refit that scores clearly below the selection's model on it (which had never seen it)
has not learnt what the selection did: it diverged (seen: LP-FT on an adapted MiniLM at lr 1e-3 reached 0.83 on
its 100 held-out labels, then its refit on all 500 predicted the majority class for every test row). The
selection's model is kept then, and metrics.json says so. "Clearly": by more than REFIT_TOLERANCE of the
selection's score, since that score is the best of several evaluations on those same rows (optimistic), and the
check is there to catch a failed fit, not to choose between two healthy ones.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from warmstart.data.sample import Sample
from warmstart.tasks.resume import CURRENT_RUN, load_selection, save_selection

# strategies with nothing to stop early: one fit on all N, the head's C chosen by cross-validation inside them
ONE_FIT = {"linear_probe": "the probe's C by cross-validation inside them",
           "setfit": "SetFit's pairs drawn from them for a fixed number of steps, the head's C by cross-validation "
                     "inside them"}
TrainOnce = Callable[[Any, Any, "int | None", str], tuple[Any, dict]]  # -> (model, fitted)
Score = Callable[[Any, Any], float]  # (model, rows) -> the selection's metric (`val_accuracy`) on those rows
REFIT_TOLERANCE = 0.05  # a refit scoring below (1 - this) x the selection's score on the held-out share: rejected


def refit_steps(fitted: dict, n_selected_on: int, n_all: int) -> int:
    """The refit's length: the chosen epochs over all N. 0 when nothing beat the starting point (LP-FT's probe
    kept), so the refit is the probe alone; the probe-only strategy has no steps to choose."""
    best = int(fitted.get("best_step") or 0)
    return 0 if best == 0 else max(1, round(best * n_all / max(1, n_selected_on)))


def select_then_refit(sample: Sample, strategy: str, train_once: TrainOnce, out: Path | None,
                      score: Score | None = None, metric: str = "val_accuracy", early_stopping: bool = True
                      ) -> tuple[Any, dict]:
    """Run the protocol's phases with a task's `train_once`. `score` (optional): the task's `metric` of a model
    on some rows, to check the refit against the selection (module docstring). `early_stopping=False`
    (`train.patience: 0`): a fixed budget, HF Trainer's and SetFit's default; without a dev set nothing is held
    out, one fit on all N for the whole budget keeps its last weights (with one, the dev set's best is kept).
    -> (the final model, its metrics: the selection's choices (val_*, best_step), the refit's length, and how
    the labels were used)"""
    counts = sample.counts()
    held = len(sample.validation) > 0
    if strategy in ONE_FIT and not sample.extra:  # nothing to stop: cross-validate C on all N, one fit
        model, fitted = train_once(sample.labelled, None, 0, "refit")
        return model, {**fitted, **counts, "held_out_labels": 0,  # nothing was held out: one fit on all N
                       "protocol": f"{len(sample.labelled)} labels, {ONE_FIT[strategy]}"}
    if not early_stopping and not sample.extra:  # nothing to choose: the whole budget on all N
        model, fitted = train_once(sample.labelled, None, None, "refit")
        return model, {**fitted, **counts, "held_out_labels": 0,
                       "protocol": f"{len(sample.labelled)} labels, all trained on for the whole budget "
                                   "(train.patience 0: no early stopping, nothing held out)"}
    ctx = CURRENT_RUN.get()
    fitted = load_selection(out) if out is not None and ctx is not None and ctx.resume else None
    model = None
    if fitted is None:
        model, fitted = train_once(sample.train, sample.validation if held else None, None, "select")
        if out is not None and sample.refit and held:
            save_selection(out, fitted, ctx)
    if not (sample.refit and held):
        return model, {**fitted, **counts}
    selected = model
    steps = refit_steps(fitted, len(sample.train), len(sample.labelled))
    model, refitted = train_once(sample.labelled, None, steps, "refit")
    chosen = {k: v for k, v in fitted.items() if k.startswith("val_") or k.startswith("probe_") or k == "best_step"}
    result = {**refitted, **chosen, "selection_steps": fitted.get("steps"), "refit_steps": steps, **counts}
    if score is None or fitted.get(metric) is None:
        return model, result
    before, after = float(fitted[metric]), round(float(score(model, sample.validation)), 4)
    if after >= before - REFIT_TOLERANCE * abs(before):
        return model, {**result, "refit_check": after}
    if selected is None:  # a resumed run did not keep the selection's model: the same seed trains it again
        selected, _ = train_once(sample.train, sample.validation, None, "select")
    n, k = len(sample.labelled), len(sample.validation)
    return selected, {**fitted, **counts, "refit_steps": steps, "refit_check": after, "refit_rejected": True,
                      "protocol": f"{n} labels: {n - k} to train, {k} held out to choose; the refit on all {n} "
                                  f"was rejected ({metric} {after} on the {k} held-out labels after training on "
                                  f"them, clearly below the selection's {before} without them), so the model is the "
                                  "selection's"}


NO_TEST = ("no test split: nothing held out was scored (val_* numbers, with early stopping, come from the split it "
           "chose on and are optimistic); add test rows, or let a seeded split carve them: data.split_column=null")


_SCORED_BY_CALLER: ContextVar[bool] = ContextVar("warmstart_scored_by_caller", default=False)


@contextmanager
def scored_by_caller() -> Iterator[None]:
    """Runs inside this block are scored by whoever runs them (`warmstart auto`'s refit on all N labels: its
    score is the cross-validation inside them). Their metrics still say that no split was scored; the warning
    is not printed, since its advice (test rows, `data.split_column`) is for a fine-tuning run of one's own."""
    token = _SCORED_BY_CALLER.set(True)
    try:
        yield
    finally:
        _SCORED_BY_CALLER.reset(token)


def caller_scores() -> bool:
    """Inside `scored_by_caller`: the caller brings its own score and rivals (auto's out-of-fold TF-IDF), so a
    run need not fit the rival it reports beside itself."""
    return _SCORED_BY_CALLER.get()


def scored(metrics: dict, has_test: bool) -> dict:
    """Say which split a run's metrics come from. A run whose data has no test rows reports no test metric at
    all, and says so: the early-stopping split is never called 'test'."""
    if has_test:
        return {**metrics, "scored_split": "test"}
    if not _SCORED_BY_CALLER.get():
        print(f"warning: {NO_TEST}", file=sys.stderr)
    return {**metrics, "scored_split": "none", "warning": NO_TEST}
