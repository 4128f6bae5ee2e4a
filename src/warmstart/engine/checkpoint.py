"""Checkpoints are standard Hugging Face folders (config.json, model.safetensors, tokenizer.json).

Writes are atomic: everything goes to a temporary sibling folder, is fsynced, then renamed into place,
so a crash while saving leaves the previous checkpoint intact and never a half-written one.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from warmstart.errors import WarmstartError

TRAINING_STATE = "training_state.pt"
RESUME_DIR = "checkpoint-last"  # inside a pretraining output folder: weights + training state for --resume
PICKLED_WEIGHTS = ("pytorch_model.bin", "model.pt", "model.bin")


def require_weights(path: str | Path, trust_pickled: bool = False) -> Path:
    """Check that a folder is a loadable HF checkpoint with safetensors weights; one-line error if not.

    Pickled weights (`pytorch_model.bin`, `.pt`) can run code when unpickled, so a folder that has only those
    is refused unless the user says they trust it (`trust_pickled_weights: true`)."""
    folder = Path(path)
    if not folder.is_dir():
        raise WarmstartError(f"{folder}: checkpoint folder not found")
    if not (folder / "config.json").is_file():
        raise WarmstartError(f"{folder}: no config.json; not a Hugging Face checkpoint folder")
    if not any(folder.glob("*.safetensors")):
        pickled = [p.name for p in folder.iterdir() if p.name in PICKLED_WEIGHTS]
        if pickled and trust_pickled:
            print(f"warning: {folder}: loading pickled weights ({pickled[0]}) because trust_pickled_weights is set")
            return folder
        if pickled:
            raise WarmstartError(f"{folder}: only pickled weights ({pickled[0]}), which can run code when loaded; "
                                 "convert them to safetensors, or set trust_pickled_weights=true if you trust the source")
        raise WarmstartError(f"{folder}: no model weights (model.safetensors); the checkpoint is incomplete")
    return folder


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_folder(final: str | Path, write) -> Path:
    """Call `write(tmp_folder)`, then swap the result into `final` atomically.

    The old folder (if any) is renamed aside first and removed only after the new one is in place.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    old = final.with_name(f".{final.name}.old{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        final.rename(old)
    tmp.rename(final)  # a kill between these two renames leaves only `old`: see `recover_folder`
    shutil.rmtree(old, ignore_errors=True)
    return final


def recover_folder(final: str | Path) -> Path:
    """Undo a swap that `atomic_folder` could not finish: with `final` missing, the newest complete copy set
    aside (`.NAME.old*`) is moved back; half-written temporaries (`.NAME.tmp*`) are removed."""
    final = Path(final)
    if not final.parent.is_dir():
        return final
    for tmp in final.parent.glob(f".{final.name}.tmp*"):
        shutil.rmtree(tmp, ignore_errors=True)
    olds = sorted(final.parent.glob(f".{final.name}.old*"), key=lambda p: p.stat().st_mtime)
    if not final.exists() and olds:
        olds.pop().rename(final)
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)
    return final


def publish_into(out: Path, write) -> None:
    """The final checkpoint inside a run folder that already holds logs and `checkpoint-last`: `write(tmp)`
    fills a temporary sibling (fsynced), whose files are then moved into `out` one by one (each a rename)."""
    tmp = atomic_folder(out / ".final", write)
    for f in tmp.iterdir():
        f.replace(out / f.name)
    tmp.rmdir()


def save_hf(folder: Path, model, tokenizer, extra_files: dict[str, str] | None = None,
            state_dict: dict | None = None) -> None:
    """Write a standard HF checkpoint (safetensors) plus small text files (config, metrics) into `folder`.
    `state_dict`: the weights to write, when the model's own are shards (gathered by the caller)."""
    # a copy: save_pretrained empties the dict it is given, and the caller may write the same weights twice
    model.save_pretrained(folder, state_dict=None if state_dict is None else dict(state_dict), safe_serialization=True)
    if tokenizer is not None:  # image encoders have none; their preprocessor config comes as an extra file
        tokenizer.save_pretrained(folder)
    for name, text in (extra_files or {}).items():
        (folder / name).write_text(text, encoding="utf-8")


def rng_state() -> dict[str, Any]:
    """Every global RNG, in types that `torch.load(weights_only=True)` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]}


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss_np = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss_np))
    torch.set_rng_state(state["torch"])


def load_training_state(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / TRAINING_STATE
    if not path.is_file():
        raise WarmstartError(f"{folder}: no {TRAINING_STATE}; not a resumable checkpoint")
    # weights_only: even our own state file is loaded without arbitrary unpickling.
    return torch.load(path, map_location="cpu", weights_only=True)
