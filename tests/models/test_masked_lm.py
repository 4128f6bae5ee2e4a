"""Continued pretraining of any masked LM: each family's own head gives the loss its own forward gives, whole
words follow each tokenizer's convention, and the output loads with AutoModelForMaskedLM and AutoModel."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoTokenizer,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    ModernBertConfig,
    PreTrainedTokenizerFast,
    RobertaConfig,
)

from tests.conftest import NEGATIVE, POSITIVE, sentence, tiny_pretrain_config
from warmstart.data.text import train_tokenizer, word_continuation
from warmstart.errors import WarmstartError
from warmstart.models.text import mlm_head
from warmstart.objectives.mlm import mask_tokens, masked_lm_loss, prediction_slots
from warmstart.pretraining.text import run_pretrain

_RNG = random.Random(0)
TEXTS = [sentence(_RNG, POSITIVE + NEGATIVE + ["unbelievably", "unbelievable", "believably", "unmoving"])
         for _ in range(300)]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def sentencepiece_tokenizer() -> PreTrainedTokenizerFast:
    """A Unigram tokenizer with the SentencePiece word-start mark, as DeBERTa-v3 ships."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(TEXTS, trainers.UnigramTrainer(vocab_size=150, special_tokens=SPECIALS, unk_token="[UNK]"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def byte_bpe_tokenizer(specials: dict[str, str]) -> PreTrainedTokenizerFast:
    """A byte-level BPE (the 'Ġ' word-start mark), as RoBERTa and ModernBERT ship."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=300, special_tokens=list(specials.values()),
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, **{f"{k}_token": v for k, v in specials.items()})


ROBERTA_SPECIALS = {"cls": "<s>", "pad": "<pad>", "sep": "</s>", "unk": "<unk>", "mask": "<mask>"}
BERT_SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def family(name: str):
    """(tokenizer, config) of a tiny random model of each family."""
    if name == "roberta":
        tok = byte_bpe_tokenizer(ROBERTA_SPECIALS)
        return tok, RobertaConfig(vocab_size=len(tok), max_position_embeddings=130, type_vocab_size=1,
                                  pad_token_id=tok.pad_token_id, **SIZE)
    if name == "deberta-v3":
        tok = sentencepiece_tokenizer()
        return tok, DebertaV2Config(vocab_size=len(tok), max_position_embeddings=128, relative_attention=True,
                                    position_buckets=16, pos_att_type=["p2c", "c2p"], position_biased_input=False,
                                    pad_token_id=tok.pad_token_id, **SIZE)
    if name == "distilbert":
        tok = train_tokenizer([[t] for t in TEXTS], 70, min_frequency=1)
        return tok, DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                     max_position_embeddings=128, pad_token_id=tok.pad_token_id)
    if name == "modernbert":
        tok = byte_bpe_tokenizer(BERT_SPECIALS)
        return tok, ModernBertConfig(vocab_size=len(tok), max_position_embeddings=128, global_attn_every_n_layers=1,
                                     local_attention=16, pad_token_id=tok.pad_token_id, cls_token_id=tok.cls_token_id,
                                     sep_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id,
                                     eos_token_id=tok.sep_token_id, **SIZE)
    if name == "electra-generator":
        tok = train_tokenizer([[t] for t in TEXTS], 70, min_frequency=1)
        return tok, ElectraConfig(vocab_size=len(tok), embedding_size=32, max_position_embeddings=128,
                                  pad_token_id=tok.pad_token_id, **SIZE)
    raise KeyError(name)


FAMILIES = ["roberta", "deberta-v3", "distilbert", "modernbert", "electra-generator"]


@pytest.fixture(scope="module", params=FAMILIES)
def checkpoint(request, tmp_path_factory) -> tuple[str, Path]:
    tok, config = family(request.param)
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_config(config)
    folder = tmp_path_factory.mktemp(request.param.replace("-", "_"))
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return request.param, folder


def test_each_familys_sparse_head_gives_its_own_forwards_loss(checkpoint):
    name, folder = checkpoint
    model = AutoModelForMaskedLM.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    ids = torch.tensor([tok(" ".join(TEXTS[:2]))["input_ids"]] * 2)
    masked, labels = mask_tokens(ids, torch.tensor(tok.all_special_ids), tok.mask_token_id, len(tok), 0.4,
                                 torch.Generator().manual_seed(0))
    assert (labels != -100).any()
    head = mlm_head(model)
    assert head is not None, f"{name}: no sparse head"
    with torch.no_grad():
        positions, targets = prediction_slots(labels)
        ours = masked_lm_loss(model, head, {"input_ids": masked, "mlm_positions": positions,
                                            "mlm_targets": targets})["loss"]
        dense = masked_lm_loss(model, None, {"input_ids": masked, "labels": labels})["loss"]
        theirs = model(input_ids=masked, labels=labels).loss
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(dense, theirs, rtol=1e-4, atol=1e-5)


def test_continued_pretraining_of_each_family_loads_with_auto_classes(checkpoint, corpus_file, tmp_path):
    name, folder = checkpoint
    cfg = tiny_pretrain_config(corpus_file, tmp_path / "out", tmp_path / "cache", f"model.init={folder}",
                               "objective.nsp=false", "objective.whole_word_mask=true", "train.max_steps=3")
    before = {k: v.clone() for k, v in AutoModel.from_pretrained(folder).state_dict().items()}
    out = run_pretrain(cfg)
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3
    assert AutoModelForMaskedLM.from_pretrained(out).config.model_type == AutoModel.from_pretrained(folder
                                                                                                    ).config.model_type
    after = AutoModel.from_pretrained(out).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k in after), "nothing trained"
    assert AutoTokenizer.from_pretrained(out).get_vocab() == AutoTokenizer.from_pretrained(folder).get_vocab()


def test_nsp_is_refused_for_a_family_without_the_head(checkpoint, corpus_file, tmp_path):
    _, folder = checkpoint
    cfg = tiny_pretrain_config(corpus_file, tmp_path / "out", tmp_path / "cache", f"model.init={folder}")
    with pytest.raises(WarmstartError, match="next-sentence"):
        run_pretrain(cfg)


@pytest.mark.parametrize("make", [
    lambda: train_tokenizer([[t] for t in TEXTS], 70, min_frequency=1),  # WordPiece: "##" continues
    sentencepiece_tokenizer,  # "\u2581" starts
    lambda: byte_bpe_tokenizer(ROBERTA_SPECIALS),  # "\u0120" starts
], ids=["wordpiece", "sentencepiece", "byte-bpe"])
def test_whole_words_follow_each_tokenizers_convention(make):
    tok = make()
    continuation = word_continuation(tok)
    for word in ("unbelievably", "plotmusicending"):
        ids = tok(f"the {word} film", add_special_tokens=False)["input_ids"]
        alone = tok(f"the {word}", add_special_tokens=False)["input_ids"]
        the = tok("the", add_special_tokens=False)["input_ids"]
        pieces = ids[len(the):len(alone)]  # the word's pieces in a sentence
        flags = continuation[torch.tensor(pieces)].tolist()
        assert flags == [False] + [True] * (len(pieces) - 1), tok.convert_ids_to_tokens(pieces)
        assert continuation[ids[len(alone)]].item() is False  # "film" starts the next word
    assert len(tok("plotmusicending", add_special_tokens=False)["input_ids"]) > 1, "needs a word of many pieces"
    assert not continuation[torch.tensor(tok.all_special_ids)].any()


def test_a_word_after_a_special_token_starts_a_word():
    special = torch.tensor([0])
    continuation = torch.tensor([False, True, True, False])  # 1 and 2 continue, 3 starts
    ids = torch.tensor([[0, 1, 2, 3, 1]])  # [CLS], then an unmarked first word (1 2), a word (3 1)
    masked, labels = mask_tokens(ids, special, 9, 10, 0.999, torch.Generator().manual_seed(0), continuation)
    chosen = (labels != -100)[0].tolist()
    assert chosen == [False, True, True, True, True]
    masked, labels = mask_tokens(ids, special, 9, 10, 0.5, torch.Generator().manual_seed(3), continuation)
    chosen = (labels != -100)[0].tolist()
    assert chosen[1] == chosen[2] and chosen[3] == chosen[4]


def test_a_folder_without_pretraining_heads_gets_one_line_not_a_load_report(pretrained, tmp_path, capfd):
    """MiniLM ships a BertModel: transformers printed a table of MISSING keys and "This checkpoint seem corrupted";
    a headless init is expected, so one line names what is new. A folder with its heads says nothing."""
    from warmstart.config import PretrainConfig, load_config
    from warmstart.models.text import build_pretraining_model

    AutoModel.from_pretrained(pretrained).save_pretrained(tmp_path / "headless")
    tokenizer = AutoTokenizer.from_pretrained(pretrained)
    for folder, said in ((tmp_path / "headless", "has no weights for cls.predictions (6 tensors), "
                                                 "cls.seq_relationship (2 tensors): initialised new"),
                         (pretrained, None)):
        capfd.readouterr()
        model = build_pretraining_model(load_config(PretrainConfig, None, [f"model.init={folder}"]).model, tokenizer, 0)
        out, err = capfd.readouterr()
        assert (said in out) if said else "has no weights" not in out
        assert "MISSING" not in err and "corrupted" not in err and "LOAD REPORT" not in err
        assert model.cls.predictions.transform.dense.weight.isfinite().all()
