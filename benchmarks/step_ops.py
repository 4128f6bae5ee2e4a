"""How many ops one pretraining step dispatches, by kind: on a GPU each kernel-launching op is a launch the host
pays for, so this counts, on the CPU, what a host-bound GPU step spends its time on (issue 23).

    .venv/bin/python benchmarks/step_ops.py [--shape base] [--batch 4] [--top 25] [KEY=VALUE overrides]

Builds the text pretraining job at a benchmarks/gpu_throughput.py shape (a small batch: the count does not
depend on it), runs two warm-up steps of the training loop, then counts the aten ops of two more under a
TorchDispatchMode (views and transposes included: they cost dispatch time but launch nothing).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import tempfile
from pathlib import Path

import torch
from common import shared_tokenizer
from gpu_throughput import SHAPES, shape_overrides
from torch.utils._python_dispatch import TorchDispatchMode


class Count(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def main() -> None:
    from warmstart.config import PretrainConfig, load_config
    from warmstart.engine.distributed import Cluster
    from warmstart.engine.loop import Budget, LoopSettings, LoopState, make_optimizer, train_loop
    from warmstart.engine.runtime import place, use_bf16
    from warmstart.pretraining.text import TextPretraining

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="base", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    shape = dict(SHAPES[args.shape], batch=args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shared_tokenizer(work / "tokenizer")
        cfg = load_config(PretrainConfig, None, [*shape_overrides(work / "tokenizer", work, work / "out", shape),
                                                 *args.overrides])
        bf16 = use_bf16(cfg.train.precision)
        job = TextPretraining(cfg, Cluster(), work / "none", False, bf16)
        place(job.model)
        batches = list(itertools.islice(job.batches(LoopState()), 4))
        optimizer = make_optimizer(job.model, cfg.train.lr, cfg.train.weight_decay)
        settings = LoopSettings(bf16=bf16, log_every=10_000, desc="ops")

        def steps(part: list) -> None:
            train_loop(job.model, optimizer, iter(part), lambda b: job.step(job.objective, b, 0.5),
                       Budget(max_steps=len(part)), settings, tokens_fn=job.count)

        steps(batches[:2])
        count = Count()
        with count:
            steps(batches[2:])
    print(f"\nshape {args.shape}, bf16 {bf16}, on {'cuda' if torch.cuda.is_available() else 'cpu'}: "
          f"{sum(count.ops.values()) / 2:,.0f} ops a step")
    print("| op | a step |\n|---|---|")
    for name, n in count.ops.most_common(args.top):
        print(f"| {name} | {n / 2:g} |")


if __name__ == "__main__":
    main()
