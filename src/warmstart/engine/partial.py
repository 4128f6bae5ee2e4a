"""Results kept as they finish, so that a killed long job resumes where it stopped: `warmstart rank`'s
candidates (select/rank.py) and `warmstart predict`'s chunks of rows (prediction.py).

Each finished piece is appended, flushed to disk, to a hidden sibling of the job's output
(`.rank.csv.partial.jsonl`, the name replace_file's temporary files take beside it) under a key of everything it
depends on: the settings, and the size and modification time of every file it read (the checkpoint, the data).
The same command run again finds its finished pieces there and computes only the rest; a changed setting, a
retrained checkpoint or an edited table changes the key, and that piece is computed again. The job removes the
sibling once its output is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def partial_path(out: Path) -> Path:
    """The finished pieces of a job whose output is `out`."""
    return out.with_name(f".{out.name}.partial.jsonl")


def files_signature(paths: list[str | Path]) -> list:
    """(path, size, mtime_ns) of every file at `paths` (a folder: each file below it), sorted; a path that is not
    on disk (a hub id) stands for itself. Stat only: hashing every checkpoint's weights would cost seconds each."""
    out: list = []
    for p in map(Path, paths):
        if not p.exists():
            out.append(str(p))
            continue
        for f in sorted([p] if p.is_file() else (f for f in p.rglob("*") if f.is_file())):
            st = f.stat()
            out.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    return out


def data_paths(data: Mapping) -> list[str]:
    """The strings of a data config section (lists included) that name something on disk."""
    values = [v for value in data.values() for v in (value if isinstance(value, list | tuple) else [value])]
    return [v for v in values if isinstance(v, str) and v and Path(v).exists()]


def files_key(settings: Mapping, paths: list[str | Path]) -> str:
    """sha256 of the settings (JSON-able) and of every file at `paths`, as files_signature gives them."""
    text = json.dumps({"settings": settings, "files": files_signature(paths)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def candidate_key(settings: Mapping, candidate: str | Path) -> str:
    """files_key of the settings and the candidate's name, over the candidate's files (a checkpoint folder)."""
    return files_key({"settings": settings, "candidate": str(candidate)}, [candidate])


def finished(path: Path) -> dict[str, Any]:
    """key -> the row a run kept under it (a line cut by a kill is skipped)."""
    rows: dict[str, Any] = {}
    if not path.is_file():
        return rows
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                entry = json.loads(line)
                rows[entry["key"]] = entry["row"]
            except (ValueError, KeyError, TypeError):
                continue
    return rows


def _plain(value: Any) -> Any:
    """numpy arrays and scalars as lists and numbers (their exact values: float32 is exact in float64)."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def record(path: Path, key: str, row: Any) -> bool:
    """Append one finished piece's row (flushed to disk: a kill after it keeps it). Keeping it is a convenience:
    where the folder cannot be written, the job goes on (its output's own write then says why). -> kept?"""
    import os

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "row": row}, default=_plain) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        return False
    return True


class KeptChunks:
    """A job over `total` items in chunks of `size`, each chunk's results kept (under `key` and the chunk's place)
    as it finishes and read back, not computed, when the same job runs again. `path` None: nothing is kept.

        chunks = KeptChunks(partial_path(out), files_key(settings, [checkpoint, input_file]))
        probs = chunks(len(rows), 2048, lambda start, stop: model_probs(rows[start:stop]), progress)

    `compute(start, stop)` -> the results of items [start, stop), one an item, in order (JSON-able, or numpy);
    read back they are lists. `skipped(n)` hears of the n items read back (a progress bar)."""

    def __init__(self, path: Path | None, key: str = "", name: str = "") -> None:
        self.path, self.key, self.name, self.restored = path, key, name, 0
        kept = finished(path) if path is not None else {}
        self.kept = {k: v for k, v in kept.items() if k.startswith(f"{key}:")}
        if kept and not self.kept:  # a stopped run on another input or checkpoint: nothing of it applies
            path.unlink(missing_ok=True)

    def __call__(self, total: int, size: int, compute: Callable[[int, int], Sequence],
                 skipped: Callable[[int], None] = lambda n: None) -> list:
        spans = [(start, min(start + size, total)) for start in range(0, total, size)]
        keys = [f"{self.key}:{total}:{start}:{stop}" for start, stop in spans]
        restored = sum(stop - start for (start, stop), k in zip(spans, keys, strict=True) if k in self.kept)
        if restored:
            print(f"{self.name}: resuming a stopped run: {restored:,} of {total:,} items read back from "
                  f"{self.path}", flush=True)
        out: list = []
        for (start, stop), k in zip(spans, keys, strict=True):
            if k in self.kept:
                out.extend(self.kept[k])
                self.restored += stop - start
                skipped(stop - start)
                continue
            rows = compute(start, stop)
            if len(rows) != stop - start:
                raise ValueError(f"a chunk of {stop - start} items gave {len(rows)} results")
            if self.path is not None:
                record(self.path, k, rows)
            out.extend(rows)
        return out
