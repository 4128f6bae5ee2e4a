"""`warmstart auto`'s bookkeeping: the budget (a clock and each stage's share), the resumable state file, and
the progress lines.

The first stages end by a deadline, a cumulative share of the budget, so time a stage leaves unused flows to
the next one; the selection then runs pipelines while each one's folds leave time for the winner's measured
refit and the report (autopilot/run.py: AutoRun.select_left); the select share only sizes the folds. The clock
counts the minutes that earlier runs of the same folder spent (kept in the state file), so a killed run that
resumes still ends within the budget it was given.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from warmstart.engine.outputs import replace_file
from warmstart.errors import WarmstartError

# the budget's shares, in order; a stage's deadline is the sum of the shares up to and including its own
SHARES = {"rank": 0.08, "unlabelled": 0.37, "select": 0.40, "refit": 0.10, "report": 0.05}
STAGES = tuple(SHARES)
STATE_FILE = "auto_state.json"
SCRATCH = "warmstart pretrained"  # the encoder auto pretrains from scratch on the unlabelled text


def parse_budget(text: str | float) -> float:
    """'30m', '1h', '90s', '1h30m' or a bare number of minutes -> seconds (at least a minute)."""
    if isinstance(text, (int, float)):
        seconds = float(text) * 60
    else:
        t = str(text).strip().lower()
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?:in)?)?\s*(?:(\d+(?:\.\d+)?)s)?", t)
        if re.fullmatch(r"\d+(\.\d+)?", t):
            seconds = float(t) * 60
        elif parts and any(parts.groups()):
            h, m, s = (float(g) if g else 0.0 for g in parts.groups())
            seconds = h * 3600 + m * 60 + s
        else:
            raise WarmstartError(f"--budget {text}: give a duration such as 15m, 1h or 90s")
    if not seconds >= 60 or seconds == float("inf"):
        raise WarmstartError(f"--budget {text}: at least one minute (1m); auto needs time to rank and fit")
    return seconds


class Clock:
    """The budget's clock: seconds spent so far (this run's and, after a resume, the earlier runs'), and each
    stage's time left."""

    def __init__(self, budget_s: float, spent_s: float = 0.0):
        self.budget = budget_s
        self._start = time.monotonic() - spent_s

    def spent(self) -> float:
        return time.monotonic() - self._start

    def left(self) -> float:
        return self.budget - self.spent()

    def deadline(self, stage: str) -> float:
        """Seconds since the start by which `stage` ends."""
        return self.budget * sum(SHARES[s] for s in STAGES[:STAGES.index(stage) + 1])

    def stage_left(self, stage: str) -> float:
        return self.deadline(stage) - self.spent()

    def line(self, stage: str, what: str) -> str:
        """A progress line: the stage, what runs, the time left of the budget."""
        return (f"[auto {STAGES.index(stage) + 1}/{len(STAGES)} {stage}] {what} "
                f"({max(0.0, self.left()) / 60:.1f} of {self.budget / 60:.0f} min left)")


class State:
    """What a run has decided and measured, written after each step (atomically) so that a killed run resumes
    where it stopped: `settings` (what the run was asked; a resume must ask the same), `spent_s`, and one entry
    per finished step. A finished run keeps its state: run again, it reports again without redoing anything."""

    def __init__(self, folder: Path, settings: dict, fresh: bool = False):
        self.path = folder / STATE_FILE
        self.data: dict[str, Any] = {"settings": settings, "spent_s": 0.0, "steps": {}}
        if self.path.is_file() and not fresh:  # fresh (--overwrite): every decision made again
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            changed = sorted(k for k in set(settings) | set(saved.get("settings", {}))
                             if k != "budget_s" and settings.get(k) != saved["settings"].get(k))
            if changed:
                raise WarmstartError(f"{folder}: holds an auto run asked for other {', '.join(changed)}; run it "
                                     "again with the same ones to resume it, or choose another --output-dir "
                                     "(or pass --overwrite)")
            self.data = {**saved, "settings": settings}

    @property
    def spent(self) -> float:
        return float(self.data["spent_s"])

    def get(self, step: str) -> Any:
        return self.data["steps"].get(step)

    def put(self, step: str, value: Any, clock: Clock) -> Any:
        self.data["steps"][step] = value
        self.save(clock)
        return value

    def save(self, clock: Clock) -> None:
        self.data["spent_s"] = round(clock.spent(), 2)
        text = json.dumps(self.data, indent=1, default=_plain)
        replace_file(self.path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _plain(value: Any) -> Any:
    """numpy scalars and arrays in the state file as plain JSON."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value))


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "encoder"


def candidate_names(candidates: list[str]) -> dict[str, str]:
    """{display name: folder} for the given candidates plus the installed MiniLM (when not given already)."""
    from warmstart.models.common import minilm_folder

    out: dict[str, str] = {}
    try:
        minilm = str(minilm_folder())
    except WarmstartError:
        minilm = None
    for folder in candidates:
        name = "MiniLM" if minilm and Path(folder).resolve() == Path(minilm).resolve() else Path(folder).name
        base, i = name, 2
        while name in out:
            name, i = f"{base}-{i}", i + 1
        out[name] = folder
    if minilm and minilm not in {str(Path(f).resolve()) for f in out.values()} and "MiniLM" not in out:
        out["MiniLM"] = minilm
    return out
