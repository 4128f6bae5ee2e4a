"""Does `warmstart rank` order candidate checkpoints the way fine-tuning them would, and at what cost?

For each task (Rotten Tomatoes sentiment at 500 labels, WNUT-16 NER at 500 training sentences, Fashion-MNIST
at 10 labels per class), every candidate is ranked once from frozen features (`warmstart rank`, timed with its
data loading), then fine-tuned with the task's recipe over several seeds. Reported per task and score: Kendall
tau and weighted tau (scipy's hyperbolic weighting, the thuml model-selection benchmark's measure) between the
score and the mean fine-tuned test metric, and the time of ranking over the time of fine-tuning every
candidate once.

    .venv/bin/python benchmarks/rank_validation.py [--tasks sentiment ner fmnist] [--seeds 3]

Candidates are checkpoints other benchmarks and recipes leave in runs/ (a missing one is skipped, named):
text: MiniLM-L6, MiniLM + TAPT (with and without the head warm-up), warmstart MLM / ELECTRA / HF recipe
(benchmarks/small_budget.py), MiniLM adapted by SimCSE (`make demo`) and by TSDAE on Rotten Tomatoes' text
(benchmarks/domain_adaptation.py; whole step and mixed back half-way), the demo's pretrained checkpoint, the task
encoders (configs/pretrain/tasks.yaml, uncased and cased) and the relatedness pair (configs/study/
relatedness.yaml: movie text vs the King James Bible); images: SimCLR and autoencoder encoders of 1 to 6
minutes and two widths, pretrained here when missing (IMAGE_RUNS). Finished fine-tuning cells are reused
(runs/rank_validation/<task>/<candidate>-seed<k>/metrics.json). Writes the table to `--out` (runs/rank_validation/
table.md); benchmarks/results/rank_validation.md keeps each measurement beside the earlier ones, copied by hand.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from warmstart.models.common import minilm_folder
from warmstart.select.rank import DEFAULT_SCORE, SCORES

ROOT = Path(__file__).resolve().parent.parent

OUT = ROOT / "runs" / "rank_validation"
RUNS = ROOT / "runs"
TEXT_CANDIDATES = {
    "MiniLM-L6": minilm_folder,
    "MiniLM + TAPT": lambda: RUNS / "small_budget" / "minilm_tapt",
    "MiniLM + TAPT, head warm-up": lambda: RUNS / "small_budget" / "minilm_tapt_head_warmup",
    "MiniLM + SimCSE (demo, 2 min)": lambda: RUNS / "demo" / "adapted",
    "MiniLM + TSDAE on RT": lambda: RUNS / "domain_adaptation" / "adapted" / "rt" / "tsdae-10m-1e",
    "MiniLM + TSDAE on RT, keep 0.5": lambda: RUNS / "domain_adaptation" / "adapted" / "rt" / "tsdae-10m-1e-keep0.5",
    "demo pretrained (2.5 min)": lambda: RUNS / "demo" / "pretrained",
    "warmstart MLM": lambda: RUNS / "small_budget" / "warmstart_mlm",
    "warmstart ELECTRA": lambda: RUNS / "small_budget" / "warmstart_electra",
    "HF recipe": lambda: RUNS / "small_budget" / "hf_recipe",
    "tasks encoder": lambda: RUNS / "tasks" / "pretrained",
    "tasks encoder, cased": lambda: RUNS / "tasks" / "pretrained-cased",
    "movie text, 5 min": lambda: RUNS / "study" / "relatedness" / "pretrained" / "movies",
    "KJV, 5 min": lambda: RUNS / "study" / "relatedness" / "pretrained" / "kjv",
}
SIMCLR, AE = "configs/pretrain/simclr_fashion_mnist.yaml", "configs/pretrain/autoencoder_fashion_mnist.yaml"
# Image encoders this script pretrains itself when missing (name: recipe, minutes, overrides), so that the image
# row needs no other benchmark's runs: several budgets, two widths, two objectives (17 minutes in all on 2 cores)
IMAGE_RUNS = {
    "SimCLR w512, 6 min": (SIMCLR, 6, ()),
    "SimCLR w512, 3 min": (SIMCLR, 3, ()),
    "SimCLR w512, 1 min": (SIMCLR, 1, ()),
    "SimCLR w256, 3 min": (SIMCLR, 3, ("model.widths=[64, 128, 256]",)),
    "autoencoder w512, 3 min": (AE, 3, ()),
    "autoencoder w512, 1 min": (AE, 1, ()),
}


def image_folder(name: str) -> Path:
    return RUNS / "rank_validation" / "encoders" / name.replace(" ", "_").replace(",", "")


IMAGE_CANDIDATES = {name: (lambda name=name: image_folder(name)) for name in IMAGE_RUNS}
# (recipe, overrides, candidates, metric): the recipes users run, at few labels
TASKS = {
    "sentiment": ("configs/finetune/sentiment.yaml",
                  ["data.labels=500", "train.strategy=lp_ft", "train.max_steps=300", "train.eval_every=20",
                   "train.patience=10"], TEXT_CANDIDATES, "accuracy"),
    "ner": ("configs/finetune/ner.yaml", ["data.labels=500"], TEXT_CANDIDATES, "entity_f1"),
    "fmnist": ("configs/finetune/fashion_mnist.yaml", [], IMAGE_CANDIDATES, "accuracy"),
}

# ELECTRA's classification head is dense + GELU + linear, so LP-FT's logistic-regression head cannot be loaded
# into it; that candidate is fine-tuned whole, as a user would have to (benchmarks/small_budget.py does too)
CANDIDATE_OVERRIDES = {("sentiment", "warmstart ELECTRA"): ["train.strategy=full"]}


def pretrain_image_encoders() -> None:
    from warmstart.config import ImagePretrainConfig, load_config
    from warmstart.pretraining.images import run_image_pretrain

    for name, (recipe, minutes, overrides) in IMAGE_RUNS.items():
        out = image_folder(name)
        if not (out / "model.safetensors").is_file():
            run_image_pretrain(load_config(ImagePretrainConfig, ROOT / recipe,
                                           [f"output_dir={out}", f"train.max_minutes={minutes}", *overrides]))


def available(candidates: dict) -> dict[str, Path]:
    found = {}
    for name, where in candidates.items():
        folder = Path(where())
        if (folder / "config.json").is_file():
            found[name] = folder
        else:
            print(f"  skipped {name}: no checkpoint at {folder}")
    return found


def finetune(task: str, name: str, folder: Path, seed: int) -> dict:
    from warmstart.config import FinetuneConfig, ImageFinetuneConfig, load_config
    from warmstart.tasks.image_classification import run_image_finetune
    from warmstart.tasks.registry import run_task

    recipe, overrides, _, _ = TASKS[task]
    out = OUT / task / f"{name.replace(' ', '_').replace(',', '')}-seed{seed}"
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    args = [f"output_dir={out}", f"init={folder}", f"train.seed={seed}", "train.save_model=false", *overrides,
            *CANDIDATE_OVERRIDES.get((task, name), [])]
    if task == "fmnist":
        return run_image_finetune(load_config(ImageFinetuneConfig, ROOT / recipe, args))
    return run_task(load_config(FinetuneConfig, ROOT / recipe, args))


def correlations(table: pd.DataFrame, truth: str) -> dict[str, tuple[float, float]]:
    """score -> (Kendall tau, weighted tau) against the fine-tuned metric."""
    from scipy.stats import kendalltau, weightedtau

    return {s: (float(kendalltau(table[s], table[truth]).statistic), float(weightedtau(table[s], table[truth]).statistic))
            for s in SCORES}


def validate(task: str, seeds: int, repeats: int) -> dict:
    from warmstart.select.rank import run_rank

    recipe, overrides, candidates, metric = TASKS[task]
    found = available(candidates)
    folders = [str(p) for p in found.values()]
    times: dict[str, list[float]] = {"all": [], "default": []}
    for _ in range(repeats):  # all scores and the default order alone (what a user pays), alternated
        for kind, scores in (("all", None), ("default", [DEFAULT_SCORE])):
            t0 = time.perf_counter()
            table = run_rank(str(ROOT / recipe), folders, str(OUT / f"{task}-rank-{kind}.csv"), overrides, scores)
            times[kind].append(time.perf_counter() - t0)
            if kind == "all":
                ranked = table
    rank_seconds, default_seconds = float(np.median(times["all"])), float(np.median(times["default"]))
    by_path = {str(p): n for n, p in found.items()}
    ranked["name"] = [by_path[c] for c in ranked["candidate"]]
    rows = []
    for seed in range(seeds):
        for name, folder in found.items():
            m = finetune(task, name, folder, seed)
            rows.append({"name": name, "seed": seed, "metric": m[metric], "seconds": m["seconds"]})
            print(f"  {task} / {name} / seed {seed}: {metric} {m[metric]:.4f} ({m['seconds']:.0f} s)", flush=True)
    cells = pd.DataFrame(rows)
    truth = cells.groupby("name").agg(finetuned=("metric", "mean"), std=("metric", "std"),
                                      finetune_seconds=("seconds", "mean"))
    table = ranked.set_index("name").join(truth)
    finetune_seconds = float(truth["finetune_seconds"].sum())  # fine-tuning every candidate once
    return {"task": task, "metric": metric, "seeds": seeds, "table": table, "tau": correlations(table, "finetuned"),
            "rank_seconds": rank_seconds, "default_seconds": default_seconds,
            "finetune_seconds": finetune_seconds}


def write(results: list[dict], path: Path) -> None:
    seeds = " ".join(f"{r['task']}={r['seeds']}" for r in results)
    lines = ["# Ranking checkpoints before fine-tuning them (`warmstart rank`)", "",
             f"`.venv/bin/python benchmarks/rank_validation.py --seeds-for {seeds}`. Truth: the test metric of the "
             "task's recipe, mean over seeds (each seed draws its own labelled sample); ranking uses seed 0's sample. "
             "Ranking times: medians of alternated passes (all scores, then the default score alone); fine-tuning "
             "times: the mean over seeds of each candidate's run, summed over candidates.",
             "",
             "| task | score | Kendall tau | weighted tau |", "|---|---|---|---|"]
    for r in results:
        lines += [f"| {r['task']} | {s} | {t:.2f} | {w:.2f} |" for s, (t, w) in r["tau"].items()]
    lines += [f"| **mean** | {s} | {np.mean([r['tau'][s][0] for r in results]):.2f} | "
              f"{np.mean([r['tau'][s][1] for r in results]):.2f} |" for s in SCORES]
    lines += ["", f"| task | candidates | ranking, all scores (s) | ranking, {DEFAULT_SCORE} only (s) | fine-tuning each "
              "once (s) | ratio, all | ratio, default |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['task']} | {len(r['table'])} | {r['rank_seconds']:.0f} | {r['default_seconds']:.0f} | "
                     f"{r['finetune_seconds']:.0f} | {r['rank_seconds'] / r['finetune_seconds']:.1%} | "
                     f"{r['default_seconds'] / r['finetune_seconds']:.1%} |")
    total = {k: sum(r[k] for r in results) for k in ("rank_seconds", "default_seconds", "finetune_seconds")}
    lines.append(f"| all | | {total['rank_seconds']:.0f} | {total['default_seconds']:.0f} | "
                 f"{total['finetune_seconds']:.0f} | {total['rank_seconds'] / total['finetune_seconds']:.1%} | "
                 f"{total['default_seconds'] / total['finetune_seconds']:.1%} |")
    for r in results:
        t = r["table"].sort_values("finetuned", ascending=False)
        lines += ["", f"## {r['task']} ({r['metric']}, mean ± std over seeds)", "",
                  "| candidate | fine-tuned | " + " | ".join(SCORES) + " | rank s | fine-tune s |",
                  "|---" * (len(SCORES) + 4) + "|"]
        lines += [f"| {n} | {row.finetuned:.4f} ± {0 if np.isnan(row['std']) else row['std']:.4f} | "
                  + " | ".join(f"{row[s]:.4f}" for s in SCORES) + f" | {row.seconds:.1f} | {row.finetune_seconds:.0f} |"
                  for n, row in t.iterrows()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="timed ranking passes (medians reported)")
    ap.add_argument("--seeds-for", nargs="*", default=[], metavar="TASK=N", help="another seed count for a task")
    ap.add_argument("--out", default=str(OUT / "table.md"),
                    help="the table (not the results file itself, which keeps the earlier measurements too)")
    args = ap.parse_args()
    seeds = {task: args.seeds for task in args.tasks} | {k: int(v) for k, v in (a.split("=") for a in args.seeds_for)}
    if "fmnist" in args.tasks:
        pretrain_image_encoders()
    results = [validate(task, seeds[task], args.repeats) for task in args.tasks]
    write(results, Path(args.out))


if __name__ == "__main__":
    main()
