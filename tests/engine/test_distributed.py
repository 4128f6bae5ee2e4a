"""Two CPU processes (gloo) train like one process with the same global batch."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_pretrain_config
from safetensors.torch import load_file
from test_e2e import _flat

from warmstart.engine.distributed import Cluster

pytestmark = pytest.mark.slow


def test_rows_split_the_global_batch_exactly():
    parts = [Cluster(r, 3).rows(10) for r in range(3)]
    assert [list(range(10))[p] for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ACCELERATE_CONFIGS = Path(__file__).parents[2] / "configs" / "accelerate"


def on_cpu() -> dict[str, str]:
    """The environment of the launched runs: on the CPU (gloo) wherever the suite runs. On a machine with one GPU,
    two CUDA processes cannot share it (NCCL refuses; warmstart says so in one line before any work), and the
    single-process reference must compute where the two do for their curves to agree."""
    return {**os.environ, "WARMSTART_DEVICE": "cpu"}


def _launch(launcher: str, procs: int) -> list[str]:
    if launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}",
                f"--master_port={_free_port()}", "-m", "warmstart"]
    # accelerate's multi-process launcher; on a CPU-only machine it runs the processes with gloo
    configs = {"accelerate-fsdp": "fsdp.yaml", "accelerate-zero2": "deepspeed_zero2.yaml",
               "accelerate-zero3": "deepspeed_zero3.yaml"}
    how = [f"--config_file={ACCELERATE_CONFIGS / configs[launcher]}"] if launcher in configs else ["--multi_gpu"]
    return [sys.executable, "-m", "accelerate.commands.launch", *how, f"--num_processes={procs}",
            f"--main_process_port={_free_port()}", "-m", "warmstart"]


@pytest.fixture(scope="module")
def single_process_run(pretrained, corpus_file, tmp_path_factory):
    """objective -> the folder of its single-process reference run. Run here, once per objective, and shared by
    the launchers that compare against it (a launched reference paid ~10 s of imports each time)."""
    from warmstart.pretraining.text import run_pretrain

    runs: dict[str, Path] = {}

    def run(objective: str, common: tuple[str, ...]) -> Path:
        if objective not in runs:
            folder = tmp_path_factory.mktemp(f"one-{objective}")
            with pytest.MonkeyPatch.context() as env:  # where the launched runs compute (on_cpu)
                env.setenv("WARMSTART_DEVICE", "cpu")
                runs[objective] = Path(run_pretrain(tiny_pretrain_config(corpus_file, folder / "one",
                                                                         folder / "cache", *common)))
        return runs[objective]

    return run


@pytest.mark.parametrize("launcher, objective", [
    ("torchrun", "mlm"),  # DDP-style: whole weights in every process, gradients averaged
    ("accelerate", "mlm+nsp"),
    ("torchrun", "electra"),  # the generator's samples split by rows (objectives/electra.py)
    ("accelerate-fsdp", "mlm+nsp"),  # FSDP2 through accelerate's FSDP config: sharded weights and optimizer
    ("torchrun", "electra-fsdp"),  # train.parallel=fsdp: tied and shared embeddings live in the root unit
    ("accelerate-zero2", "mlm+nsp"),  # DeepSpeed's engine: ZeRO-2 partitions gradients and optimizer state
    ("accelerate-zero3", "electra"),  # ZeRO-3 also the weights; they are gathered for the checkpoint
])
def test_two_processes_follow_the_single_process_loss_curve(pretrained, corpus_file, tmp_path, launcher, objective,
                                                            single_process_run):
    nsp, electra, fsdp = "nsp" in objective, "electra" in objective, "fsdp" in launcher + objective
    common = (f"tokenizer.from_checkpoint={pretrained}", f"objective.nsp={str(nsp).lower()}", "train.max_steps=20",
              "train.log_every=1", "train.eval_every=10", "train.batch_size=8",
              f"objective.name={'electra' if electra else 'mlm'}")
    one = single_process_run(objective.removesuffix("-fsdp"), common)
    two = tiny_pretrain_config(corpus_file, tmp_path / "two", tmp_path / "cache", *common,
                               *(["train.parallel=fsdp"] if fsdp and launcher == "torchrun" else []))
    done = subprocess.run([*_launch(launcher, 2), "pretrain", *[f"{k}={v}" for k, v in _flat(two).items()]],
                          capture_output=True, text=True, timeout=300, env=on_cpu())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes" in done.stdout
    assert ("fsdp: sharded" in done.stdout) == fsdp
    assert ("deepspeed" in done.stdout) == ("zero" in launcher)

    def curve(folder):
        log = [json.loads(x) for x in (folder / "training_log.jsonl").read_text().splitlines()]
        return [r["loss"] for r in log if "loss" in r]

    a, b = curve(one), curve(tmp_path / "two")
    assert len(a) == len(b) == 20
    assert all(abs(x - y) <= 1e-4 * abs(x) for x, y in zip(a, b, strict=True)), list(zip(a, b, strict=True))
    assert not (tmp_path / "two" / ".tokenizer").exists()
    # The saved weights are whole (gathered from the shards) and those of the single-process run
    w1, w2 = load_file(one / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert w1.keys() == w2.keys()
    # over all weights, relative to their norm: Adam's normalised steps turn float reduction-order noise into
    # full-size updates where the true gradient is zero (attention key biases), so per-tensor or elementwise
    # tolerances would measure that noise rather than the parallelism
    gap = sum((w1[k] - w2[k]).norm() ** 2 for k in w1).sqrt() / sum(w1[k].norm() ** 2 for k in w1).sqrt()
    assert gap < 1e-3, float(gap)
    held_out = [json.loads(x) for x in (tmp_path / "two" / "training_log.jsonl").read_text().splitlines()]
    assert any("val_rtd_acc" in r or "val_mlm_loss" in r for r in held_out)


@pytest.mark.parametrize("launcher, resume_with", [
    ("torchrun-fsdp", 1),  # the gathered state resumes in one process (a different world size)
    ("accelerate-zero2", 2),  # DeepSpeed's partitioned optimizer state resumes under the same launch
])
def test_a_sharded_run_killed_at_a_random_step_resumes(pretrained, corpus_file, tmp_path, launcher, resume_with):
    """SIGKILL to every process of a sharded 2-process run mid-way, then `--resume`: the final weights are those
    of the uninterrupted 2-process run (exactly under the same launch; within float noise in one process)."""
    import os
    import random
    import signal
    import time

    extra = ["train.parallel=fsdp"] if launcher == "torchrun-fsdp" else []
    common = ("train.save_every_minutes=1e-9", "objective.nsp=false", f"tokenizer.from_checkpoint={pretrained}",
              "train.max_steps=24", "train.log_every=1", "train.eval_every=1000", "train.batch_size=8", *extra)
    launch = _launch(launcher.removesuffix("-fsdp"), 2)

    def run(folder: str, resume: bool = False, procs: int = 2) -> subprocess.Popen:
        cfg = tiny_pretrain_config(corpus_file, tmp_path / folder, tmp_path / "cache", *common)
        how = launch if procs == 2 else [sys.executable, "-m", "warmstart"]
        # stderr to a file: a pipe nobody reads while the run goes on could fill and stall the workers, and
        # would be left open (a ResourceWarning)
        with open(tmp_path / f"{folder}{'.resumed' if resume else ''}.err", "w", encoding="utf-8") as err:
            return subprocess.Popen([*how, "pretrain", *[f"{k}={v}" for k, v in _flat(cfg).items()],
                                     *(["--resume"] if resume else [])], stdout=subprocess.DEVNULL,
                                    stderr=err, start_new_session=True, env=on_cpu())

    def tail(name: str) -> str:
        return (tmp_path / f"{name}.err").read_text(encoding="utf-8")[-3000:]

    full = run("full")
    assert full.wait(timeout=300) == 0, tail("full")
    kill_at = random.Random().randint(3, 12)
    cut = run("cut")
    log, deadline = tmp_path / "cut" / "training_log.jsonl", time.time() + 240
    while time.time() < deadline and cut.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= kill_at:
            break
        time.sleep(0.01)
    os.killpg(cut.pid, signal.SIGKILL)  # the launcher and both workers
    cut.wait()
    assert not (tmp_path / "cut" / "model.safetensors").exists(), "the run finished before it was killed"
    resumed = run("cut", resume=True, procs=resume_with)
    assert resumed.wait(timeout=300) == 0, tail("cut.resumed")
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys()
    if resume_with == 2:
        assert all(torch.equal(a[k], b[k]) for k in a), f"differs after a kill at step {kill_at}"
    else:
        gap = sum((a[k] - b[k]).norm() ** 2 for k in a).sqrt() / sum(a[k].norm() ** 2 for k in a).sqrt()
        assert gap < 1e-3, (float(gap), kill_at)


def test_parallel_mode_follows_the_accelerate_launch(monkeypatch):
    from warmstart.engine.distributed import parallel_mode
    from warmstart.errors import WarmstartError

    for var in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"):
        monkeypatch.delenv(var, raising=False)
    assert parallel_mode("auto") == "ddp" and parallel_mode("fsdp") == "fsdp"
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert parallel_mode("auto") == "fsdp" and parallel_mode("ddp") == "ddp"  # an explicit choice wins
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    assert parallel_mode("auto") == "deepspeed"
    with pytest.raises(WarmstartError, match="train.parallel: unknown value 'zero'"):
        parallel_mode("zero")


def test_deepspeed_config_takes_warmstarts_batch_and_refuses_what_warmstart_owns(monkeypatch, tmp_path):
    from warmstart.engine.distributed import deepspeed_config
    from warmstart.errors import WarmstartError

    monkeypatch.delenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", raising=False)
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "cpu")
    cfg = deepspeed_config(batch_size=32, grad_accum=2, max_grad_norm=1.0, world=4)
    assert cfg["zero_optimization"] == {"stage": 3, "offload_optimizer": {"device": "cpu"}}
    assert (cfg["train_micro_batch_size_per_gpu"], cfg["gradient_accumulation_steps"], cfg["train_batch_size"],
            cfg["gradient_clipping"]) == (8, 2, 64, 1.0)
    own = tmp_path / "ds.json"  # accelerate's templates say "auto" for precision: warmstart's autocast decides
    own.write_text(json.dumps({"zero_optimization": {"stage": 2}, "fp16": {"enabled": "auto"}}))
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(own))
    cfg = deepspeed_config(32, 1, 0.5, 2)
    assert cfg["zero_optimization"]["stage"] == 2 and "fp16" not in cfg and cfg["gradient_clipping"] == 0.5
    own.write_text(json.dumps({"optimizer": {"type": "Adam"}, "bf16": {"enabled": True}}))
    with pytest.raises(WarmstartError, match="remove bf16, optimizer: warmstart sets") as e:
        deepspeed_config(32, 1, 1.0, 2)
    assert str(own) in str(e.value) and "\n" not in str(e.value)


def test_a_checkpoint_resumes_only_where_its_optimizer_state_can_be_read(tmp_path):
    from warmstart.engine.distributed import resume_optimizer
    from warmstart.errors import WarmstartError

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(WarmstartError, match="optimizer state is DeepSpeed's; resume it under the same"):
        resume_optimizer(opt, None, {"optimizer": None}, tmp_path)
    with pytest.raises(WarmstartError, match="not written under DeepSpeed"):
        resume_optimizer(opt, object(), {"optimizer": opt.state_dict()}, tmp_path)
    resume_optimizer(opt, None, {"optimizer": opt.state_dict()}, tmp_path)  # the plain case loads


def test_deepspeed_on_a_cpu_builds_no_shared_memory_op():
    """DeepSpeed's CPU start compiles its shared-memory all-reduce with g++ (70 s on 2 cores) for inference
    only; warmstart marks it unbuildable, so DeepSpeed's own loader declines to build it."""
    pytest.importorskip("deepspeed")
    from deepspeed.comm.torch import build_shm_op

    from warmstart.engine.distributed import _skip_deepspeed_shm_build

    _skip_deepspeed_shm_build()
    assert build_shm_op() is None
