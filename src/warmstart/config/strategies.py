"""One config section per transfer strategy (as PEFT has one config class per method); the strategies
themselves live in tasks/strategies.py."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FreezeConfig:
    layers: int = 2  # the embeddings and this many bottom blocks stay fixed


@dataclass
class GradualUnfreezeConfig:
    every_epochs: float = 1.0  # the head alone first; one more block from the top after each period


@dataclass
class LlrdConfig:
    decay: float = 0.8  # block i from the top learns at lr * decay**i; the embeddings at the lowest rate


@dataclass
class L2spConfig:
    alpha: float = 0.01  # weight of alpha/2 * ||w - w_pretrained||^2 over the encoder's weights


@dataclass
class LoraConfig:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=list)  # default: PEFT's for the model type (query,


@dataclass
class StrategySections:
    """The strategy sections of a fine-tuning `train` config (text and images alike)."""

    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    gradual_unfreeze: GradualUnfreezeConfig = field(default_factory=GradualUnfreezeConfig)
    llrd: LlrdConfig = field(default_factory=LlrdConfig)
    l2sp: L2spConfig = field(default_factory=L2spConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
