"""One config section per transfer strategy (as PEFT has one config class per method); the strategies
themselves live in tasks/strategies.py."""

from __future__ import annotations

from dataclasses import dataclass

from warmstart.config.schema import knob

STRATEGIES = ("full", "linear_probe", "lp_ft", "freeze", "gradual_unfreeze", "llrd", "l2sp", "lora", "setfit")
TEXT_ONLY = ("setfit",)  # strategies that need sentences (contrastive pairs of texts)
SGD_STRATEGIES = ("full", "freeze", "gradual_unfreeze", "llrd", "l2sp", "lora")  # no closed-form head needed


@dataclass
class FreezeConfig:
    layers: int = knob(2, "the embeddings and this many bottom blocks stay fixed", ge=0)


@dataclass
class GradualUnfreezeConfig:
    every_epochs: float = knob(1.0, "the head alone first; one more block from the top after each period", gt=0)


@dataclass
class LlrdConfig:
    decay: float = knob(0.8, "block i from the top learns at lr * decay**i; the embeddings at the lowest rate",
                        gt=0, le=1)


@dataclass
class L2spConfig:
    alpha: float = knob(0.01, "weight of alpha/2 * ||w - w_pretrained||^2 over the encoder's weights", ge=0)


@dataclass
class LoraConfig:
    r: int = knob(8, "rank of the low-rank update", ge=1)
    alpha: int = knob(16, "scale of the update (alpha / r)", ge=1)
    dropout: float = knob(0.1, "dropout on the adapter's input", ge=0, lt=1)
    target_modules: list[str] = knob(help="modules to adapt (default: PEFT's for the model type: query, value for "
                                          "BERT and ViT; the convolutions of a ResNet)", factory=list)


@dataclass
class SetFitConfig:
    """SetFit's settings (Tunstall et al., 2022; setfit 1.2.0's defaults and its paper's 20 pair iterations)."""

    num_iterations: int = knob(20, "pairs per labelled example and per kind (same class, other class): "
                                   "2 * num_iterations * N pairs an epoch", ge=1)
    epochs: int = knob(1, "epochs over the pairs", ge=1)
    lr: float = knob(2e-5, "the body's learning rate during pair training", gt=0)
    batch_size: int = knob(16, "pairs per step", ge=1)
    max_steps: int | None = knob(None, "cap on pair-training steps (a budget for large N)", ge=1)


@dataclass
class StrategySections:
    """The strategy sections of a fine-tuning `train` config (text and images alike)."""

    freeze: FreezeConfig = knob(help="strategy freeze", factory=FreezeConfig)
    gradual_unfreeze: GradualUnfreezeConfig = knob(help="strategy gradual_unfreeze (ULMFiT)",
                                                   factory=GradualUnfreezeConfig)
    llrd: LlrdConfig = knob(help="strategy llrd (layer-wise learning-rate decay)", factory=LlrdConfig)
    l2sp: L2spConfig = knob(help="strategy l2sp (pull towards the pretrained weights)", factory=L2spConfig)
    lora: LoraConfig = knob(help="strategy lora (PEFT)", factory=LoraConfig)
    setfit: SetFitConfig = knob(help="strategy setfit (contrastive pairs, then a logistic head)",
                                factory=SetFitConfig)
