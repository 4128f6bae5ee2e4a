"""Would self-training lift SetFit on the adapted MiniLM? Judged on Rotten Tomatoes' validation split, not test.

    .venv/bin/python benchmarks/self_training.py [--per-class 8 16] [--seeds 0 1 2] [--out runs/self_training]
        [--adapted runs/auto_benchmark/adapted/rt/simcse-10m-1e] [--pool 4000]

For each seed: `train.strategy: setfit` on the adapted MiniLM with the few-label table's labels (N per class,
drawn evenly; the honest protocol), its checkpoint kept; then `--pool` training snippets that are not among
the N (their labels dropped) are embedded by the fine-tuned body and pseudo-labelled by its head; the K most
confident per class (K = 1, 4, 16, 64 x the per-class count) join the N and the logistic head is fitted
again (C by cross-validation inside N + K). Reported: validation accuracy of the first head and of each
refitted one, and how many of the kept pseudo-labels are right (the labels are read only for that count).
The cheap form of self-training (head only, the body untouched); it decides whether the costly form (a second
pair-training pass on N + K) is worth building. Run it alone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score

MULTIPLES = (1, 4, 16, 64)


def main() -> None:
    from transformers import AutoModelForSequenceClassification

    from warmstart.data.text import load_tokenizer
    from warmstart.engine.runtime import place
    from warmstart.models.probe import fit_logistic_cv
    from warmstart.studies.demo import _finetune_config
    from warmstart.tasks.classification import encode, features, load_splits, make_batches, sample_splits
    from warmstart.tasks.registry import run_task

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="runs/self_training")
    ap.add_argument("--adapted", default="runs/auto_benchmark/adapted/rt/simcse-10m-1e")
    ap.add_argument("--pool", type=int, default=4000)
    args = ap.parse_args()
    rows = []
    for pc in args.per_class:
        for seed in args.seeds:
            cell = Path(args.out) / f"{pc}pc-seed{seed}"
            cfg = _finetune_config(cell, args.adapted, args.adapted, 2 * pc, seed,
                                   ("data.balanced=true", "train.strategy=setfit", "train.save_model=true"))
            if not (cell / "metrics.json").is_file():
                run_task(cfg)
            splits, _ = load_splits(cfg.data, seed)
            labelled = sample_splits(splits, cfg).labelled
            rest = splits["train"][~splits["train"]["text"].isin(set(labelled["text"]))]
            pool, val = rest.sample(args.pool, random_state=seed), splits["validation"]
            tokenizer = load_tokenizer(str(cell))
            model = place(AutoModelForSequenceClassification.from_pretrained(cell))

            def embed(df: pd.DataFrame, model=model, tokenizer=tokenizer) -> np.ndarray:
                return features(model, make_batches(encode(tokenizer, df, 64), None, 64, tokenizer.pad_token_id),
                                "mean", True)

            t = time.perf_counter()
            x_lab, x_pool, x_val = embed(labelled), embed(pool), embed(val)
            row = {"per_class": pc, "seed": seed, "embed_pool_seconds": round(time.perf_counter() - t, 1)}
            w = model.classifier.weight.detach().float().cpu().numpy()
            b = model.classifier.bias.detach().float().cpu().numpy()
            y_lab, y_val = labelled["label"].to_numpy(), val["label"].to_numpy()
            row["first_head"] = accuracy_score(y_val, (x_val @ w.T + b).argmax(1))
            probs = torch.softmax(torch.as_tensor(x_pool @ w.T + b), -1).numpy()
            pseudo, confidence = probs.argmax(1), probs.max(1)
            for k in MULTIPLES:
                keep = np.concatenate([np.flatnonzero(pseudo == c)[np.argsort(-confidence[pseudo == c])][:k * pc]
                                       for c in range(probs.shape[1])])
                head = fit_logistic_cv(np.concatenate([x_lab, x_pool[keep]]),
                                       np.concatenate([y_lab, pseudo[keep]]), seed)
                row[f"refit_K{k}x"] = accuracy_score(y_val, (x_val @ head["weight"].T + head["bias"]).argmax(1))
                row[f"pseudo_right_K{k}x"] = float((pseudo[keep] == pool["label"].to_numpy()[keep]).mean())
            print(row, flush=True)
            rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(Path(args.out) / "results.csv", index=False)
    print((table.groupby("per_class").mean(numeric_only=True) * 100).round(1).to_string())


if __name__ == "__main__":
    main()
