"""What every pretraining run shares, text or images: the run folder, the budget, the processes, resume."""

from __future__ import annotations

from pathlib import Path

from warmstart.engine.checkpoint import RESUME_DIR, TRAINING_STATE, recover_folder
from warmstart.engine.distributed import barrier
from warmstart.errors import WarmstartError


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
