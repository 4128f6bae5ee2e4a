"""Which pair-training learning rate should `train.strategy: setfit` default to? Judged on dev splits, not test.

    .venv/bin/python benchmarks/setfit_lr.py [--tasks rt acl wordnet] [--lrs 2e-5 6e-5] [--per-class 16]
        [--seeds 2] [--bodies shipped keep0.5] [--source runs/domain_adaptation] [--out runs/setfit_lr]

SetFit's library and paper train the body on pairs at 2e-5 (setfit 1.2.0's `body_learning_rate`). One seed of
issue 21's WordNet diagnostic moved a lot with 6e-5 (shipped MiniLM 85.1 -> 87.8, the SimCSE-adapted one 69.2 ->
82.3), but on the test split, which must not choose a default. Here each dev task (benchmarks/dev_tasks.py, built
by domain_adaptation.py under `--source`) is re-split so that no test row is read: `rt` scores on its own
validation split; `acl` and `wordnet` hold out up to 300 training rows a class (seeded) as the scored split and
draw the labels from the rest. Bodies: MiniLM as shipped and the adapted encoders domain_adaptation.py left in
`--source/adapted/<task>/` (`keep0.5`: SimCSE, half of MiniLM mixed back; `whole`: without the mix; or any
folder name there). The honest protocol as everywhere:
N = per class x classes labels drawn evenly, nothing outside them chooses anything; only `train.setfit.lr`
changes between cells, so each cell's time is the same at every rate. Finished cells are reused. Run it alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name  # noqa: E402

from warmstart.models.common import minilm_folder  # noqa: E402
from warmstart.studies.demo import finetune_cell  # noqa: E402

BODIES = {"shipped": None, "keep0.5": "simcse-10m-1e-keep0.5", "whole": "simcse-10m-1e"}


def dev_split(task: str, source: Path, out: Path, per_class: int = 300) -> Path:
    """The task's labelled.csv with its test rows dropped and a dev split scored in their place."""
    target = out / "data" / task / "labelled.csv"
    if target.is_file():
        return target
    rows = pd.read_csv(source / "data" / task / "labelled.csv")
    if (rows.split == "validation").any():
        rows = rows[rows.split != "test"].replace({"split": {"validation": "test"}})
    else:
        train = rows[rows.split == "train"]
        dev = pd.concat([g.sample(min(per_class, len(g) // 4), random_state=0) for _, g in train.groupby("label")])
        rows = train.assign(split="train")
        rows.loc[dev.index, "split"] = "test"
    target.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(target, index=False)
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["rt", "acl", "wordnet"])
    ap.add_argument("--lrs", nargs="+", default=["2e-5", "6e-5"])
    ap.add_argument("--per-class", type=int, nargs="+", default=[16])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--bodies", nargs="+", default=["shipped", "keep0.5"],
                    help=f"{', '.join(BODIES)}, or the name of any folder under SOURCE/adapted/<task>/")
    ap.add_argument("--source", default="runs/domain_adaptation")
    ap.add_argument("--out", default="runs/setfit_lr")
    args = ap.parse_args()
    source, root, t0, rows = Path(args.source), Path(args.out), time.perf_counter(), []
    for task in args.tasks:
        path = dev_split(task, source, root)
        classes = pd.read_csv(path).label.nunique()
        for body in args.bodies:
            named = BODIES.get(body, body)
            init = str(minilm_folder()) if named is None else str(source / "adapted" / task / named)
            for per_class in args.per_class:
                for seed in range(args.seeds):
                    for lr in args.lrs:
                        cell = root / "cells" / task / f"{body}-lr{lr}-{per_class}pc-seed{seed}"
                        m = finetune_cell(cell, init, init, per_class * classes, seed, (
                            f"data.path={path}", "data.balanced=true", "train.strategy=setfit",
                            f"train.setfit.lr={lr}"))
                        rows.append({"task": task, "body": body, "lr": lr, "per_class": per_class, "seed": seed,
                                     "accuracy": m["accuracy"], "seconds": m.get("seconds")})
                        print(f"[{task}] {body:8s} lr {lr} {per_class}/class seed {seed}: {m['accuracy']:.3f} "
                              f"({m.get('seconds', 0):.0f} s)", flush=True)
                        pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    results = pd.DataFrame(rows)
    table = results.pivot_table(index=["task", "body", "per_class"], columns="lr", values="accuracy") * 100
    text = (f"Dev-split accuracy %, mean of {args.seeds} seeds, strategy setfit; {cpu_name()}, "
            f"{torch.get_num_threads()} threads; {(time.perf_counter() - t0) / 60:.0f} min\n\n"
            + "| task | body | per class | " + " | ".join(f"lr {c}" for c in table.columns) + " |\n"
            + "|---" * (3 + len(table.columns)) + "|\n"
            + "".join("| " + " | ".join(map(str, key)) + " | " + " | ".join(f"{v:.1f}" for v in r) + " |\n"
                      for key, r in zip(table.index, table.to_numpy(), strict=True)))
    (root / "table.md").write_text(text, encoding="utf-8")
    print("\n" + text)


if __name__ == "__main__":
    main()
