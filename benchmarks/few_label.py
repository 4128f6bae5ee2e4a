"""The few-label table (issue 20): Rotten Tomatoes at 8, 16 and 64 labels per class, SetFit's protocol.

    .venv/bin/python benchmarks/few_label.py [--per-class 8 16 64] [--seeds 5] [--out runs/few_label]
        [--rows SUBSTRING ...] [--adapted FOLDER]

Every row sees the same labels: `data.labels = per class x 2`, drawn evenly over the two classes
(`data.balanced`), seeds 0..seeds-1, and the honest protocol (nothing outside those labels chooses anything).
Rows: TF-IDF + LR (C by cross-validation inside the labels); SetFit on MiniLM through the setfit library
(1.2.0, its paper's 20 pair iterations, one epoch), and the same capped at 40 steps as in the demo; MiniLM
with warmstart's linear probe and LP-FT (the demo's recipe at MiniLM's usual rates; and LP-FT for the recipe's
whole 300 steps on all the labels, `train.patience=0`, nothing held out, and for `train.max_epochs` (20) instead,
as `warmstart finetune` trains by default); MiniLM with
`train.strategy: setfit` (warmstart's own SetFit: the same pairs and loss through the one loop, head C
cross-validated); the demo's 5-minute checkpoint (runs/demo/pretrained, pretrained here if missing) with LP-FT;
MiniLM adapted to Rotten Tomatoes' unlabelled text (SimCSE, one pass over the training snippets without their
labels and 1,083 plot summaries: benchmarks/domain_adaptation.py's recipe, built once or read from `--adapted`)
with strategy setfit and the linear probe. `--rows`: only the rows whose name contains one of the substrings.
Beside the table: each warmstart row minus the setfit library, paired by seed (the same labels), with the 95% t
interval of the per-seed differences.
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
from warmstart.studies.efficiency import gap
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


def publish(text: str, out_dir: str | Path, name: str) -> Path:
    """Print a benchmark's markdown and write it to `out_dir/name` (the folder made if missing). -> the file"""
    print(text)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / name).write_text(text, encoding="utf-8")
    return Path(out_dir) / name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, nargs="+", default=[8, 16, 64])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default="runs/few_label")
    ap.add_argument("--demo-checkpoint", default="runs/demo/pretrained")
    ap.add_argument("--adapted", default=None, help="MiniLM adapted to RT's unlabelled text (default: OUT/adapted, "
                                                    "built by domain_adaptation.py's SimCSE recipe if missing)")
    ap.add_argument("--rows", nargs="+", default=None, help="only rows whose name contains one of these")
    args = ap.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    minilm = str(minilm_folder())
    demo = Path(args.demo_checkpoint)
    runs = rows_to_run(minilm, demo, Path(args.adapted) if args.adapted else root / "adapted", root, args.rows)
    results = measure(runs, args.per_class, args.seeds, root)
    table = markdown_table(summarise(results), order=list(runs)).replace("labels |", "per class |")
    seconds = results.groupby(["init", "labels"])["seconds"].median().unstack().reindex(list(runs))
    timing = "\n".join(f"| {name} | " + " | ".join("-" if pd.isna(v) else f"{v:.0f}" for v in seconds.loc[name])
                       + " |" for name in seconds.index)
    header = "| row (median seconds per run) | " + " | ".join(f"{c}/class" for c in seconds.columns) + " |\n|---" \
             + "|---" * len(seconds.columns) + "|\n"
    wall = (time.perf_counter() - t0) / 60
    text = (f"Rotten Tomatoes test accuracy (%), mean ± std over {args.seeds} seeds, labels per class drawn evenly; "
            f"{cpu_name()}, {torch.get_num_threads()} threads; {wall:.0f} min\n\n{table}\n\n{header}{timing}\n\n"
            f"{paired_against_library(results)}\n")
    (root / "table.md").write_text(text, encoding="utf-8")
    (root / "meta.json").write_text(json.dumps({"cpu": cpu_name(), "minutes": round(wall, 1)}), encoding="utf-8")
    print("\n" + text)


