"""How close is `warmstart auto`'s cost model to the fits it times? (autopilot/cost.py)

    .venv/bin/python benchmarks/auto_cost.py [--tasks rt acl chatterbot] [--per-class 16 64] [--folds 2]
        [--strategies setfit lp_ft] [--out runs/auto_cost]

auto runs a pipeline's folds only when their estimated cost fits the time left, so an estimate far above the truth
skips pipelines that would fit, and one far below overruns the budget. For each dev task (benchmarks/dev_tasks.py)
and count: the N labels auto would draw (`--per-class`, seed 0), MiniLM's SetFit step timed as auto times it
(cost.step_seconds at auto's max_length), then fold 0 of `--folds` of each strategy fitted exactly as auto fits it
(crossval.fold_finetune with auto's overrides) and timed. Reports measured / estimated per fit, and the strategy's
cost in SetFit steps per label that the measurements imply (against what cost.py counts). One CSV row per
fit; run alone: it times wall clock.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from dev_tasks import build  # noqa: E402
from few_label import cpu_name  # noqa: E402

from warmstart.autopilot import cost  # noqa: E402
from warmstart.autopilot.crossval import fold_finetune, load_labelled  # noqa: E402
from warmstart.autopilot.run import STRATEGY  # noqa: E402
from warmstart.data.text import load_tokenizer  # noqa: E402
from warmstart.engine.runtime import use_bf16  # noqa: E402
from warmstart.models.common import minilm_folder  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["rt", "acl", "chatterbot"])
    ap.add_argument("--per-class", nargs="+", type=int, default=[16, 64])
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--strategies", nargs="+", default=["setfit", "lp_ft"])
    ap.add_argument("--out", default="runs/auto_cost")
    args = ap.parse_args()
    root, folder, bf16 = Path(args.out), str(minilm_folder()), use_bf16("auto")
    rows = []
    for task in args.tasks:
        task_dir = build(task, root / "data")
        for per_class in args.per_class:
            data = load_labelled(str(task_dir / "labelled.csv"), "text", "label", None, per_class, 0, args.folds)
            ids = load_tokenizer(folder)(data.texts, truncation=True, max_length=512)["input_ids"]
            max_length = cost.choose_max_length([len(i) for i in ids])
            step = cost.step_seconds(folder, data.texts, max_length, bf16, 0)
            n_fold = len(data.fold(0)[0])
            for strategy in args.strategies:
                run = root / "fits" / f"{task}-{per_class}-{strategy}"
                overrides = [*STRATEGY[strategy], "train.pooling=mean", f"train.max_length={max_length}",
                             "train.seed=0"]
                t0 = time.perf_counter()
                fold_finetune(data, 0, run, folder, overrides, run_dir=run / f"run-{time.time_ns()}")
                seconds = time.perf_counter() - t0
                estimate = cost.fit_seconds(strategy, n_fold, step)
                implied = (seconds - cost.STARTUP_S) / (n_fold * step)  # SetFit steps per label this fit cost
                rows.append({"task": task, "per_class": per_class, "n_fold": n_fold, "max_length": max_length,
                             "strategy": strategy, "step_s": round(step, 3), "estimated_s": round(estimate, 1),
                             "measured_s": round(seconds, 1), "measured_over_estimated": round(seconds / estimate, 2),
                             "setfit_steps_per_label": round(implied, 2)})
                print(rows[-1], flush=True)
                pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    table = pd.DataFrame(rows)
    per = table.groupby("strategy").setfit_steps_per_label.median()
    print(f"\n{cpu_name()}, {torch.get_num_threads()} threads, bf16 {bf16}\n")
    print(table.to_string(index=False))
    print(f"\nmedian SetFit steps per label (cost.py counts setfit {cost.SETFIT_STEPS_PER_LABEL:.2f}, lp_ft "
          f"{cost.lp_ft_setfit_steps(1.0):.3f}):\n{per.to_string()}")


if __name__ == "__main__":
    main()
