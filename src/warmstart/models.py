"""Backbone builders: standard `transformers` BERT classes, sized by config or loaded from a folder."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertForPreTraining,
    ElectraConfig,
    ElectraForMaskedLM,
    ElectraForPreTraining,
)

from warmstart.checkpoint import require_weights
from warmstart.config import ModelConfig
from warmstart.errors import WarmstartError
from warmstart.image_config import ImageModelConfig


def bert_config(cfg: ModelConfig, tokenizer) -> BertConfig:
    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=max(512, cfg.max_seq_len),
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_pretraining_model(cfg: ModelConfig, tokenizer, seed: int) -> BertForPreTraining:
    """A fresh BERT with MLM + NSP heads, or one continued from `cfg.init` (any HF BERT folder).

    A folder without pretraining heads (e.g. MiniLM, a plain `BertModel`) gets freshly initialised heads.
    """
    torch.manual_seed(seed)
    if cfg.init:
        require_weights(cfg.init, cfg.trust_pickled_weights)
        model = BertForPreTraining.from_pretrained(cfg.init, attn_implementation="sdpa")
        if model.config.vocab_size != len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        return model
    return BertForPreTraining(bert_config(cfg, tokenizer))


def build_electra(cfg: ModelConfig, tokenizer, seed: int, generator_size: float = 0.25
                  ) -> tuple[ElectraForPreTraining, ElectraForMaskedLM]:
    """An ELECTRA discriminator sized by `cfg` and a generator `generator_size` times as wide (same depth),
    sharing the discriminator's embeddings (token, position, type) as in the paper."""
    torch.manual_seed(seed)
    common = dict(vocab_size=len(tokenizer), embedding_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
                  max_position_embeddings=max(512, cfg.max_seq_len), hidden_dropout_prob=cfg.dropout,
                  attention_probs_dropout_prob=cfg.dropout, pad_token_id=tokenizer.pad_token_id)
    disc = ElectraForPreTraining(ElectraConfig(hidden_size=cfg.hidden_size, num_attention_heads=cfg.num_heads,
                                               intermediate_size=cfg.intermediate_size, **common))
    g_heads = max(1, int(cfg.hidden_size * generator_size) // 64)  # heads of 64 dimensions, as in the paper
    g_hidden = max(16, int(cfg.hidden_size * generator_size) // g_heads * g_heads)
    gen = ElectraForMaskedLM(ElectraConfig(hidden_size=g_hidden, num_attention_heads=g_heads,
                                           intermediate_size=4 * g_hidden, **common))
    gen.electra.embeddings = disc.electra.embeddings
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
    return disc, gen


# ---------------------------------------------------------------- images
def image_backbone_config(cfg: ImageModelConfig, channels: int):
    """A `transformers` ResNet (basic blocks) or ViT config for small images."""
    from transformers import ResNetConfig, ViTConfig

    if cfg.backbone == "resnet":
        # HF's ResNet stem is a 7x7 stride-2 conv + max-pool (4x down): a 32 px input gives 8x8 maps
        return ResNetConfig(num_channels=channels, embedding_size=cfg.widths[0], hidden_sizes=list(cfg.widths),
                            depths=list(cfg.depths), layer_type="basic", downsample_in_first_stage=False)
    if cfg.backbone == "vit":
        if cfg.image_size % cfg.patch_size:
            raise WarmstartError(f"model.image_size={cfg.image_size} is not a multiple of model.patch_size={cfg.patch_size}")
        return ViTConfig(image_size=cfg.image_size, patch_size=cfg.patch_size, num_channels=channels,
                         hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
                         num_attention_heads=cfg.num_heads, intermediate_size=4 * cfg.hidden_size,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    raise WarmstartError(f"model.backbone: unknown backbone '{cfg.backbone}'; use resnet or vit")


def build_image_backbone(cfg: ImageModelConfig, channels: int, seed: int, trust_pickled: bool = False):
    """A fresh ResNetModel / ViTModel (no pooler: features are the [CLS] state), or `cfg.init` loaded."""
    from transformers import AutoModel, ViTModel

    torch.manual_seed(seed)
    if cfg.init:
        model = AutoModel.from_pretrained(require_weights(cfg.init, trust_pickled))
        if model.config.model_type not in ("resnet", "vit"):
            raise WarmstartError(f"{cfg.init}: a {model.config.model_type} model; image encoders are resnet or vit")
        return model
    config = image_backbone_config(cfg, channels)
    if config.model_type == "vit":
        return ViTModel(config, add_pooling_layer=False)
    return AutoModel.from_config(config)


def image_features(base_model, pixel_values: torch.Tensor) -> torch.Tensor:
    """What a classifier head sees, as HF's *ForImageClassification computes it. (B, C, H, W) -> (B, D)"""
    out = base_model(pixel_values=pixel_values)
    if base_model.config.model_type == "resnet":
        return out.pooler_output.flatten(1)  # global average pool
    return out.last_hidden_state[:, 0]  # vit: [CLS] after the final LayerNorm


def image_feature_dim(config) -> int:
    return config.hidden_sizes[-1] if config.model_type == "resnet" else config.hidden_size


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
