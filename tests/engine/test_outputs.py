"""Output folders are owned (issue 18.1): a run replaces only a folder a warmstart run of its kind wrote, never
its own inputs or the current folder, and never runs twice into one folder at once. Every refused run is one
line, exit status 2, and touches nothing outside its own folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from warmstart.cli import main
from warmstart.engine.outputs import RUN_MARKER, Claim, check_output, claim, kind_of
from warmstart.errors import WarmstartError


@pytest.fixture
def sandbox(pretrained, sentiment_csv, corpus_file, tmp_path, monkeypatch):
    """A user's working folder: a checkpoint, labelled data, a corpus, a folder of their own files."""
    shutil.copytree(pretrained, tmp_path / "ckpt")
    (tmp_path / "data").mkdir()
    shutil.copy(sentiment_csv, tmp_path / "data" / "s.csv")
    shutil.copy(corpus_file, tmp_path / "corpus.txt")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    (tmp_path / "ft.yaml").write_text("init: ckpt\ndata: {path: data/s.csv}\ntrain: {max_steps: 2}\n")
    (tmp_path / "study.yaml").write_text("inits: [ckpt]\ntasks: {s: {recipe: ft.yaml, labels: [10]}}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


FINETUNE = ["finetune", "init=ckpt", "data.path=data/s.csv", "train.max_steps=2", "train.precision=fp32"]
PRETRAIN = ["pretrain", "corpus.sources=[corpus.txt]", "train.max_steps=2", "tokenizer.vocab_size=200",
            "tokenizer.min_frequency=1", "model.num_layers=1", "model.hidden_size=32", "model.num_heads=2",
            "model.intermediate_size=64", "model.max_seq_len=32", "train.batch_size=4", "train.precision=fp32",
            "corpus.cache_dir=.cache"]

REFUSED = [
    ("a folder of the user's files", [*FINETUNE, "output_dir=mine"], "holds files warmstart did not write"),
    ("the init checkpoint itself", [*FINETUNE, "output_dir=ckpt"], "output_dir=ckpt is init=ckpt"),
    ("inside the init checkpoint", [*FINETUNE, "output_dir=ckpt/ft"], "output_dir=ckpt/ft is inside init=ckpt"),
    ("the labelled data file", [*FINETUNE, "output_dir=data/s.csv"], "is data.path=data/s.csv"),
    ("a folder holding the data", [*FINETUNE, "output_dir=data"], "output_dir=data contains data.path"),
    ("the current folder", [*FINETUNE, "output_dir=."], "output_dir=.: that is the current folder"),
    ("a folder above the current one", [*FINETUNE, "output_dir=.."], "or one above it"),
    ("a pretraining run's folder", [*FINETUNE, "init=scratch", "tokenizer=ckpt", "output_dir=ckpt"], "is tokenizer=ckpt"),
    ("pretraining into the user's files", [*PRETRAIN, "output_dir=mine"], "holds files warmstart did not write"),
    ("pretraining over its corpus", [*PRETRAIN, "output_dir=corpus.txt"], "is corpus.sources[0]=corpus.txt"),
    ("pretraining into the current folder", [*PRETRAIN, "output_dir=."], "that is the current folder"),
    ("pretraining inside its init", [*PRETRAIN, "model.init=ckpt", "output_dir=ckpt/more"], "is inside model.init=ckpt"),
    ("a study into the user's files", ["study", "study.yaml", "output_dir=mine"], "holds files warmstart did not write"),
    ("the demo into the user's files", ["demo", "--output-dir", "mine"], "holds files warmstart did not write"),
]


@pytest.mark.parametrize("what,argv,message", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_run_never_writes_over_what_it_does_not_own(sandbox, what, argv, message, capsys):
    before = snapshot(sandbox)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and message in err, err
    assert snapshot(sandbox) == before, "a refused run touched files"
    assert "--overwrite" in err or "holds" not in err


def test_overwrite_replaces_a_foreign_folder_only_when_asked(sandbox):
    assert main([*FINETUNE, "output_dir=mine", "--overwrite"]) == 0
    assert not (sandbox / "mine" / "thesis.tex").exists() and (sandbox / "mine" / RUN_MARKER).is_file()
    assert kind_of(sandbox / "mine") == "finetune"
    assert main([*FINETUNE, "output_dir=ckpt", "--overwrite"]) == 2  # --overwrite never covers an input


def test_a_run_replaces_its_own_kind_and_refuses_another_kind(sandbox, capsys):
    assert main([*FINETUNE, "output_dir=runs/ft"]) == 0
    assert main([*FINETUNE, "output_dir=runs/ft", "train.seed=1"]) == 0  # a fine-tuning folder: replaced
    assert main([*PRETRAIN, "output_dir=runs/ft"]) == 2
    assert "holds a warmstart finetune run" in capsys.readouterr().err
    assert main([*PRETRAIN, "output_dir=runs/pre"]) == 0 and kind_of(sandbox / "runs" / "pre") == "pretrain"
    assert main([*FINETUNE, "output_dir=runs/pre"]) == 2


def test_a_second_run_into_the_same_folder_stops_at_its_start(sandbox, capsys):
    with claim(sandbox / "runs" / "busy", "finetune"):
        before = snapshot(sandbox)
        assert main([*FINETUNE, "output_dir=runs/busy"]) == 2
        assert f"another warmstart run (pid {os.getpid()}) is writing it" in capsys.readouterr().err
        assert snapshot(sandbox) == before
    assert main([*FINETUNE, "output_dir=runs/busy"]) == 0  # released at the end of the first run


def test_a_killed_run_does_not_leave_its_lock_stuck(tmp_path):
    code = ("import sys, time\nfrom warmstart.engine.outputs import claim\n"
            f"c = claim({str(tmp_path / 'run')!r}, 'pretrain')\nprint('locked', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(WarmstartError, match="another warmstart run"):
        Claim(tmp_path / "run", "pretrain", {}).acquire()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    t = time.perf_counter()
    with claim(tmp_path / "run", "pretrain"):
        pass
    assert time.perf_counter() - t < 3


def test_check_output_rules_without_a_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert check_output("empty", "finetune") == tmp_path / "empty"  # an empty folder is anyone's
    assert check_output("new/deeper", "finetune") == tmp_path / "new" / "deeper"
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(WarmstartError, match="a file, not a folder"):
        check_output("a_file", "finetune")
    with pytest.raises(WarmstartError, match="output_dir is empty"):
        check_output(" ", "finetune")
    legacy = tmp_path / "legacy"  # a run folder written before markers existed
    legacy.mkdir()
    (legacy / "warmstart_config.yaml").write_text("init: x\ntask: classification\n")
    assert kind_of(legacy) == "finetune" and check_output("legacy", "finetune") == legacy


def test_replace_file_is_whole_or_nothing(tmp_path):
    from warmstart.engine.outputs import replace_file

    path = tmp_path / "table.csv"
    path.write_text("old\n", encoding="utf-8")

    def half_then_fail(tmp):
        tmp.write_text("half", encoding="utf-8")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        replace_file(path, half_then_fail)
    assert path.read_text(encoding="utf-8") == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]
    replace_file(path, lambda tmp: tmp.write_text("new\n", encoding="utf-8"))
    assert path.read_text(encoding="utf-8") == "new\n" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]
