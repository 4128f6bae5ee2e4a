"""The pretraining skeleton's promises: --resume continues the same run or refuses in one line (another
architecture, another corpus), and a finished folder is reported as what it is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import tiny_pretrain_config

from warmstart.cli import main
from warmstart.errors import WarmstartError
from warmstart.pretraining.text import run_pretrain


@pytest.fixture
def stopped(pretrained, corpus_file, tmp_path):
    """A run with a resumable checkpoint (saved at every step), as a killed run leaves it; its own corpus file."""
    corpus = Path(shutil.copy(corpus_file, tmp_path / "corpus.txt"))
    cfg = tiny_pretrain_config(corpus, tmp_path / "run", tmp_path / "cache", "train.save_every_minutes=1e-9",
                               f"tokenizer.from_checkpoint={pretrained}", "objective.nsp=false")
    out = run_pretrain(cfg)
    (out / "model.safetensors").unlink()  # as if it had not finished: checkpoint-last remains
    return cfg


@pytest.mark.parametrize("change,message", [
    ("model.hidden_size=64", "--resume: model.hidden_size was 32 when the run started, now 64"),
    ("objective.mlm_probability=0.3", "--resume: objective.mlm_probability was 0.15 when the run started, now 0.3"),
    ("train.batch_size=4", "--resume: train.batch_size was 8 when the run started, now 4"),
])
def test_resume_refuses_another_recipe(stopped, change, message):
    from warmstart.config import load_config

    cfg = load_config(type(stopped), stopped, [change])
    with pytest.raises(WarmstartError, match=message.replace("-", r"\-")):
        run_pretrain(cfg, resume=True)


def test_resume_may_extend_the_budget(stopped):
    stopped.train.max_steps = 8
    out = run_pretrain(stopped, resume=True)
    assert (out / "model.safetensors").is_file()


def test_resume_refuses_another_corpus(stopped):
    with open(stopped.corpus.sources[0], "a", encoding="utf-8") as f:  # the same file, other content
        f.write("\n\nan entirely new document about other things.\n")
    with pytest.raises(WarmstartError, match="--resume: the training data of .* changed since the run started"):
        run_pretrain(stopped, resume=True)


def test_resume_without_a_checkpoint_is_one_line(tmp_path, corpus_file, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["pretrain", f"corpus.sources=[{corpus_file}]", "train.max_steps=2", "output_dir=new", "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
