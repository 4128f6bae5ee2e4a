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


def build_electra(cfg: ModelConfig, tokenizer, seed: int, generator_size: float = 0.25,
                  generator_init: str | None = None) -> tuple[ElectraForPreTraining, ElectraForMaskedLM]:
    """An ELECTRA discriminator sized by `cfg` and a generator `generator_size` times as wide (same depth),
    sharing the discriminator's embeddings (token, position, type) as in the paper; with `cfg.init`, both
    continued from their folders (`continued_electra`)."""
    torch.manual_seed(seed)
    if cfg.init:
        return continued_electra(cfg, tokenizer, generator_size, generator_init)
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




def continued_electra(cfg: ModelConfig, tokenizer, generator_size: float, generator_init: str | None = None
                      ) -> tuple[ElectraForPreTraining, ElectraForMaskedLM]:
    """ELECTRA continued from a discriminator folder (a warmstart ELECTRA run, google/electra-*-discriminator);
    the generator from `generator_init`, else `<init>/generator` where warmstart saves it, else a fresh one
    `generator_size` times as wide with the discriminator's depth and embedding width. The embeddings are shared
    as in the paper: the generator reads the discriminator's (a public generator's own copy is dropped)."""
    from pathlib import Path

    from warmstart.errors import WarmstartError

    family = load_model_config(cfg.init, cfg.trust_pickled_weights).model_type
    if family != "electra":
        raise WarmstartError(f"model.init={cfg.init}: ELECTRA continues an ELECTRA discriminator, and this is a "
                             f"{family} model; continue it with objective.name=mlm")
    disc, info = load_pretrained(ElectraForPreTraining, cfg.init, cfg.trust_pickled_weights, quiet=True,
                                 output_loading_info=True)
    if info.get("missing_keys"):
        print(f"warmstart pretrain: {cfg.init} has no weights for {missing_modules(info['missing_keys'])}: "
              "initialised new", flush=True)
    source = generator_init or (Path(cfg.init) / "generator" if (Path(cfg.init) / "generator").is_dir() else None)
    d = disc.config
    if source is not None:
        gen = load_pretrained(ElectraForMaskedLM, source, cfg.trust_pickled_weights, quiet=True)
        if gen.config.embedding_size != d.embedding_size or gen.config.vocab_size != d.vocab_size:
            raise WarmstartError(f"objective.generator_init={source}: its embeddings ({gen.config.vocab_size} x "
                                 f"{gen.config.embedding_size}) are not the discriminator's ({d.vocab_size} x "
                                 f"{d.embedding_size}), which it must share; give the generator of the same pair")
    else:
        heads = max(1, int(d.hidden_size * generator_size) // 64)
        width = max(16, int(d.hidden_size * generator_size) // heads * heads)
        gen = ElectraForMaskedLM(ElectraConfig(
            vocab_size=d.vocab_size, embedding_size=d.embedding_size, hidden_size=width, num_attention_heads=heads,
            intermediate_size=4 * width, num_hidden_layers=d.num_hidden_layers,
            max_position_embeddings=d.max_position_embeddings, type_vocab_size=d.type_vocab_size,
            hidden_dropout_prob=d.hidden_dropout_prob, attention_probs_dropout_prob=d.attention_probs_dropout_prob,
            pad_token_id=d.pad_token_id))
        print(f"warmstart pretrain: {cfg.init} has no generator beside it: a new one, {width} wide "
              f"({generator_size:g} of {d.hidden_size})", flush=True)
    if d.vocab_size != len(tokenizer):
        disc.resize_token_embeddings(len(tokenizer))
    gen.electra.embeddings = disc.electra.embeddings
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
    gen.config.vocab_size = disc.config.vocab_size
    return disc, gen
