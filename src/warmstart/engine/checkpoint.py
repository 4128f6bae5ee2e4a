"""Checkpoints are standard Hugging Face folders (config.json, model.safetensors, tokenizer.json).

Writes are atomic: everything goes to a temporary sibling folder, is fsynced, then renamed into place,
so a crash while saving leaves the previous checkpoint intact and never a half-written one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors import SafetensorError

from warmstart.engine.attention import restore_choices, timed_choices
from warmstart.engine.outputs import replace_file
from warmstart.engine.runtime import deepspeed_follows_device, deepspeed_only_once_loaded
from warmstart.errors import WarmstartError

TRAINING_STATE = "training_state.pt"
RESUME_DIR = "checkpoint-last"  # inside a pretraining output folder: weights + training state for --resume


SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")  # what transformers loads first
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.bin")


def check_safetensors(path: Path) -> None:
    """One line naming the file when a safetensors file is truncated or corrupt: its 8-byte header length, its
    JSON header, and a data section exactly as long as the header's offsets say."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little") if size >= 8 else -1
            if n < 2 or 8 + n > size:
                raise ValueError("the header is cut off")
            header = json.loads(f.read(n))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        if 8 + n + max(ends, default=0) != size:
            raise ValueError(f"the data section has {size - 8 - n:,} bytes, the header describes "
                             f"{max(ends, default=0):,}")
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as e:
        raise WarmstartError(f"{path}: truncated or corrupt safetensors file ({e}); re-save or re-download the "
                             "checkpoint") from None


