"""A ranking's candidates kept as they finish, so that a killed `warmstart rank` resumes where it stopped.

Encoding the labelled sample is most of a candidate's cost, and a ranking of many large checkpoints on a CPU is
a long job. Each scored candidate's row is appended to a
hidden sibling of the output table (`.rank.csv.partial.jsonl`, the name replace_file's temporary files take
beside it) under a key of everything its scores depend on: the resolved config, the scores asked for, how the
features are computed (bf16 or not), and the size and modification time of every file of the candidate and of
the data. The same command run again finds its finished candidates there and scores only
the rest; a changed setting, a retrained checkpoint or an edited table changes the key, and that candidate is
scored again. The sibling goes once the table is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path


def partial_path(out: Path) -> Path:
    """The finished candidates of a ranking being written to `out`."""
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


def candidate_key(settings: Mapping, candidate: str | Path) -> str:
    """sha256 of the settings (JSON-able) and of the candidate's files, as files_signature gives them."""
    text = json.dumps({"settings": settings, "candidate": str(candidate),
                       "files": files_signature([candidate])}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def finished(path: Path) -> dict[str, dict]:
    """key -> the row a run scored under it (a line cut by a kill is skipped)."""
    rows: dict[str, dict] = {}
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


def record(path: Path, key: str, row: dict) -> bool:
    """Append one finished candidate's row (flushed to disk: a kill after it keeps it). Keeping it is a convenience:
    where the folder cannot be written, the ranking goes on (the table's own write then says why). -> kept?"""
    import os

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "row": row}, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        return False
    return True
