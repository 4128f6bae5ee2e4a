"""`warmstart auto` at the top of the label range: does its default (SetFit) give way where another pipeline is
clearly better?

    .venv/bin/python benchmarks/auto_many_labels.py [--tasks rt wordnet] [--labels 500] [--seeds 1] [--budget 15m]
        [--setfit-max-steps 500] [--out runs/auto_many]

benchmarks/auto.py measured auto at 16 labels a class, where SetFit was the best fixed pipeline and no challenger
was clearly better; what the default costs where a challenger really is better was not seen
(benchmarks/results/auto.md). Here, with `--labels` in all (balanced: `--labels` / classes a class; a dev task of
benchmarks/dev_tasks.py, no unlabelled text, so the strategy is all auto chooses), auto runs within `--budget`
and its model is scored on the test split; beside it, on the same seeded labels and test split, each of auto's
pipelines fitted once on MiniLM with auto's own settings (autopilot/run.py's STRATEGY: the linear probe, SetFit,
LP-FT, and full fine-tuning, which auto queues for sets of labels only), the setfit library's SetFit and TF-IDF +
LR. Finished cells are reused, so an interrupted run continues; another `--budget` runs auto in folders of its own
and shares the fixed pipelines' cells. Run it alone: auto's budget is wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from auto import markdown  # noqa: E402
from dev_tasks import build  # noqa: E402
from few_label import cpu_name  # noqa: E402

import warmstart  # noqa: E402
from warmstart.autopilot.run import STRATEGY  # noqa: E402
from warmstart.autopilot.verdict import pipeline_name  # noqa: E402
from warmstart.models.common import minilm_folder  # noqa: E402
from warmstart.studies.demo import finetune_cell, setfit_cell, tfidf_cell  # noqa: E402


def reference(task: str, task_dir: Path, root: Path, n: int, seed: int, setfit_caps: list[int] = ()) -> dict:
    """Each of auto's strategies on MiniLM as auto sets it, the setfit library and TF-IDF, on the seed's n labels,
    scored on test; also warmstart's SetFit with its pair steps capped (`train.setfit.max_steps`) at each of
    `setfit_caps`. -> {pipeline: (accuracy, seconds)}"""
    data = (f"data.path={task_dir / 'labelled.csv'}", "data.balanced=true")
    minilm = str(minilm_folder())
    out = {"TF-IDF + LR": tfidf_cell(n, seed, data)}
    out["SetFit on MiniLM (library)"] = setfit_cell(root / "cells" / task / f"setfit_lib-n{n}-seed{seed}", n, seed,
                                                    data)
    for strategy, overrides in STRATEGY.items():
        cell = root / "cells" / task / f"{strategy}-n{n}-seed{seed}"
        out[pipeline_name(f"{strategy}:MiniLM")] = finetune_cell(
            cell, minilm, minilm, n, seed, (*data, *overrides, "train.pooling=mean"))
    for steps in setfit_caps:  # SetFit's cost grows with the labels (2 x 20 pairs each): what a cap loses
        out[f"MiniLM, SetFit (warmstart), {steps} pair steps"] = finetune_cell(
            root / "cells" / task / f"setfit-cap{steps}-n{n}-seed{seed}", minilm, minilm, n, seed,
            (*data, *STRATEGY["setfit"], "train.pooling=mean", f"train.setfit.max_steps={steps}"))
    return {k: (m["accuracy"], m.get("seconds")) for k, m in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["rt", "wordnet"])
    ap.add_argument("--labels", type=int, default=500, help="labels in all, balanced over the task's classes")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--budget", default="15m")
    ap.add_argument("--out", default="runs/auto_many")
    ap.add_argument("--setfit-max-steps", type=int, nargs="*", default=[],
                    help="also fit warmstart's SetFit with its pair steps capped at each of these")
    args = ap.parse_args()
    root = Path(args.out)
    suffix = "" if args.budget == "15m" else f"-{args.budget}"  # auto's folders and tables apart per budget, cells shared
    t0 = time.perf_counter()
    rows = []
    for seed in range(args.seeds):
        for task in args.tasks:
            task_dir = build(task, root / "data")
            classes = pd.read_csv(task_dir / "labelled.csv").label.nunique()
            per_class = args.labels // classes
            n = per_class * classes
            run_dir = root / "auto" / f"{task}-n{n}-seed{seed}{suffix}"
            t = time.perf_counter()
            result = warmstart.auto(task_dir / "labelled.csv", budget=args.budget, output_dir=run_dir,
                                    per_class=per_class, seed=seed).verdict
            state = json.loads((run_dir / "auto_state.json").read_text(encoding="utf-8"))["steps"]
            print(f"[{task} seed {seed}] auto: {time.perf_counter() - t:.0f} s this call", flush=True)
            ref = reference(task, task_dir, root, n, seed, args.setfit_max_steps)
            best = max(ref, key=lambda k: ref[k][0])
            leader = result["comparisons"].get("leader")
            rows.append({"task": task, "seed": seed, "labels": n, "auto_pipeline": result["chosen"]["name"],
                         "auto_cv": result["chosen"]["score"],
                         "auto_test": round(100 * result["chosen"]["test_score"], 1),
                         "best_hindsight": best, "best_test": round(100 * ref[best][0], 1),
                         "auto_minus_best": round(100 * (result["chosen"]["test_score"] - ref[best][0]), 1),
                         "cross_validated": "; ".join(f"{r['name']} {r['score']}" for r in result["pipelines"]),
                         "not_run": "; ".join(f"{s['name']} ({s['status']})" for s in result["skipped"]),
                         "folds": state.get("folds"),
                         "leader": f"{leader['a']} {leader['gap']:+} ({leader['low']} to {leader['high']})"
                         if leader else "none",
                         "auto_wall_min": round(state["done"]["wall_s"] / 60, 1),
                         **{f"ref {k}": round(100 * v[0], 1) for k, v in ref.items()},
                         **{f"sec {k}": round(v[1]) if v[1] else None for k, v in ref.items()}})
            pd.DataFrame(rows).to_csv(root / f"results{suffix}.csv", index=False)
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    cols = ["task", "seed", "labels", "auto_pipeline", "auto_cv", "auto_test", "best_hindsight", "best_test",
            "auto_minus_best", "auto_wall_min"]
    refs = [c for c in table.columns if c.startswith("ref ")]
    text = (f"`warmstart auto --labels N --budget {args.budget}` (balanced, no unlabelled text) on {cpu_name()}, "
            f"{torch.get_num_threads()} threads; {(time.perf_counter() - t0) / 60:.0f} min in all\n\n"
            + markdown(table[cols]) + "\n\nFixed pipelines on the same labels, test accuracy (%):\n\n"
            + markdown(table[["task", "seed", *refs]].rename(columns=lambda c: c[4:] if c.startswith("ref ") else c))
            + "\n\nWhat auto cross-validated (out-of-fold score):\n\n"
            + "\n".join(f"- {r.task} seed {r.seed}: {r.cross_validated}; folds {r.folds}; lead not followed: "
                        f"{r.leader}; not run: {r.not_run or 'none'}" for r in table.itertuples()) + "\n")
    (root / f"table{suffix}.md").write_text(text, encoding="utf-8")
    print("\n" + text)


if __name__ == "__main__":
    main()
