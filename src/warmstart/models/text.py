"""Backbone builders: standard `transformers` BERT classes, sized by config or loaded from a folder."""

from __future__ import annotations

import torch
from transformers import (
    BertConfig,
    BertForPreTraining,
    ElectraConfig,
    ElectraForMaskedLM,
    ElectraForPreTraining,
)

from warmstart.config import ModelConfig
from warmstart.models.common import load_pretrained


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
        model = load_pretrained(BertForPreTraining, cfg.init, cfg.trust_pickled_weights, attn_implementation="sdpa")
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


