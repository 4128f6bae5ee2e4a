"""The pretraining skeleton's promises: --resume continues the same run or refuses in one line (another
architecture, another corpus), and a finished folder is reported as what it is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
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


def scripted_held_out(monkeypatch, values: list[float | None]) -> None:
    """The text job's validation pass returns `values` in turn (None: no figure), so early stopping's choices
    are known in advance."""
    from warmstart.pretraining.text import TextPretraining

    left = iter(values)
    monkeypatch.setattr(TextPretraining, "evaluate", lambda self, forward: (
        {} if (v := next(left, None)) is None else {"val_mlm_loss": v}))


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture
def steady(pretrained, corpus_file, tmp_path):
    """Settings under which the first steps of two runs are identical whatever their budgets (constant rate)."""
    return lambda name, *extra: tiny_pretrain_config(
        corpus_file, tmp_path / name, tmp_path / "cache", f"tokenizer.from_checkpoint={pretrained}",
        "objective.nsp=false", "train.schedule=constant", "train.warmup_fraction=0", "train.eval_every=1", *extra)


def test_a_rising_held_out_loss_stops_the_run_and_keeps_the_best_weights(steady, monkeypatch, capsys):
    scripted_held_out(monkeypatch, [None, None])  # the reference: two steps, nothing to choose with
    two = run_pretrain(steady("two", "train.max_steps=2"))
    scripted_held_out(monkeypatch, [3.0, 2.0, 2.5, 2.6, 2.7, 2.8])  # best at step 2, then three passes worse
    out = run_pretrain(steady("stopped", "train.max_steps=50", "train.patience=3"))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["steps"] == 5 and metrics["val_mlm_loss"] == 2.0  # stopped at step 5; the figures of what is kept
    assert metrics["early_stopping"] == {"watched": "val_mlm_loss", "patience": 3, "best_step": 2, "best": 2.0,
                                         "last": 2.8, "last_step": 5, "stopped_early": True, "kept": "best"}
    kept, reference = weights(out), weights(two)
    assert kept.keys() == reference.keys() and all(torch.equal(kept[k], reference[k]) for k in kept)
    assert "kept step 2's weights" in capsys.readouterr().out


def test_the_best_weights_survive_a_resume(steady, monkeypatch):
    scripted_held_out(monkeypatch, [None, None])
    two = run_pretrain(steady("two", "train.max_steps=2"))
    scripted_held_out(monkeypatch, [3.0, 2.0, 2.5, 2.6, 2.6])  # best at step 2 of 4
    cfg = steady("killed", "train.max_steps=4", "train.patience=10", "train.save_every_minutes=1e-9")
    out = run_pretrain(cfg)
    (out / "model.safetensors").unlink()  # as if killed after its last resumable checkpoint
    scripted_held_out(monkeypatch, [2.7, 2.8, 2.9])
    cfg.train.max_steps = 6
    out = run_pretrain(cfg, resume=True)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["steps"] == 6 and metrics["early_stopping"]["best_step"] == 2
    kept, reference = weights(out), weights(two)
    assert all(torch.equal(kept[k], reference[k]) for k in kept)


def test_patience_is_range_checked(corpus_file, tmp_path):
    with pytest.raises(WarmstartError, match="train.patience"):
        tiny_pretrain_config(corpus_file, tmp_path / "x", tmp_path / "c", "train.patience=-1")


def test_a_real_run_watches_a_figure_its_validation_reports(pretrained):
    """The watched key is one the MLM job's validation pass really returns (the tests above script it)."""
    metrics = json.loads((pretrained / "metrics.json").read_text(encoding="utf-8"))
    stop = metrics["early_stopping"]
    assert stop["watched"] == "val_mlm_loss" and stop["best"] is not None
    assert metrics["val_mlm_loss"] == stop["best"] or stop["kept"] == "last"


