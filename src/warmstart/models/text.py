"""Backbone builders: standard `transformers` BERT classes, sized by config or loaded from a folder; any
`AutoModelForMaskedLM` folder (RoBERTa, DeBERTa-v2/v3, DistilBERT, ModernBERT, an ELECTRA generator) for
continued pretraining, with its own MLM head found for the sparse loss."""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import (
    AutoModelForMaskedLM,
    BertConfig,
    BertForPreTraining,
    ElectraConfig,
    ElectraForMaskedLM,
    ElectraForPreTraining,
)

from warmstart.config import ModelConfig
from warmstart.models.common import load_model_config, load_pretrained, missing_modules


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


def build_pretraining_model(cfg: ModelConfig, tokenizer, seed: int) -> torch.nn.Module:
    """A fresh BERT with MLM + NSP heads, or one continued from `cfg.init`: a BERT folder as
    `BertForPreTraining` (NSP possible), any other family as its `AutoModelForMaskedLM` class (MLM only).

    A folder without pretraining heads (e.g. MiniLM, a plain `BertModel`) gets freshly initialised heads.
    """
    torch.manual_seed(seed)
    if cfg.init:
        family = load_model_config(cfg.init, cfg.trust_pickled_weights).model_type
        # quiet, then one line: transformers' load report of a headless folder (a table of MISSING keys, and "this
        # checkpoint seem corrupted" for MiniLM's absent decoder bias) reads as an error where nothing is wrong
        if family == "bert":
            model, info = load_pretrained(BertForPreTraining, cfg.init, cfg.trust_pickled_weights, quiet=True,
                                          output_loading_info=True, attn_implementation="sdpa")
        else:  # transformers picks SDPA where the family has it (DeBERTa does not, and refuses being asked)
            model, info = load_pretrained(AutoModelForMaskedLM, cfg.init, cfg.trust_pickled_weights, quiet=True,
                                          output_loading_info=True)
        if info.get("missing_keys"):
            print(f"warmstart pretrain: {cfg.init} has no weights for {missing_modules(info['missing_keys'])}: "
                  "initialised new", flush=True)
        if model.config.vocab_size != len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        return model
    return BertForPreTraining(bert_config(cfg, tokenizer))


def mlm_head(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The model's own MLM head as a function (M, H) hidden states -> (M, V) logits, so the loss runs the head
    on masked positions only (objectives/mlm.masked_lm_loss); None for a family not listed here, which then
    takes the model's dense forward (same loss, more compute). What each family's `ForMaskedLM.forward` does
    after its encoder, in transformers 5; tests/models/test_masked_lm.py checks each against that forward."""
    kind = model.config.model_type
    if kind == "bert":  # BertForPreTraining and BertForMaskedLM alike
        return model.cls.predictions
    if kind in ("roberta", "xlm-roberta", "camembert", "data2vec-text"):
        return model.lm_head
    if kind == "deberta-v2":
        if getattr(model.config, "legacy", True):
            return model.cls
        return lambda h: model.lm_predictions(h, model.deberta.embeddings.word_embeddings)
    if kind == "distilbert":
        return lambda h: model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(h))))
    if kind == "modernbert":
        return lambda h: model.decoder(model.head(h))
    if kind == "electra":
        return lambda h: model.generator_lm_head(model.generator_predictions(h))
    return None


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


