"""A small corpus pretrained on for the demo's minutes: does early stopping on the held-out loss save it? (issue 21.6)

    .venv/bin/python benchmarks/small_corpus.py [--words 45000] [--minutes 4] [--labels 1000] [--seeds 3]
        [--out runs/small_corpus] [--pretrain-seed 0]

The case a new user meets: their own unlabelled text is about 45k words, and the demo's pretraining recipe
(demo_data/pretrain.yaml) runs its minutes over it, dozens of passes. The corpus is the first `--words` words of
the demo's unlabelled movie text. Two pretrainings of the same recipe and seed: `train.patience=0` (the whole
budget, the last weights: warmstart before early stopping) and the default (the held-out MLM loss checked about
once a pass; the run stops after `patience` checks without a new best and keeps the best weights). Then the
demo's fine-tuning protocol on Rotten Tomatoes at `--labels` labels (LP-FT choosing inside them), beside scratch
and TF-IDF + LR on the same labels and seeds. Finished cells are reused. Run it alone: two jobs on two cores
halve each other, and the pretraining budget is wall-clock.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name  # noqa: E402

import warmstart  # noqa: E402
from warmstart.studies.demo import DATA, finetune_cell, tfidf_cell  # noqa: E402
from warmstart.studies.report import markdown_table, summarise  # noqa: E402


def small_corpus(path: Path, words: int) -> Path:
    """The first `words` words of the demo's unlabelled movie text, whole snippets, one document each."""
    if path.is_file():
        return path
    kept, count = [], 0
    with gzip.open(DATA / "movies_unlabelled.txt.gz", "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                kept.append(line.strip())
                count += len(line.split())
                if count >= words:
                    break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(kept) + "\n", encoding="utf-8")
    return path


def pretrain(corpus: Path, out: Path, minutes: float, patience: int | None, seed: int = 0) -> dict:
    """The demo's recipe on `corpus`; reused when finished. -> its metrics.json"""
    if not (out / "metrics.json").is_file():
        warmstart.pretrain(str(DATA / "pretrain.yaml"), output_dir=str(out), overwrite=True,
                           corpus={"sources": [str(corpus)], "cache_dir": str(out.parent / "cache")},
                           train={"max_minutes": minutes, **({"patience": patience} if patience is not None else {}),
                                  **({"seed": seed} if seed else {})})
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def held_out_curve(folder: Path) -> list[tuple[int, float]]:
    """(step, held-out MLM loss) of every validation pass in the run's log."""
    rows = [json.loads(line) for line in (folder / "training_log.jsonl").read_text(encoding="utf-8").splitlines()]
    return [(r["step"], r["val_mlm_loss"]) for r in rows if "val_mlm_loss" in r]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=45_000)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--labels", type=int, nargs="+", default=[1000])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default="runs/small_corpus")
    ap.add_argument("--pretrain-seed", type=int, default=0, help="the pretrainings' train.seed (data order, masks, "
                    "held-out split): another seed measures how much one pretraining run moves the table")
    args = ap.parse_args()
    root, t0 = Path(args.out), time.perf_counter()
    tag = f"-s{args.pretrain_seed}" if args.pretrain_seed else ""  # seed 0 keeps the first run's folder names
    corpus = small_corpus(root / "corpus.txt", args.words)
    arms = {"whole budget, last weights (patience 0)": ("last", 0), "early stopping (default)": ("early", None)}
    runs, lines = {}, []
    for name, (slug, patience) in arms.items():
        folder = root / (slug + tag)
        m = pretrain(corpus, folder, args.minutes, patience, args.pretrain_seed)
        runs[name] = folder
        stop = m.get("early_stopping", {})
        curve = held_out_curve(folder)
        best = min(curve, key=lambda c: c[1]) if curve else None
        lines.append(f"- {name}: {m['steps']} steps, {m['tokens']:,} tokens in {m['train_seconds'] / 60:.1f} min, "
                     f"held-out MLM loss of the kept weights {m.get('val_mlm_loss')}"
                     + (f" (kept step {stop['best_step']}, last {stop['last']} at step {stop['last_step']}"
                        f"{', stopped early' if stop['stopped_early'] else ''})" if stop else "")
                     + (f"; lowest held-out loss {best[1]} at step {best[0]} of {len(curve)} passes logged"
                        if best else ""))
        print(lines[-1], flush=True)
    tokenizer = str(runs[next(iter(runs))])
    rows = []
    for n in args.labels:
        for seed in range(args.seeds):
            cells = {name: (str(folder), str(folder)) for name, folder in runs.items()}
            cells["scratch"] = ("scratch", tokenizer)
            for name, (init, tok) in cells.items():
                slug = "".join(c for c in name if c.isalnum())[:24] + (tag if init != "scratch" else "")
                m = finetune_cell(root / "finetune" / f"{slug}-{n}-seed{seed}", init, tok, n, seed)
                rows.append({"init": name, "labels": n, "seed": seed, "accuracy": m["accuracy"],
                             "macro_f1": m["macro_f1"]})
                print(f"  {name:44s} {n:5d} labels seed {seed}: {m['accuracy']:.3f}", flush=True)
            rows.append({"init": "TF-IDF + LR", "labels": n, "seed": seed, **tfidf_cell(n, seed)})
    results = pd.DataFrame(rows)
    results.to_csv(root / f"results{tag}.csv", index=False)
    text = (f"Rotten Tomatoes test accuracy (%), mean ± std over {args.seeds} seeds; demo recipe pretrained "
            f"{args.minutes:g} min on {args.words:,} words, pretraining seed {args.pretrain_seed}; {cpu_name()}, {torch.get_num_threads()} threads; "
            f"{(time.perf_counter() - t0) / 60:.0f} min in all\n\n" + "\n".join(lines) + "\n\n"
            + markdown_table(summarise(results), order=[*arms, "scratch", "TF-IDF + LR"]) + "\n")
    (root / f"results{tag}.md").write_text(text, encoding="utf-8")
    print("\n" + text)


if __name__ == "__main__":
    main()
