"""The few-label table (issue 20): Rotten Tomatoes at 8, 16 and 64 labels per class, SetFit's protocol.

    .venv/bin/python benchmarks/few_label.py [--per-class 8 16 64] [--seeds 5] [--out runs/few_label]

Every row sees the same labels: `data.labels = per class x 2`, drawn evenly over the two classes
(`data.balanced`), seeds 0..seeds-1, and the honest protocol (nothing outside those labels chooses anything).
Rows: TF-IDF + LR (C by cross-validation inside the labels); SetFit on MiniLM through the setfit library
(1.2.0, its paper's 20 pair iterations, one epoch), and the same capped at 40 steps as in the demo; MiniLM
with warmstart's linear probe and LP-FT (the demo's recipe at MiniLM's usual rates); MiniLM with
`train.strategy: setfit` (warmstart's own SetFit: the same pairs and loss through the one loop, head C
cross-validated); the demo's 5-minute checkpoint (runs/demo/pretrained, pretrained here if missing) with LP-FT.
Finished cells are reused, so an interrupted run continues where it stopped. Run it alone: two jobs on two
cores halve each other.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pandas as pd
import torch

from warmstart.models.common import minilm_folder
from warmstart.studies.demo import _pretrain, finetune_cell, setfit_cell, tfidf_cell
from warmstart.studies.report import markdown_table, summarise

SMALL_RATE = ("train.lr=5e-5", "train.head_lr=1e-3")  # MiniLM: 1e-3 (the tiny demo model's rate) would wreck it


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, nargs="+", default=[8, 16, 64])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default="runs/few_label")
    ap.add_argument("--demo-checkpoint", default="runs/demo/pretrained")
    args = ap.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    minilm = str(minilm_folder())
    demo = Path(args.demo_checkpoint)
    demo = demo if (demo / "metrics.json").is_file() else _pretrain(root / "demo_pretrained", None)
    balanced = ("data.balanced=true",)
    runs = {  # row -> (kind, init, overrides)
        "TF-IDF + LR": ("tfidf", None, ()),
        "SetFit on MiniLM (setfit library)": ("setfit", None, ()),
        "SetFit on MiniLM, capped at 40 steps": ("setfit", None, ("train.setfit.max_steps=40",)),
        "MiniLM, linear probe": ("finetune", minilm, ("train.strategy=linear_probe", *SMALL_RATE)),
        "MiniLM, LP-FT": ("finetune", minilm, ("train.strategy=lp_ft", *SMALL_RATE)),
        "MiniLM, strategy setfit (warmstart)": ("finetune", minilm, ("train.strategy=setfit",)),
        "demo checkpoint, LP-FT": ("finetune", str(demo), ()),
    }
    rows = []
    for per_class in args.per_class:
        n = 2 * per_class
        for seed in range(args.seeds):
            for name, (kind, init, overrides) in runs.items():
                if name.endswith("capped at 40 steps") and n * 2 * 20 // 16 <= 40:
                    continue  # the cap does not bind: the same run as the uncapped row
                slug = name.split(" (")[0].replace(" ", "_").replace(",", "")
                cell = root / "cells" / f"{slug}-{per_class}pc-seed{seed}"
                t = time.perf_counter()
                if kind == "tfidf":
                    m = tfidf_cell(n, seed, balanced)
                elif kind == "setfit":
                    m = setfit_cell(cell, n, seed, (*balanced, *overrides))
                else:
                    m = finetune_cell(cell, init, init, n, seed, (*balanced, *overrides))
                rows.append({"init": name, "labels": per_class, "seed": seed, "accuracy": m["accuracy"],
                             "macro_f1": m["macro_f1"], "seconds": m.get("seconds"),
                             "wall_seconds": round(time.perf_counter() - t, 1)})
                print(f"  {name:38s} {per_class:3d}/class seed {seed}: {m['accuracy']:.3f} "
                      f"({m.get('seconds', 0):.0f}s)", flush=True)
                pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    results = pd.DataFrame(rows)
    table = markdown_table(summarise(results), order=list(runs)).replace("labels |", "per class |")
    seconds = results.groupby(["init", "labels"])["seconds"].median().unstack().reindex(list(runs))
    timing = "\n".join(f"| {name} | " + " | ".join("-" if pd.isna(v) else f"{v:.0f}" for v in seconds.loc[name])
                       + " |" for name in seconds.index)
    header = "| row (median seconds per run) | " + " | ".join(f"{c}/class" for c in seconds.columns) + " |\n|---" \
             + "|---" * len(seconds.columns) + "|\n"
    wall = (time.perf_counter() - t0) / 60
    text = (f"Rotten Tomatoes test accuracy (%), mean ± std over {args.seeds} seeds, labels per class drawn evenly; "
            f"{cpu_name()}, {torch.get_num_threads()} threads; {wall:.0f} min\n\n{table}\n\n{header}{timing}\n")
    (root / "table.md").write_text(text, encoding="utf-8")
    (root / "meta.json").write_text(json.dumps({"cpu": cpu_name(), "minutes": round(wall, 1)}), encoding="utf-8")
    print("\n" + text)


if __name__ == "__main__":
    main()