def rows_to_run(minilm: str, demo: Path, adapted: Path, root: Path, only: list[str] | None) -> dict:
    """row name -> (kind, init, overrides); the demo checkpoint and the adapted MiniLM are built only when a row
    that needs them is asked for."""
    wanted = (lambda name: any(o in name for o in only)) if only else (lambda name: True)
    if wanted("demo checkpoint"):
        demo = demo if (demo / "metrics.json").is_file() else _pretrain(root / "demo_pretrained", None)
    if wanted("MiniLM + SimCSE"):
        adapted = adapted if (adapted / "metrics.json").is_file() else adapt_on_rt(adapted)
    balanced = ("data.balanced=true",)
    setfit = ("train.strategy=setfit",)
    probe = ("train.strategy=linear_probe", *SMALL_RATE)
    rows = {  # row -> (kind, init, overrides)
        "TF-IDF + LR": ("tfidf", None, ()),
        "SetFit on MiniLM (setfit library)": ("setfit", None, ()),
        "SetFit on MiniLM, capped at 40 steps": ("setfit", None, ("train.setfit.max_steps=40",)),
        "MiniLM, linear probe": ("finetune", minilm, probe),
        "MiniLM, LP-FT": ("finetune", minilm, ("train.strategy=lp_ft", *SMALL_RATE)),
        "MiniLM, LP-FT, whole budget": ("finetune", minilm, ("train.strategy=lp_ft", *SMALL_RATE, "train.patience=0")),
        "MiniLM, LP-FT, 20 epochs": ("finetune", minilm, ("train.strategy=lp_ft", *SMALL_RATE, "train.patience=0",
                                                          "train.max_steps=null")),  # warmstart finetune's default budget
        "MiniLM, strategy setfit (warmstart)": ("finetune", minilm, setfit),
        "MiniLM + SimCSE on RT text, linear probe": ("finetune", str(adapted), probe),
        "MiniLM + SimCSE on RT text, strategy setfit (warmstart)": ("finetune", str(adapted), setfit),
        "demo checkpoint, LP-FT": ("finetune", str(demo), ()),
    }
    return {name: (kind, init, (*balanced, *overrides)) for name, (kind, init, overrides) in rows.items()
            if wanted(name)}


def adapt_on_rt(out: Path) -> Path:
    """MiniLM adapted by SimCSE for one pass (at most 10 minutes) over RT's unlabelled text, as in
    benchmarks/domain_adaptation.py (its training snippets without labels, and 1,083 plot summaries)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from dev_tasks import build
    from domain_adaptation import adapt

    return adapt(build("rt", out.parent / "data"), "simcse", 10.0, 1.0, out)


def measure(runs: dict, per_class: list[int], seeds: int, root: Path) -> pd.DataFrame:
    """Every row at every count and seed (finished cells reused); results.csv rewritten after each."""
    rows = []
    for pc in per_class:
        n = 2 * pc
        for seed in range(seeds):
            for name, (kind, init, overrides) in runs.items():
                if name.endswith("capped at 40 steps") and n * 2 * 20 // 16 <= 40:
                    continue  # the cap does not bind: the same run as the uncapped row
                slug = name.split(" (")[0].replace(" ", "_").replace(",", "").replace("+", "plus")
                cell = root / "cells" / f"{slug}-{pc}pc-seed{seed}"
                t = time.perf_counter()
                if kind == "tfidf":
                    m = tfidf_cell(n, seed, overrides)
                elif kind == "setfit":
                    m = setfit_cell(cell, n, seed, overrides)
                else:
                    m = finetune_cell(cell, init, init, n, seed, overrides)
                rows.append({"init": name, "labels": pc, "seed": seed, "accuracy": m["accuracy"],
                             "macro_f1": m["macro_f1"], "seconds": m.get("seconds"),
                             "wall_seconds": round(time.perf_counter() - t, 1)})
                print(f"  {name:38s} {pc:3d}/class seed {seed}: {m['accuracy']:.3f} "
                      f"({m.get('seconds', 0):.0f}s)", flush=True)
                pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    return pd.DataFrame(rows)


def paired_against_library(results: pd.DataFrame) -> str:
    """Each warmstart row minus SetFit through the library, paired by seed, with the 95% t interval."""
    library = "SetFit on MiniLM (setfit library)"
    frame = results.assign(task="rt", score=results["accuracy"])
    lines = ["Paired by seed (the same labels), minus the setfit library: mean (95% t interval of the per-seed "
             "differences)", "", "| row | " + " | ".join(f"{pc} per class" for pc in sorted(frame.labels.unique()))
             + " |", "|---|" + "---|" * frame.labels.nunique()]
    for name in frame["init"].unique():
        if name == library or not name.startswith(("MiniLM", "demo")):
            continue
        cells = []
        for pc in sorted(frame.labels.unique()):
            g = gap(frame, "rt", name, library, pc, paired=True)
            cells.append("–" if g is None else f"{g['gap']:+.1f} ({g['low']:+.1f} to {g['high']:+.1f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
