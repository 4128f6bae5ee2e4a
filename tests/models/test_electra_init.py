"""ELECTRA continued from a checkpoint: the discriminator from `model.init`, the generator from the folder beside
it (where warmstart saves it), from `objective.generator_init` (a public generator), or new; embeddings shared."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import tiny_pretrain_config
from warmstart.config import ModelConfig, PretrainConfig, load_config
from warmstart.data.text import load_tokenizer
from warmstart.errors import WarmstartError
from warmstart.models.text import build_electra
from warmstart.pretraining.text import run_pretrain

ELECTRA = ("objective.name=electra", "objective.nsp=false", "train.max_steps=2")


@pytest.fixture(scope="module")
def electra_run(corpus_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("electra")
    return run_pretrain(tiny_pretrain_config(corpus_file, root / "run", root / "cache", *ELECTRA))


def _same(module: torch.nn.Module, saved: dict, skip: str = "\0") -> None:
    state = module.state_dict()
    for key, value in saved.items():
        if skip not in key:
            assert torch.equal(state[key], value), key


def _disc_only(run, tmp_path):
    folder = tmp_path / "disc"
    folder.mkdir()
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(run / f, folder / f)
    return folder


@pytest.mark.parametrize("layout", ["warmstart_run", "public_pair"])
def test_both_halves_continue_from_their_folders_and_share_embeddings(electra_run, tmp_path, layout):
    init = electra_run if layout == "warmstart_run" else _disc_only(electra_run, tmp_path)
    generator = None if layout == "warmstart_run" else str(electra_run / "generator")
    disc, gen = build_electra(ModelConfig(init=str(init)), load_tokenizer(str(init)), 0, 0.25, generator)
    _same(disc, load_file(electra_run / "model.safetensors"))
    _same(gen, load_file(electra_run / "generator" / "model.safetensors"), skip="embeddings")
    assert gen.electra.embeddings is disc.electra.embeddings
    assert gen.generator_lm_head.weight is disc.electra.embeddings.word_embeddings.weight


def test_a_discriminator_alone_gets_a_new_generator_of_its_embedding_width(electra_run, tmp_path, capsys):
    init = _disc_only(electra_run, tmp_path)
    disc, gen = build_electra(ModelConfig(init=str(init)), load_tokenizer(str(init)), 0, 0.25)
    _same(disc, load_file(electra_run / "model.safetensors"))
    assert gen.config.embedding_size == disc.config.embedding_size
    assert gen.config.num_hidden_layers == disc.config.num_hidden_layers and gen.config.hidden_size == 16
    assert gen.electra.embeddings is disc.electra.embeddings
    assert "has no generator beside it: a new one, 16 wide" in capsys.readouterr().out


def test_continued_electra_runs_and_saves_both_halves(electra_run, corpus_file, tmp_path):
    out = run_pretrain(tiny_pretrain_config(corpus_file, tmp_path / "more", tmp_path / "cache", *ELECTRA,
                                            f"model.init={electra_run}"))
    before, after = load_file(electra_run / "model.safetensors"), load_file(out / "model.safetensors")
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    assert (out / "generator" / "model.safetensors").is_file()


@pytest.mark.parametrize("case, message", [
    ("bert_init", "ELECTRA continues an ELECTRA discriminator, and this is a bert model; continue it with "
                  "objective.name=mlm"),
    ("other_pair", "its embeddings .* are not the discriminator's"),
])
def test_what_cannot_continue_is_one_line(electra_run, pretrained, tmp_path, case, message):
    if case == "bert_init":
        cfg, generator = ModelConfig(init=str(pretrained)), None
    else:  # a generator whose vocabulary is not the discriminator's
        from transformers import ElectraConfig, ElectraForMaskedLM

        other = tmp_path / "other_generator"
        ElectraForMaskedLM(ElectraConfig(vocab_size=77, embedding_size=32, hidden_size=16, num_attention_heads=1,
                                         intermediate_size=32, num_hidden_layers=1)).save_pretrained(other)
        cfg, generator = ModelConfig(init=str(_disc_only(electra_run, tmp_path))), str(other)
    with pytest.raises(WarmstartError, match=message):
        build_electra(cfg, load_tokenizer(str(cfg.init)), 0, 0.25, generator)


def test_a_generator_init_without_an_electra_init_is_refused_before_work():
    with pytest.raises(WarmstartError, match="objective.generator_init continues an ELECTRA generator"):
        load_config(PretrainConfig, None, ["corpus.sources=[x.txt]", "train.max_steps=1",
                                           "objective.generator_init=some/folder"])
