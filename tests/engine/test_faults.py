"""Faults end in one line and lose nothing (issue 18.5): a full disk at any save leaves the previous checkpoint
intact and no temporary files; damaged tables and bad output paths are one line."""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_pretrain_config

from warmstart.cli import main
from warmstart.engine.checkpoint import RESUME_DIR, TRAINING_STATE, atomic_folder
from warmstart.errors import WarmstartError
from warmstart.pretraining.text import run_pretrain


def _strays(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".tmp" in p.name or ".old" in p.name)


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(pretrained, corpus_file, tmp_path, monkeypatch):
    """The second resumable save fails with ENOSPC (a patched writer): one WarmstartError, the first save's
    checkpoint-last whole and loadable, no half-written folder left."""
    real, calls = torch.save, {"n": 0}

    def disk_fills_up(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            with open(path, "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(obj, path, *args, **kwargs)

    cfg = tiny_pretrain_config(corpus_file, tmp_path / "run", tmp_path / "cache", "train.save_every_minutes=1e-9",
                               f"tokenizer.from_checkpoint={pretrained}", "objective.nsp=false")
    monkeypatch.setattr(torch, "save", disk_fills_up)
    with pytest.raises(WarmstartError, match="No space left on device.*previous copy is intact") as e:
        run_pretrain(cfg)
    assert "\n" not in str(e.value)
    monkeypatch.setattr(torch, "save", real)
    state = torch.load(tmp_path / "run" / RESUME_DIR / TRAINING_STATE, weights_only=True)
    assert state["loop"]["step"] == 1  # the first save, whole
    assert _strays(tmp_path / "run") == []
    resumed = run_pretrain(cfg, resume=True)  # and the run continues from it
    assert (resumed / "model.safetensors").is_file()


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))  # the tiny model's weights are larger
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then a write past the limit fails with EFBIG


def test_a_real_write_limit_ends_in_one_line_and_no_stray_files(pretrained, corpus_file, tmp_path):
    args = [f"{k}={v}" for k, v in {
        "output_dir": tmp_path / "run", "corpus.sources": f"[{corpus_file}]", "corpus.cache_dir": tmp_path / "cache",
        "tokenizer.from_checkpoint": pretrained, "objective.nsp": "false", "model.num_layers": 2,
        "model.hidden_size": 32, "model.num_heads": 2, "model.intermediate_size": 64, "model.max_seq_len": 32,
        "train.batch_size": 8, "train.max_steps": 4, "train.precision": "fp32"}.items()]
    done = subprocess.run([sys.executable, "-m", "warmstart", "pretrain", *args], capture_output=True, text=True,
                          preexec_fn=_limit_file_size, timeout=300, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and ("File too large" in lines[0]), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert _strays(tmp_path / "run") == [] and not (tmp_path / "run" / "model.safetensors").exists()


def test_atomic_folder_turns_a_write_fault_into_one_line(tmp_path):
    atomic_folder(tmp_path / "ck", lambda f: (f / "a").write_text("v1"))

    def fails(folder: Path) -> None:
        (folder / "a").write_text("half")
        raise OSError(errno.EROFS, "Read-only file system")

    with pytest.raises(WarmstartError, match="ck: cannot write it \\(Read-only file system\\); nothing was replaced"):
        atomic_folder(tmp_path / "ck", fails)
    assert (tmp_path / "ck" / "a").read_text() == "v1" and _strays(tmp_path) == []


@pytest.mark.parametrize("content,message", [
    ("task,init\nx,y\n", "missing columns"),
    ("\x00\x01binary", "cannot parse|missing columns|not valid UTF-8"),
    ('task,init,strategy,labels,seed,metric,score\n"unterminated', "cannot parse|missing columns"),
    ("task,init,strategy,labels,seed,metric,score\nt,a,full,ten,0,accuracy,0.5\n", "column 'labels' holds non-numbers"),
    ("", "cannot parse"),
])
def test_a_damaged_results_table_is_one_line(tmp_path, content, message, capsys):
    (tmp_path / "results.csv").write_bytes(content.encode("utf-8", errors="surrogatepass"))
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    import re

    assert re.search(message, err), err


def test_predict_output_rules(tmp_path):
    from warmstart.prediction import output_path

    src = tmp_path / "in.csv"
    src.write_text("text\nx\n")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(WarmstartError, match="a folder; give --output a file name"):
        output_path(src, str(tmp_path / "dir.csv"))
    with pytest.raises(WarmstartError, match="that is the input file"):
        output_path(src, str(src))
    assert output_path(src, str(tmp_path / "new" / "deeper" / "p.csv")) == tmp_path / "new" / "deeper" / "p.csv"
