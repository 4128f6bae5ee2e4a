"""A fine-tuning run's identity and resumable state: what it reads (its inputs, which its folder must not overlap
and whose hashes its marker records), the run `run_task` is running (RunContext, so `fit` knows about
`--resume` without every task passing it along), and the state `fit` saves beside the run folder and resumes."""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from warmstart.config import CONFIG_FILENAME
from warmstart.engine.checkpoint import (
    TRAINING_STATE,
    atomic_folder,
    load_training_state,
    rng_state,
    set_rng_state,
)
from warmstart.engine.loop import KeepBest, LoopState
from warmstart.engine.outputs import write_marker


@dataclass
class RunContext:
    """The fine-tuning run `run_task` is running: its config (saved with resumable state) and whether it resumes.
    `fit` reads it, so that no task's runner has to pass `--resume` along."""

    cfg: Any
    resume: bool = False


CURRENT_RUN: ContextVar[RunContext | None] = ContextVar("warmstart_run", default=None)


RESUME = "resume"  # staging(out, RESUME): a fine-tuning run's resumable state, beside its folder


# what may change between a fine-tuning run and its --resume: its budget, saving and tracking
RESUMABLE_CHANGES = {"output_dir", "train.max_steps", "train.max_epochs", "train.max_minutes",
                     "train.save_every_minutes", "train.report_to"}


def save_resumable(folder: Path, model, optimizer, best: KeepBest, state: LoopState, calls: int,
                    generators: tuple[torch.Generator, ...], ctx: RunContext | None) -> None:
    """Everything `fit` needs to continue exactly: the weights now and the best so far, the optimizer, the loop's
    position, every RNG (the global ones: dropout; `generators`: e.g. image augmentation), the step counter."""
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
        save_file({k: v.detach().clone().contiguous() for k, v in best.weights.items()}, tmp / "best.safetensors")
        torch.save({"optimizer": optimizer.state_dict(), "loop": asdict(state), "rng": rng_state(), "calls": calls,
                    "generators": [g.get_state() for g in generators],
                    "best": best.state()}, tmp / TRAINING_STATE)
        if ctx is not None:
            (tmp / CONFIG_FILENAME).write_text(yaml.safe_dump(asdict(ctx.cfg), sort_keys=False), encoding="utf-8")
            write_marker(tmp, "finetune", {k: v for k, v in finetune_inputs(ctx.cfg).items() if k.startswith("data.")})
    atomic_folder(folder, write)


def load_resumable(folder: Path, model, optimizer, best: KeepBest, generators: tuple[torch.Generator, ...]
                    ) -> tuple[LoopState, int]:
    from safetensors.torch import load_file

    saved = load_training_state(folder)
    model.load_state_dict(load_file(folder / "model.safetensors"))
    kept = saved["best"]
    if "key" not in kept:  # a state saved before fine-tuning moved onto KeepBest: {score, step, bad}
        score = kept["score"]
        kept = {"key": best.key, "value": score if math.isfinite(score) else None, "step": kept["step"],
                "bad": kept["bad"], "metrics": {}}
    best.load(kept, load_file(folder / "best.safetensors"))
    optimizer.load_state_dict(saved["optimizer"])
    set_rng_state(saved["rng"])
    for g, s in zip(generators, saved["generators"], strict=True):
        g.set_state(s)
    return LoopState(**saved["loop"]), int(saved["calls"])


def finetune_inputs(cfg) -> dict[str, Any]:
    """What a fine-tuning run reads from disk (text or images), which its output folder must not overlap and
    whose content hashes its marker records."""
    return {"init": None if cfg.init == "scratch" else cfg.init, "tokenizer": getattr(cfg, "tokenizer", None),
            "architecture": getattr(cfg, "architecture", None), "data.path": getattr(cfg.data, "path", None),
            **{f"data.sources[{i}]": s for i, s in enumerate(getattr(cfg.data, "sources", []))},
            **{f"data.test_sources[{i}]": s for i, s in enumerate(getattr(cfg.data, "test_sources", []))}}


SELECTED = "selected"  # staging(out, f"{RESUME}-{SELECTED}"): the selection phase's outcome, once it is done


def phase_folder(out: Path, phase: str) -> Path:
    """Where a phase (select, refit; `selected`: the selection's outcome) keeps its state beside the run folder."""
    return out.parent / f".{out.name}.{RESUME}-{phase}"


def saved_states(out: Path) -> list[Path]:
    """The states a stopped run left beside `out` (each with its config, for the --resume check)."""
    return [f for f in (phase_folder(out, p) for p in ("select", SELECTED, "refit")) if (f / CONFIG_FILENAME).is_file()]


def save_selection(out: Path, fitted: dict, ctx: RunContext | None) -> None:
    """Record that the selection phase finished (its outcome), so a resumed run goes straight to the refit."""
    import json

    def write(tmp: Path) -> None:
        (tmp / "fitted.json").write_text(json.dumps(fitted), encoding="utf-8")
        if ctx is not None:
            (tmp / CONFIG_FILENAME).write_text(yaml.safe_dump(asdict(ctx.cfg), sort_keys=False), encoding="utf-8")
            write_marker(tmp, "finetune", {k: v for k, v in finetune_inputs(ctx.cfg).items() if k.startswith("data.")})
    atomic_folder(phase_folder(out, SELECTED), write)


def load_selection(out: Path) -> dict | None:
    import json

    path = phase_folder(out, SELECTED) / "fitted.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
