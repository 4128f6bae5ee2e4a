"""Which pretraining a recipe is: text (MLM / NSP, ELECTRA), a sentence encoder's adaptation (TSDAE, SimCSE) or
images (SimCLR, autoencoder), as its `objective.name` declares; and running it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from warmstart.config import (
    IMAGE_OBJECTIVES,
    SENTENCE_OBJECTIVES,
    ImagePretrainConfig,
    PretrainConfig,
    load_config,
    peek,
)


def load_pretrain_config(recipe: Any = None, overrides: list[str] = (), values: dict[str, Any] | None = None):
    """A checked pretraining config (text or images) from a recipe file, a config object, overrides and values."""
    values = values or {}
    if dataclasses.is_dataclass(recipe):
        return load_config(type(recipe), recipe, list(overrides), values)
    objective = values.get("objective.name") or peek(recipe, list(overrides), "objective.name")
    cls = ImagePretrainConfig if objective in IMAGE_OBJECTIVES else PretrainConfig
    return load_config(cls, recipe, list(overrides), values)


def run_pretraining(cfg: PretrainConfig | ImagePretrainConfig, resume: bool = False, overwrite: bool = False) -> Path:
    """Pretrain with the job of the config's modality (run.py's skeleton either way). -> the checkpoint folder"""
    if isinstance(cfg, ImagePretrainConfig):
        from warmstart.pretraining.images import run_image_pretrain

        return run_image_pretrain(cfg, resume, overwrite)
    if cfg.objective.name in SENTENCE_OBJECTIVES:
        from warmstart.pretraining.sentence import run_sentence_adaptation

        return run_sentence_adaptation(cfg, resume, overwrite)
    from warmstart.pretraining.text import run_pretrain

    return run_pretrain(cfg, resume, overwrite)
