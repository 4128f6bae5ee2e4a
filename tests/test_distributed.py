"""Two CPU processes (gloo) train like one process with the same global batch."""

import json
import socket
import subprocess
import sys

import pytest
from conftest import tiny_pretrain_config
from test_e2e import _flat

from warmstart.distributed import Cluster

pytestmark = pytest.mark.slow


def test_rows_split_the_global_batch_exactly():
    parts = [Cluster(r, 3).rows(10) for r in range(3)]
    assert [list(range(10))[p] for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(launcher: str, procs: int) -> list[str]:
    if launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}",
                f"--master_port={_free_port()}", "-m", "warmstart"]
    # accelerate's multi-process launcher; on a CPU-only machine it runs the processes with gloo
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", f"--num_processes={procs}",
            f"--main_process_port={_free_port()}", "-m", "warmstart"]


@pytest.mark.parametrize("launcher, nsp", [("torchrun", False), ("accelerate", True)])
def test_two_processes_follow_the_single_process_loss_curve(pretrained, corpus_file, tmp_path, launcher, nsp):
    common = (f"tokenizer.from_checkpoint={pretrained}", f"objective.nsp={str(nsp).lower()}", "train.max_steps=20",
              "train.log_every=1", "train.eval_every=1000", "train.batch_size=8")
    one = tiny_pretrain_config(corpus_file, tmp_path / "one", tmp_path / "cache", *common)
    two = tiny_pretrain_config(corpus_file, tmp_path / "two", tmp_path / "cache", *common)
    for cfg, procs in ((one, 1), (two, 2)):
        args = [f"{k}={v}" for k, v in _flat(cfg).items()]
        launch = _launch(launcher, procs) if procs > 1 else [sys.executable, "-m", "warmstart"]
        done = subprocess.run([*launch, "pretrain", *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert (f"{procs} processes" in done.stdout) == (procs > 1)

    def curve(folder):
        log = [json.loads(x) for x in (folder / "training_log.jsonl").read_text().splitlines()]
        return [r["loss"] for r in log if "loss" in r]

    a, b = curve(tmp_path / "one"), curve(tmp_path / "two")
    assert len(a) == len(b) == 20
    assert all(abs(x - y) <= 1e-4 * abs(x) for x, y in zip(a, b, strict=True)), list(zip(a, b, strict=True))
    assert (tmp_path / "two" / "model.safetensors").is_file() and not (tmp_path / "two" / ".tokenizer").exists()
