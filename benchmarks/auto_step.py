"""How steady is auto's timed training step, the unit of its cost model? (autopilot/cost.py)

    .venv/bin/python benchmarks/auto_step.py [--tasks chatterbot rt] [--per-class 16] [--seeds 5] [--truth 24]
        [--out runs/auto_step]

auto times one SetFit step of each encoder on its N labelled texts before it decides what fits the budget; for the
setfit library the step runs in fp32 at MiniLM's max_seq_length (256). A step pads its batch to the batch's
longest text, so where lengths have a long tail its time depends on which texts the timed batches drew (and
the estimate decides whether a pipeline runs at all). For each task: the N labels of seed 0, then per seed the step as it was timed before
(3 random batches padded to their own longest, after a warm-up) and as cost.step_seconds times it now (padded
to the expected longest of a random batch), against the truth: the mean over `--truth` random batches, each
padded to its own longest, which is what a fit pays. Run alone: it times wall clock. Since the fifteenth session
auto times the library's step as the library runs it (two columns of 16 encoded apart, the fused AdamW) and
benchmarks/library_step.py compares that with the library's own steps; this script keeps the one-pass step of
32 texts, whose padding it was written to study.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from auto import markdown  # noqa: E402
from dev_tasks import build  # noqa: E402
from few_label import cpu_name  # noqa: E402

from warmstart.autopilot import cost  # noqa: E402
from warmstart.autopilot.crossval import load_labelled  # noqa: E402
from warmstart.engine.runtime import autocast, place, to_device  # noqa: E402
from warmstart.models.common import load_pretrained, minilm_folder  # noqa: E402
from warmstart.tasks.classification import encode, make_batches  # noqa: E402


def random_batch_steps(folder: str, texts: list[str], max_length: int, seed: int, steps: int) -> list[float]:
    """Seconds of `steps` fp32 SetFit steps on random batches, each padded to its own longest (after a warm-up):
    the measurement cost.step_seconds made before (steps = 3), and with many steps the truth."""
    from transformers import AutoModel

    from warmstart.data.text import load_tokenizer

    tokenizer = load_tokenizer(folder)
    model = place(load_pretrained(AutoModel, folder, quiet=True)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-9)
    rng, times = np.random.default_rng(seed), []
    for r in range(steps + 1):
        rows = [texts[i] for i in rng.integers(0, len(texts), 32)]
        b = to_device(make_batches(encode(tokenizer, pd.DataFrame({"text": rows}), max_length), None, 32,
                                   tokenizer.pad_token_id)[0])
        t0 = time.perf_counter()
        with autocast(False):
            hidden = model(**b).last_hidden_state
        mask = b["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if r:
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["chatterbot", "rt"])
    ap.add_argument("--per-class", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--truth", type=int, default=24, help="random batches averaged for the true step")
    ap.add_argument("--out", default="runs/auto_step")
    args = ap.parse_args()
    root, folder, max_length = Path(args.out), str(minilm_folder()), 256  # the library's step: fp32 at 256
    rows, t0 = [], time.perf_counter()
    for task in args.tasks:
        data = load_labelled(str(build(task, root / "data") / "labelled.csv"), "text", "label", None,
                             args.per_class, 0, 2)
        truth = float(np.mean(random_batch_steps(folder, data.texts, max_length, 1000, args.truth)))
        for seed in range(args.seeds):
            before = float(np.mean(random_batch_steps(folder, data.texts, max_length, seed, 3)))
            now = cost.step_seconds(folder, data.texts, max_length, False, seed)
            rows.append({"task": task, "seed": seed, "labels": len(data.texts), "truth_s": round(truth, 3),
                         "before_s": round(before, 3), "now_s": round(now, 3),
                         "before/truth": round(before / truth, 2), "now/truth": round(now / truth, 2)})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    root.mkdir(parents=True, exist_ok=True)
    table.to_csv(root / "results.csv", index=False)
    spread = table.groupby("task")[["before/truth", "now/truth"]].agg(["min", "median", "max"])
    text = (f"The setfit library's step as auto times it (fp32, max_length {max_length}, 32 texts), "
            f"{args.per_class} labels per class, seeds 0-{args.seeds - 1}, truth = mean of {args.truth} random "
            f"batches; {cpu_name()}, {torch.get_num_threads()} threads, "
            f"{(time.perf_counter() - t0) / 60:.0f} min\n\n" + markdown(table) + "\n\nmin / median / max per task:\n\n"
            + markdown(spread.round(2).reset_index().set_axis(
                ["task", *[f"{a} {b}" for a, b in spread.columns]], axis=1)) + "\n")
    (root / "table.md").write_text(text, encoding="utf-8")
    print("\n" + text)


if __name__ == "__main__":
    main()