def _weights_files(folder: Path, index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (ValueError, KeyError, TypeError) as e:
        raise WarmstartError(f"{index}: not a valid weights index ({e})") from None
    shards = sorted({folder / name for name in weight_map.values()})
    missing = [s.name for s in shards if not s.is_file()]
    if missing:
        raise WarmstartError(f"{index}: lists {missing[0]}, which is missing; the checkpoint is incomplete")
    return shards


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise WarmstartError(f"{path}: not valid JSON ({e}); the checkpoint is damaged") from None
    if not isinstance(data, dict):
        raise WarmstartError(f"{path}: expected a JSON object")
    return data


def refuse_remote_code(folder: Path) -> None:
    """warmstart never runs a checkpoint's own code (transformers' trust_remote_code stays off): a config that
    asks for it (`auto_map`) or names a model type transformers does not know is refused in one line."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    config = _read_json(folder / "config.json")
    for name in ("config.json", "tokenizer_config.json", "preprocessor_config.json"):
        data = config if name == "config.json" else _read_json(folder / name) if (folder / name).is_file() else {}
        if "auto_map" in data:
            raise WarmstartError(f"{folder / name}: asks to run the checkpoint's own code (auto_map); warmstart never "
                                 "runs code from a checkpoint: use a checkpoint of a model type transformers ships")
    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise WarmstartError(f"{folder / 'config.json'}: model_type {model_type!r} is not one transformers knows "
                             "(custom code is never run); use a standard checkpoint (bert, roberta, vit, ...)")


def require_weights(path: str | Path, trust_pickled: bool = False) -> Path:
    """Check that a folder is a loadable HF checkpoint before anything reads it; one-line error if not.

    It must have a config.json of a model type transformers ships, no request to run its own code, and the
    weights transformers would load (model.safetensors, or its sharded index) intact. Pickled weights
    (`pytorch_model.bin`) can run code when unpickled, so a folder that has only those is refused unless the
    user says they trust it (`trust_pickled_weights: true`); files beside the weights (an adapter's
    safetensors) do not count."""
    folder = Path(path)
    if not folder.is_dir():
        raise WarmstartError(f"{folder}: checkpoint folder not found")
    if not (folder / "config.json").is_file():
        raise WarmstartError(f"{folder}: no config.json; not a Hugging Face checkpoint folder")
    refuse_remote_code(folder)
    safe = [folder / n for n in SAFE_WEIGHTS if (folder / n).is_file()]
    if safe:
        files = _weights_files(folder, safe[0]) if safe[0].name.endswith(".json") else safe[:1]
        for f in files:
            check_safetensors(f)
        return folder
    pickled = [p.name for p in (folder / n for n in PICKLED_WEIGHTS) if p.is_file()]
    if pickled and trust_pickled:
        print(f"warning: {folder}: loading pickled weights ({pickled[0]}) because trust_pickled_weights is set")
        return folder
    if pickled:
        raise WarmstartError(f"{folder}: only pickled weights ({pickled[0]}), which can run code when loaded; "
                             "convert them to safetensors, or set trust_pickled_weights=true if you trust the source")
    raise WarmstartError(f"{folder}: no model weights (model.safetensors); the checkpoint is incomplete")


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
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    old = final.with_name(f".{final.name}.old{os.getpid()}")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write(tmp)
        _fsync_tree(tmp)
    except (OSError, SafetensorError) as e:  # a full disk, a read-only folder (safetensors reports its I/O
        # errors as its own type): the half-written copy goes, the previous one stays
        shutil.rmtree(tmp, ignore_errors=True)
        reason = getattr(e, "strerror", None) or str(e).rsplit("I/O error: ", 1)[-1]
        raise WarmstartError(f"{final}: cannot write it ({reason}); nothing was replaced"
                             f"{' (the previous copy is intact)' if final.exists() else ''}: free space or fix "
                             "permissions, then run again") from None
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
        if f.is_dir() and (out / f.name).is_dir():  # a folder (ELECTRA's generator/) replaces the previous one
            shutil.rmtree(out / f.name)
        f.replace(out / f.name)
    tmp.rmdir()


def save_hf(folder: Path, model, tokenizer, extra_files: dict[str, str] | None = None,
            state_dict: dict | None = None) -> None:
    """Write a standard HF checkpoint (safetensors) plus small text files (config, metrics) into `folder`.
    `state_dict`: the weights to write, when the model's own are shards (gathered by the caller)."""
    deepspeed_follows_device()  # where anything imports DeepSpeed, it computes where warmstart does
    deepspeed_only_once_loaded()  # save_pretrained's unwrapping need not import it (1.4 s)
    # a copy: save_pretrained empties the dict it is given, and the caller may write the same weights twice
    model.save_pretrained(folder, state_dict=None if state_dict is None else dict(state_dict), safe_serialization=True)
    if tokenizer is not None:  # image encoders have none; their preprocessor config comes as an extra file
        tokenizer.save_pretrained(folder)
    for name, text in (extra_files or {}).items():
        (folder / name).write_text(text, encoding="utf-8")


def rng_state() -> dict[str, Any]:
    """Every global RNG, and the attention kernels timed so far (engine/attention: what else a resumed run needs
    to compute as the run did), in types that `torch.load(weights_only=True)` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "attention": timed_choices()}


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss_np = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss_np))
    torch.set_rng_state(state["torch"])
    restore_choices(state.get("attention", []))


def load_training_state(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / TRAINING_STATE
    if not path.is_file():
        raise WarmstartError(f"{folder}: no {TRAINING_STATE}; not a resumable checkpoint")
    # weights_only: even our own state file is loaded without arbitrary unpickling.
    return torch.load(path, map_location="cpu", weights_only=True)


# ---------------------------------------------------------------- resuming
def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def check_resumable(cfg: Any, resume_dir: Path, may_change: set[str]) -> None:
    """`--resume` continues the same run: the recipe may change only the keys in `may_change` (budgets,
    logging, the launch)."""
    saved_path = resume_dir / "warmstart_config.yaml"
    if not saved_path.is_file():
        return
    saved = _flat(yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {})
    now = _flat(asdict(cfg))
    changed = sorted(k for k in set(saved) | set(now) if k not in may_change and saved.get(k) != now.get(k))
    if changed:
        k = changed[0]
        raise WarmstartError(f"--resume: {k} was {saved.get(k)!r} when the run started, now {now.get(k)!r}; resume "
                             f"with the run's own recipe ({saved_path}), or start a new output_dir")


def log_record(line: str) -> dict | None:
    """One line of a training log (None: blank, or cut by a kill mid-write)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def keep_log_until(path: Path, step: int) -> None:
    """After a resume, drop the log records of steps the resumed run will do again (each step logged once), and
    a last line that the kill cut mid-write."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if (record := log_record(line)) is not None and record.get("step", 0) <= step]
    replace_file(path, lambda tmp: tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8"))
