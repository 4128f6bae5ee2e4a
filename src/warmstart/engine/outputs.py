"""Output folders are owned: a run writes only into a folder it may replace, and never two runs at once.

Every run folder warmstart writes carries `warmstart_run.json` (its kind: pretrain, finetune, baseline, study,
demo; the warmstart version; the content hashes of its inputs). `claim(out, kind, inputs)` is the one gate,
called before any work:
  - `out` may not be the current folder or contain it, nor overlap (equal, inside, or contain) an input: the
    init checkpoint, the labelled data, the corpus;
  - an existing, non-empty `out` must be a folder a warmstart run of the same kind wrote; anything else needs
    `overwrite` (the CLI's `--overwrite`), as `Trainer` needs `overwrite_output_dir`;
  - a lock beside `out` (`.NAME.lock`, `flock`) stops a second run into the same folder at its start; the
    kernel drops the lock when its process dies, so a killed run never leaves it stuck.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from warmstart.errors import WarmstartError

RUN_MARKER = "warmstart_run.json"
LOCK_RETRIES = 30  # 3 s
KINDS = ("pretrain", "finetune", "baseline", "study", "demo", "auto")


def _resolve(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


_HASHES: dict[tuple, str] = {}  # (file, size, mtime) -> sha256: a study hashes the same data for every cell


def _sha256(f: Path) -> str:
    stat = f.stat()
    key = (str(f.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(f, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def file_hash(path: str | Path) -> str | None:
    """sha256 of a file, or of a folder's files (names and contents, sorted); None for what is not on disk
    (a hub id, 'scratch'). A file unchanged since this process last read it (same size and mtime) is not read
    again."""
    p = Path(path)
    if not p.exists():
        return None
    if p.is_file():
        return _sha256(p)
    h = hashlib.sha256()
    for f in sorted(f for f in p.rglob("*") if f.is_file()):
        h.update(str(f.relative_to(p)).encode())
        h.update(_sha256(f).encode())
    return h.hexdigest()


def kind_of(folder: Path) -> str | None:
    """What wrote `folder`: its marker's kind; for folders written before markers, what their files say."""
    marker = folder / RUN_MARKER
    if marker.is_file():
        try:
            return json.loads(marker.read_text(encoding="utf-8")).get("kind")
        except (ValueError, OSError):
            return None
    if (folder / "study.yaml").is_file():
        return "study"
    if (folder / "report.md").is_file() and (folder / "pretrained").is_dir():
        return "demo"
    saved = folder / "warmstart_config.yaml"
    if saved.is_file():
        try:
            keys = set(yaml.safe_load(saved.read_text(encoding="utf-8")) or {})
        except (yaml.YAMLError, OSError):
            return None
        return "finetune" if "init" in keys else "pretrain"
    if (folder / "metrics.json").is_file() and len(list(folder.iterdir())) == 1:
        return "baseline"
    return None


