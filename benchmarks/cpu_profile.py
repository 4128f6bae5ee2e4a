"""Where a CPU step's time goes: torch.profiler over a SetFit fit or a pretraining step, and the measurements the
fourteenth session's notes quote beside them.

    .venv/bin/python benchmarks/cpu_profile.py setfit [--torch-dropout] [--steps 40]
    .venv/bin/python benchmarks/cpu_profile.py pretrain [--steps 10]    # + the same step with bf16 weights
    .venv/bin/python benchmarks/cpu_profile.py alloc                    # the word-embedding gradient, mmap or not
    .venv/bin/python benchmarks/cpu_profile.py variants [--repeats 2]   # compile with eager / SDPA attention
    .venv/bin/python benchmarks/cpu_profile.py widths                   # a library step's padded widths
    .venv/bin/python benchmarks/cpu_profile.py adamw                    # an AdamW step on MiniLM, fused or not

setfit: MiniLM on 100 Rotten Tomatoes labels, `--steps` pair steps, the whole fit profiled (`--torch-dropout`:
torch's dropout kernel, as before engine/dropout.py). pretrain: benchmarks/gpu_throughput.py's small shape (the
CPU benchmark's BERT 4L/256H, batch 32), warmstart's attention choice, `--steps` profiled after warm-up, then the
step time with the model cast to bf16 and no autocast (no master weights: a speed probe, not a recipe). alloc: a
(30522, 384) gradient each step, with glibc's defaults and with mmap off (`mallopt`, in a child process).
variants: pretrain_throughput.py's warmstart run with `train.compile` and each attention, alternated. widths: the
expected padded width of 32 texts (how autopilot/cost timed the setfit library's step until the fifteenth session)
against 16 (each side of its pair batch, which sentence-transformers encodes apart), on auto_many_labels' RT and
WordNet labels. adamw: one optimizer step over MiniLM's parameters with torch's default AdamW and with the one fits
use. Run alone.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "sentiment" / "rotten_tomatoes.csv"


def table(prof, rows: int = 25) -> str:
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def setfit(steps: int, torch_dropout: bool) -> None:
    import torch.nn.functional as F

    import warmstart
    from warmstart.engine import attention, runtime
    from warmstart.models.common import minilm_folder

    if torch_dropout:
        runtime.use_fast_dropout = lambda model: 0
        attention.fast_dropout = F.dropout
    with tempfile.TemporaryDirectory() as tmp, torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        warmstart.finetune("sentiment", init=str(minilm_folder()), output_dir=f"{tmp}/m",
                           data={"path": str(DATA), "labels": 100},
                           train={"strategy": "setfit", "max_length": 64, "setfit": {"max_steps": steps}})
    print(table(prof))


def pretrain(steps: int) -> None:
    from common import shared_tokenizer
    from gpu_throughput import SHAPES, shape_overrides

    from warmstart.config import PretrainConfig, load_config
    from warmstart.engine.attention import use_attention
    from warmstart.engine.distributed import Cluster
    from warmstart.engine.loop import Budget, LoopSettings, LoopState, make_optimizer, train_loop
    from warmstart.engine.runtime import place, set_threads, use_bf16
    from warmstart.pretraining.text import TextPretraining

    shape = SHAPES["small"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shared_tokenizer(work / "tokenizer")
        cfg = load_config(PretrainConfig, None, shape_overrides(work / "tokenizer", work, work / "out", shape))
        set_threads(None)
        bf16 = use_bf16(cfg.train.precision)
        job = TextPretraining(cfg, Cluster(), work / "none", False, bf16)
        place(job.model)
        print("attention:", use_attention(job.model, cfg.train.attention), "| bf16:", bf16)
        batches = list(itertools.islice(job.batches(LoopState()), 5 + 2 * steps + 5))

        def run(part: list, model_bf16: bool) -> float:
            settings = LoopSettings(bf16=bf16 and not model_bf16, log_every=10_000, desc="steps")
            optimizer = make_optimizer(job.model, cfg.train.lr, cfg.train.weight_decay)
            t0 = time.perf_counter()
            train_loop(job.model, optimizer, iter(part), lambda b: job.step(job.objective, b, 0.5),
                       Budget(max_steps=len(part)), settings, tokens_fn=job.count)
            return (time.perf_counter() - t0) / len(part)

        run(batches[:5], False)
        per_step = run(batches[5:5 + steps], False)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            run(batches[5 + steps:5 + 2 * steps], False)
        print(table(prof))
        job.model.to(torch.bfloat16)
        run(batches[-5:], True)
        pure = run(batches[5:5 + steps], True)
    tokens = shape["batch"] * shape["max_seq_len"]
    print(f"autocast: {1000 * per_step:.1f} ms a step ({tokens / per_step:,.0f} tokens/s); bf16 weights, no autocast: "
          f"{1000 * pure:.1f} ms ({tokens / pure:,.0f} tokens/s), {per_step / pure:.3f}x")


ALLOC = """
import ctypes, sys, time, torch
torch.set_num_threads(2)
if sys.argv[1] == "off":
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-4, 0)  # M_MMAP_MAX: no mmap
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep freed memory
w, ids = torch.nn.Embedding(30522, 384), torch.randint(0, 30522, (64, 40))
def step():
    w.weight.grad = None
    w(ids).sum().backward()
