"""TSDAE and SimCSE adaptation of a sentence encoder through the one skeleton: the encoder trains, the folder
loads with AutoModel and SentenceTransformer, a stopped run resumes to the same weights, bad settings are one line."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForMaskedLM

from tests.conftest import tiny_pretrain_config
from warmstart.config import PretrainConfig, load_config
from warmstart.errors import WarmstartError
from warmstart.pretraining.recipes import run_pretraining


def adapt_config(corpus, init, out, *overrides):
    return tiny_pretrain_config(corpus, out, out.parent / "cache", f"model.init={init}", "objective.nsp=false",
                                "train.batch_size=8", "train.max_steps=4", "train.lr=1e-3", *overrides)


@pytest.mark.parametrize("objective", ["tsdae", "simcse"])
def test_adaptation_trains_the_encoder_and_loads_both_ways(objective, pretrained, corpus_file, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = run_pretraining(adapt_config(corpus_file, pretrained, tmp_path / "out", f"objective.name={objective}"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["sentences"] > 100 and "val_loss" in metrics
    # TSDAE stops on its held-out loss; SimCSE's held-out task is solved from the start, so it watches nothing
    assert metrics.get("early_stopping", {}).get("watched") == ("val_loss" if objective == "tsdae" else None)
    before, after = AutoModel.from_pretrained(pretrained).state_dict(), AutoModel.from_pretrained(out).state_dict()
    changed = [k for k in after if not torch.equal(before[k], after[k])]
    assert any("encoder.layer" in k for k in changed), "the encoder did not train"
    st = SentenceTransformer(str(out), device="cpu", local_files_only=True)
    emb = st.encode(["a good film.", "a dull film."], convert_to_tensor=True)
    assert emb.shape == (2, 32) and torch.isfinite(emb).all()
    assert not (out / "adaptation_state.safetensors").exists()  # the resumable state stays in checkpoint-last
    assert (out / "checkpoint-last" / "adaptation_state.safetensors").exists()


def test_a_stopped_tsdae_run_resumes_to_the_same_weights(pretrained, corpus_file, tmp_path):
    flat = ("train.schedule=constant", "train.warmup_fraction=0", "objective.name=tsdae")
    whole = run_pretraining(adapt_config(corpus_file, pretrained, tmp_path / "whole", "train.max_steps=6", *flat))
    half = adapt_config(corpus_file, pretrained, tmp_path / "half", "train.max_steps=3", *flat)
    run_pretraining(half)
    resumed = run_pretraining(adapt_config(corpus_file, pretrained, tmp_path / "half", "train.max_steps=6", *flat),
                              resume=True)
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_an_epoch_budget_ends_after_one_pass(pretrained, corpus_file, tmp_path):
    out = run_pretraining(adapt_config(corpus_file, pretrained, tmp_path / "out", "objective.name=simcse",
                                       "train.max_steps=1000", "train.max_epochs=1"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 1.0 and metrics["steps"] < 1000


def test_keep_init_mixes_the_start_back_into_the_saved_encoder(pretrained, corpus_file, tmp_path):
    """model.keep_init=k saves k x start + (1 - k) x adapted, while checkpoint-last keeps the unmixed weights to
    resume from; the same seed gives the same adapted weights, so the mixed folder is checked against a plain run."""
    from warmstart.pretraining.sentence import STATE

    common = ("objective.name=simcse", "objective.deletion=0.2", "train.max_steps=3")
    plain = run_pretraining(adapt_config(corpus_file, pretrained, tmp_path / "plain", *common))
    mixed = run_pretraining(adapt_config(corpus_file, pretrained, tmp_path / "mixed", *common,
                                         "model.keep_init=0.25"))
    assert json.loads((mixed / "metrics.json").read_text())["keep_init"] == 0.25
    start, a, m = (AutoModel.from_pretrained(f).state_dict() for f in (pretrained, plain, mixed))
    moved = [k for k in a if a[k].is_floating_point() and not torch.equal(a[k], start[k])]
    assert any("encoder.layer" in k for k in moved), "the plain run did not train"
    for k in moved:
        torch.testing.assert_close(m[k], 0.25 * start[k] + 0.75 * a[k], rtol=1e-4, atol=1e-6)
    resumable = load_file(mixed / "checkpoint-last" / STATE)
    k = next(k for k in moved if "encoder.layer" in k)
    unmixed = next(v for name, v in resumable.items() if name.endswith(k))
    torch.testing.assert_close(unmixed, a[k], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("overrides, message", [
    (["objective.name=mlm", "train.max_epochs=1"], "train.max_epochs is a budget for"),
    (["objective.name=simcse", "model.init=x", "objective.nsp=false", "train.max_epochs=0"], "train.max_epochs"),
    (["objective.name=tsdae", "objective.nsp=false"], "set model.init"),
    (["objective.name=simcse", "model.init=x"], "objective.nsp"),
    (["objective.name=simcse", "objective.nsp=false", "objective.deletion=1.0"], "objective.deletion"),
    (["objective.name=simcse", "model.init=x", "objective.nsp=false", "model.keep_init=1"],
     "model.keep_init=1.0: must be >= 0 and < 1"),
    (["model.keep_init=0.5"], "model.keep_init mixes an adapted sentence encoder with its start"),
])
def test_bad_adaptation_settings_are_one_line(overrides, message):
    with pytest.raises(WarmstartError, match=message):
        load_config(PretrainConfig, None, overrides)


def test_tsdae_refuses_a_family_that_cannot_decode(corpus_file, tmp_path):
    from tests.models.test_masked_lm import family

    tok, config = family("distilbert")
    folder = tmp_path / "distilbert"
    AutoModelForMaskedLM.from_config(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    with pytest.raises(WarmstartError, match="cannot be its own decoder"):
        run_pretraining(adapt_config(corpus_file, folder, tmp_path / "out", "objective.name=tsdae"))


def test_the_bundled_adapt_recipe_prints_and_refuses_an_empty_corpus(pretrained, tmp_path, capsys):
    from warmstart.cli import main

    assert main(["pretrain", "adapt", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "simcse" in printed and "model.keep_init = 0.5" in printed
    code = main(["pretrain", "adapt", f"output_dir={tmp_path / 'out'}", f"model.init={pretrained}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "corpus.sources is empty" in err and err.count("\n") == 0
    assert not (tmp_path / "out").exists()  # nothing left behind


@pytest.mark.parametrize("layout, expected", [(None, "mean"), ("cls", "cls"), ("mean", "mean")])
def test_auto_pooling_adapts_the_embedding_the_init_makes(layout, expected, pretrained, corpus_file, tmp_path):
    """objective.pooling=auto: a sentence-transformers init (e.g. a CLS-pooled BGE) is adapted, and written
    back, with its own pooling; a plain HF folder with mean."""
    import shutil

    init = tmp_path / "init"
    shutil.copytree(pretrained, init)
    if layout:
        (init / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
        (init / "1_Pooling").mkdir()
        (init / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": layout}))
    cfg = adapt_config(corpus_file, init, tmp_path / "out", "objective.name=simcse", "train.max_steps=1")
    assert cfg.objective.pooling == "auto"
    out = run_pretraining(cfg)
    written = json.loads((out / "1_Pooling" / "config.json").read_text())
    assert written["pooling_mode_cls_token"] == (expected == "cls")
    assert written["pooling_mode_mean_tokens"] == (expected == "mean")
    assert f"pooling: {expected}" in (out / "warmstart_config.yaml").read_text()