def test_last_weights_stay_when_the_end_is_within_the_tolerance(steady, monkeypatch):
    """A final loss a hair above an earlier best is noise, not over-fitting: the folder keeps the last weights."""
    scripted_held_out(monkeypatch, [3.0, 2.0, 2.01, 2.01])  # 0.5% above the best at step 2
    out = run_pretrain(steady("plateau", "train.max_steps=3", "train.patience=3"))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["early_stopping"]["kept"] == "last" and metrics["val_mlm_loss"] == 2.01


@pytest.mark.parametrize("overrides, grows", [
    (("train.patience=3",), True),                              # early stopping follows the held-out loss
    (("train.patience=0",), False),                             # nothing follows it: the fraction alone
    (("train.patience=3", "corpus.min_validation_tokens=0"), False),
    (("train.patience=3", "objective.name=electra"), False),    # ELECTRA watches nothing
])
def test_a_small_corpus_holds_out_more_where_early_stopping_reads_it(overrides, grows, corpus_file, tmp_path,
                                                                      capsys):
    out = tmp_path / "run"
    run_pretrain(tiny_pretrain_config(corpus_file, out, tmp_path / "cache", "train.max_steps=1",
                                      "corpus.validation_fraction=0.01", "objective.nsp=false", *overrides))
    held = int(capsys.readouterr().out.split(" held out)")[0].rsplit("(", 1)[1])
    docs = sum(1 for block in corpus_file.read_text(encoding="utf-8").split("\n\n") if block.strip())
    assert (held > round(docs * 0.01)) == grows, (held, docs)


def test_a_file_of_one_text_a_line_holds_a_piece_out_and_follows_it(tmp_path, capsys):
    """No blank lines: one document, cut into pieces of 256 lines (11 here). 5% of 11 is none, which left early
    stopping nothing to follow while the log said it followed the held-out loss; now one piece is held out, and
    checked on MLM alone (NSP's negatives need a second document)."""
    corpus = tmp_path / "lines.txt"
    corpus.write_text("".join(f"the {['good', 'bad', 'long'][i % 3]} film number {i % 40} was seen\n"
                              for i in range(2600)), encoding="utf-8")
    out = run_pretrain(tiny_pretrain_config(corpus, tmp_path / "run", tmp_path / "cache", "corpus.validation_fraction=0.01",
                                            "train.patience=3", "train.max_steps=3", "train.eval_every=3"))
    said = capsys.readouterr().out
    assert "11 documents (1 held out)" in said and "MLM+NSP" in said
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert any("val_mlm_loss" in r for r in log)
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["early_stopping"]["watched"] == "val_mlm_loss"


@pytest.mark.parametrize("docs, why", [(8, ": 8 documents, too few to hold one out, so no early stopping"),
                                       (40, ": too little text to hold out a loss, so no early stopping")])
def test_the_reason_nothing_is_held_out_names_the_cause(docs, why):
    """2,000 reviews a line (256k tokens, 8 pieces of 256 lines) were said to be 'too little text'."""
    from warmstart.pretraining.text import nothing_held_out

    said = nothing_held_out(docs)
    assert said.startswith(why) and said.endswith("or corpus.line_by_line=true each line")


@pytest.mark.parametrize("mode, backend", [("auto", "warmstart_cpu"), ("sdpa", "sdpa"), ("eager", "eager")])
def test_the_run_computes_attention_with_the_configured_backend(corpus_file, tmp_path, monkeypatch, mode, backend):
    """train.attention reaches the model that trains (auto: the timed CPU backend), and the folder it writes
    still loads with transformers' own default."""
    from transformers import AutoConfig

    import warmstart.pretraining.run as run_module

    seen = []
    real = run_module.use_attention
    monkeypatch.setattr(run_module, "use_attention", lambda model, m: seen.append(real(model, m)) or seen[-1])
    cfg = tiny_pretrain_config(corpus_file, tmp_path / "out", tmp_path / "cache", "train.max_steps=2",
                               f"train.attention={mode}")
    final = run_pretrain(cfg)
    assert seen == [backend]
    assert AutoConfig.from_pretrained(final)._attn_implementation != "warmstart_cpu"