step()
times = []
for _ in range(30):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
print(sorted(times)[15] * 1000)
"""


def alloc() -> None:
    for mode in ("default", "off"):
        out = subprocess.run([sys.executable, "-c", ALLOC, mode], capture_output=True, text=True, check=True)
        print(f"mmap {mode}: {float(out.stdout.strip()):.1f} ms a step (embedding forward + backward, median of 30)")


def variants(repeats: int) -> None:
    from common import shared_tokenizer
    from pretrain_throughput import warmstart_run

    runs = {"default": [], "compile, eager attention": ["train.compile=true", "train.attention=eager"],
            "compile (SDPA)": ["train.compile=true"]}
    rates: dict[str, list[float]] = {k: [] for k in runs}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shared_tokenizer(work / "tokenizer")
        for _ in range(repeats):
            for name, overrides in runs.items():
                rates[name].append(warmstart_run(work / "tokenizer", work, 40, overrides)["tokens_per_s"])
    for name, values in rates.items():
        print(f"{name}: {statistics.median(values):,.0f} tokens/s ({' / '.join(f'{v:,.0f}' for v in values)})")


def adamw() -> None:
    from transformers import AutoModel

    from warmstart.engine.loop import make_optimizer
    from warmstart.models.common import minilm_folder

    model = AutoModel.from_pretrained(str(minilm_folder()))
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    for name, optimizer in [("torch's default AdamW", torch.optim.AdamW(model.parameters(), lr=1e-9)),
                            ("make_optimizer (fused)", make_optimizer(model, 1e-9, 0.01))]:
        times = []
        for _ in range(12):
            t0 = time.perf_counter()
            optimizer.step()
            times.append(time.perf_counter() - t0)
        print(f"{name}: {1000 * statistics.median(times[2:]):.1f} ms a step on MiniLM (median of 10 after 2)")


def widths() -> None:
    import pandas as pd
    from dev_tasks import build

    from warmstart.autopilot.cost import padded_width
    from warmstart.data.text import load_tokenizer
    from warmstart.models.common import minilm_folder
    from warmstart.tasks.classification import encode

    tokenizer = load_tokenizer(str(minilm_folder()))
    for task in ("rt", "wordnet"):
        texts = pd.read_csv(build(task, ROOT / "runs" / "auto_many" / "data") / "labelled.csv").query(
            "split != 'test'").text
        lengths = [len(i) for i in encode(tokenizer, pd.DataFrame({"text": texts}), 256)[0]]
        print(f"{task}: expected padded width of 32 texts {padded_width(lengths, 32, 0)}, of 16 "
              f"{padded_width(lengths, 16, 0)} (median length {statistics.median(lengths)}, longest {max(lengths)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("job", choices=["setfit", "pretrain", "alloc", "variants", "widths", "adamw"])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--torch-dropout", action="store_true")
    args = ap.parse_args()
    if args.job == "setfit":
        setfit(args.steps or 40, args.torch_dropout)
    elif args.job == "pretrain":
        pretrain(args.steps or 10)
    elif args.job == "alloc":
        alloc()
    elif args.job == "widths":
        widths()
    elif args.job == "adamw":
        adamw()
    else:
        variants(args.repeats)


if __name__ == "__main__":
    main()