def marker_text(kind: str, inputs: Mapping[str, str | Path | None] = ()) -> str:
    """The marker's JSON: kind, version and each input's content hash (what study reuse compares)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("warmstart")
    except PackageNotFoundError:
        ours = "unknown"
    hashes = {key: {"path": str(value), "sha256": file_hash(value)} for key, value in dict(inputs).items() if value}
    return json.dumps({"kind": kind, "warmstart": ours, "inputs": hashes}, indent=2)


def write_marker(folder: Path, kind: str, inputs: Mapping[str, str | Path | None] = ()) -> None:
    text = marker_text(kind, inputs)  # whole or not at all: a cut marker would disown the folder
    replace_file(Path(folder) / RUN_MARKER, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def recorded_inputs(folder: Path) -> dict:
    """{input key: sha256} as the marker of `folder` recorded them ({} when it has none)."""
    try:
        saved = json.loads((Path(folder) / RUN_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v.get("sha256") for k, v in saved.get("inputs", {}).items()}


def check_output(out: str | Path, kind: str, inputs: Mapping[str, str | Path | None] = (),
                 overwrite: bool = False) -> Path:
    """The rules of the module docstring, without the lock. -> `out` resolved"""
    if kind not in KINDS:
        raise ValueError(kind)
    if not str(out).strip():
        raise WarmstartError("output_dir is empty; give the run a folder of its own, e.g. runs/NAME")
    folder = _resolve(out)
    here = Path.cwd().resolve()
    if _inside(here, folder) or folder == Path.home().resolve():
        raise WarmstartError(f"output_dir={out}: that is the current folder{' or one above it' if folder != here else ''}"
                             "; a run replaces its output folder, so give it one of its own, e.g. runs/NAME")
    for key, value in dict(inputs).items():
        if not value or not Path(value).exists():
            continue
        source = _resolve(value)
        if _inside(folder, source) or _inside(source, folder):
            where = "is" if folder == source else "is inside" if _inside(folder, source) else "contains"
            raise WarmstartError(f"output_dir={out} {where} {key}={value}; a run must not write over its own "
                                 "input: choose another output_dir")
    if folder.exists() and not folder.is_dir():
        raise WarmstartError(f"output_dir={out}: a file, not a folder; choose another output_dir")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        found = kind_of(folder)
        if found != kind:
            what = f"a warmstart {found} run" if found else "files warmstart did not write"
            article = "an" if kind[:1] in "aeiou" else "a"
            raise WarmstartError(f"output_dir={out} holds {what}; {article} {kind} run replaces its folder: choose "
                                 "another output_dir, or pass --overwrite to replace it")
    return folder


class Claim:
    """A claimed output folder: checked, and locked until `release()` (or the end of a `with` block)."""

    def __init__(self, folder: Path, kind: str, inputs: Mapping[str, str | Path | None]):
        self.folder, self.kind, self.inputs = folder, kind, dict(inputs)
        self.lock_path = folder.parent / f".{folder.name}.lock"
        self._fd: int | None = None
        self.created = not folder.exists()  # made by this run: removed again if the run fails before using it

    def acquire(self) -> Claim:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): the checks above still hold
            return self
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        # a run killed a moment ago may still be exiting (its lock goes with its last process): wait a little
        for attempt in range(LOCK_RETRIES + 1):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt < LOCK_RETRIES:
                    time.sleep(0.1)
                    continue
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise WarmstartError(f"output_dir={self.folder}: another warmstart run (pid {holder}) is writing it; "
                                     "wait for it to finish or choose another output_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def mark(self, folder: Path | None = None) -> None:
        """Write the marker into `folder` (default the claimed folder, created if needed)."""
        target = folder or self.folder
        target.mkdir(parents=True, exist_ok=True)
        write_marker(target, self.kind, self.inputs)

    def discard_if_unused(self) -> None:
        """A folder this run created and left holding nothing but its marker (it failed on its input before
        writing anything) is removed: a refused run leaves nothing behind."""
        if self.created and self.folder.is_dir() and {p.name for p in self.folder.iterdir()} <= {RUN_MARKER}:
            shutil.rmtree(self.folder, ignore_errors=True)

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl

        try:
            self.lock_path.unlink(missing_ok=True)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            self.discard_if_unused()
        self.release()


def claim(out: str | Path, kind: str, inputs: Mapping[str, str | Path | None] = (), overwrite: bool = False) -> Claim:
    """Check `out` for a `kind` run (see the module docstring) and lock it. Use as `with claim(...) as c:`."""
    folder = check_output(out, kind, inputs, overwrite)
    return Claim(folder, kind, inputs).acquire()


def replace_file(path: Path, write: Callable[[Path], None]) -> None:
    """Write `path` whole or not at all: `write(tmp)` fills a hidden sibling (this process's own), which then
    replaces `path` in one rename; if writing fails the sibling is removed and the error raised, so a kill or a
    full disk leaves the previous file as it was. The one home for this (tables, logs, state, metrics)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
