"""Multi-process pretraining on this machine: one process vs 2 processes under ddp, fsdp, ZeRO-2 and ZeRO-3.

    .venv/bin/python benchmarks/scale_out.py [--repeats 2] [--steps 30]

Each launch runs `warmstart pretrain` on the ANCHORS model (BERT 4L/256H, 8k vocabulary, sequence 128, MLM,
global batch 32) for `--steps` steps with one shared tokenizer; the launches alternate `--repeats` times.
Reported: steady tokens/s (median over repeats), the loss curve's largest relative gap to the one-process
run, and each process's share of weights + gradients + AdamW state, counted from the parameter count
(fp32; what sharding is for: ddp holds all of it in every process, ZeRO-2 shards gradients and optimizer
state, fsdp and ZeRO-3 shard all three). On a 2-core CPU, 2 processes share the same cores as one process
with 2 threads, so the throughput column shows the cost of the collectives, not a speed-up; the memory
column is what a GPU cluster buys.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import CORPUS, MODEL, ROOT, shared_tokenizer, steady_rate

ACCELERATE = ROOT / "configs" / "accelerate"
LAUNCHES = {  # name -> (command prefix, extra overrides, what each process holds of (weights, grads, optimizer))
    "1 process, 2 threads": ([sys.executable, "-m", "warmstart"], ["train.num_threads=2"], (1, 1, 1)),
    "ddp, 2 processes": ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "warmstart"],
                         [], (1, 1, 1)),
    "fsdp, 2 processes": ([sys.executable, "-m", "accelerate.commands.launch",
                           f"--config_file={ACCELERATE / 'fsdp.yaml'}", "-m", "warmstart"], [], (0.5, 0.5, 0.5)),
    "ZeRO-2, 2 processes": ([sys.executable, "-m", "accelerate.commands.launch",
                             f"--config_file={ACCELERATE / 'deepspeed_zero2.yaml'}", "-m", "warmstart"], [],
                            (1, 0.5, 0.5)),
    "ZeRO-3, 2 processes": ([sys.executable, "-m", "accelerate.commands.launch",
                             f"--config_file={ACCELERATE / 'deepspeed_zero3.yaml'}", "-m", "warmstart"], [],
                            (0.5, 0.5, 0.5)),
}


def run(name: str, work: Path, tok_dir: Path, steps: int, port: int) -> dict:
    prefix, extra, _ = LAUNCHES[name]
    out = work / name.split(",")[0].replace(" ", "_")
    args = [f"output_dir={out}", f"corpus.sources=[{CORPUS}]", f"corpus.cache_dir={work / 'cache'}",
            f"tokenizer.from_checkpoint={tok_dir}", *[f"model.{k}={v}" for k, v in MODEL.items()],
            "objective.nsp=false", "train.batch_size=32", f"train.max_steps={steps}", "train.log_every=1",
            f"train.eval_every={10 * steps}", "train.save_every_minutes=1000", "train.precision=fp32", *extra]
    env = {**os.environ, "MASTER_PORT": str(port)}
    if "accelerate" in prefix[2]:
        prefix = [*prefix[:3], f"--main_process_port={port}", *prefix[3:]]
    elif "torch.distributed.run" in prefix[2]:
        prefix = [*prefix[:3], f"--master_port={port}", *prefix[3:]]
    done = subprocess.run([*prefix, "pretrain", *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    log = [json.loads(x) for x in (out / "training_log.jsonl").read_text().splitlines()]
    log = [r for r in log if "loss" in r]
    return {"tokens_per_s": steady_rate([r["seconds"] for r in log], 32 * MODEL["max_seq_len"]),
            "losses": [r["loss"] for r in log]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shared_tokenizer(work / "tok")
        results: dict[str, list[dict]] = {name: [] for name in LAUNCHES}
        for r in range(args.repeats):
            for i, name in enumerate(LAUNCHES):
                results[name].append(run(name, work, work / "tok", args.steps, 29600 + 10 * r + i))
                print(f"repeat {r + 1}: {name}: {results[name][-1]['tokens_per_s']:,.0f} tokens/s", flush=True)
    from transformers import BertConfig, BertForMaskedLM

    params = sum(p.numel() for p in BertForMaskedLM(BertConfig(
        vocab_size=8192, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=1024)).parameters())
    reference = results["1 process, 2 threads"][0]["losses"]
    print(f"\n{args.steps} steps of global batch 32 x 128 tokens, fp32, {params / 1e6:.1f} M parameters; "
          f"median of {args.repeats} alternated repeats\n")
    print("| launch | tokens/s | vs 1 process | loss curve vs 1 process (max rel. gap) | "
          "weights + grads + AdamW per process (MB) |")
    print("|---|---|---|---|---|")
    base = statistics.median(x["tokens_per_s"] for x in results["1 process, 2 threads"])
    for name, runs in results.items():
        rate = statistics.median(x["tokens_per_s"] for x in runs)
        gap = max(abs(a - b) / abs(a) for a, b in zip(reference, runs[0]["losses"], strict=True))
        w, g, o = LAUNCHES[name][2]
        megabytes = params * 4 * (w + g + 2 * o) / 1e6
        print(f"| {name} | {rate:,.0f} | {rate / base:.2f}x | {gap:.1e} | {megabytes:.0f} |")


if __name__ == "__main__":
    main()
