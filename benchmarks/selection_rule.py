"""What should full fine-tuning choose its stopping step on, inside 100 labels? Accuracy or loss on the held-out share.

    .venv/bin/python benchmarks/selection_rule.py [--seeds 0 1 2 3 4 5 6 7] [--labels 100] [--epochs 15]
        [--init MiniLM] [--out runs/selection_rule]

`warmstart finetune` (strategy `full`) holds out 20% of the N labels and stops on their accuracy (patience 3
evaluations, once an epoch). At N = 100 that is 20 rows: accuracy moves in steps of 5 points, and on MiniLM seed 0
it chose the model after one epoch (0.75 on the 20, never beaten), which scored 58% on test. HF's Trainer
chooses on the evaluation loss by default (`metric_for_best_model`), which moves with every row's confidence.

Each seed trains once for `--epochs` epochs on the N minus the held-out share (the selection phase exactly as
`warmstart finetune` runs it, data.labels=N, seeded), and after every epoch records the held-out accuracy and
cross-entropy and the accuracy on Rotten Tomatoes' own validation split (1,066 rows, never the test split: this
chooses a default). The rules are then replayed on those traces with the loop's own `KeepBest`:
  - `accuracy`: today's rule (ties count against the patience; evaluations at the majority share do not);
  - `loss`: the lowest held-out cross-entropy, patience 3;
  - `accuracy, then loss`: the highest accuracy, ties broken by the lower loss;
  - `fixed K`: no choice, the weights after K epochs (HF's and SetFit's default: a fixed budget);
  - `oracle`: the best epoch on the scored split (out of reach; the ceiling).
The refit on all N is not run: it trains for the chosen number of epochs, so a better choice of epoch carries
over to it. Run it alone (2 cores): about 2.5 minutes a seed on an AMD EPYC.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name  # noqa: E402

from warmstart.engine.loop import KeepBest  # noqa: E402
from warmstart.models.common import minilm_folder  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment" / "rotten_tomatoes.csv"


def trace(seed: int, labels: int, epochs: int, init: str, out: Path) -> list[dict]:
    """Train the selection phase of one seed; -> one row per epoch: held-out accuracy / loss, scored accuracy."""
    from transformers import AutoTokenizer

    from warmstart.config import FinetuneConfig
    from warmstart.config.loader import load_config
    from warmstart.tasks import classification as cls

    path = out / f"trace-seed{seed}.jsonl"
    if path.is_file():
        with path.open() as f:
            return [json.loads(line) for line in f]
    cfg = load_config(FinetuneConfig, None, [f"init={init}", f"data.path={DATA}", f"data.labels={labels}",
                                              f"train.seed={seed}", f"train.max_epochs={epochs}",
                                              "train.patience=1000", f"output_dir={out / f'run-seed{seed}'}"])
    cls.resolve_pooling(cfg)
    tokenizer = AutoTokenizer.from_pretrained(init)
    splits, _ = cls.load_splits(cfg.data, seed)
    sample = cls.sample_splits(splits, cfg)
    y_held = sample.validation["label"].to_numpy()
    majority = float(np.bincount(y_held).max() / len(y_held))  # the run's floor (finetune.majority_share)
    scored = splits["validation"]
    scored_b = cls.make_batches(cls.encode(tokenizer, scored, cfg.train.max_length), None, 64,
                                tokenizer.pad_token_id)
    rows: list[dict] = []
    seen: dict = {}
    real_predict, real_fit, real_protocol = cls.predict_batches, cls.fit, cls.select_then_refit

    def spy_predict(model, batches, pooling, bf16):
        seen["probs"], seen["bf16"] = real_predict(model, batches, pooling, bf16), bf16
        return seen["probs"]

    def spy_fit(model, tc, out_dir, batches, loss_fn, evaluate, *args, **kwargs):
        def recording() -> float:
            acc = evaluate()  # the held-out accuracy, as the run computes it (its probabilities land in `seen`)
            p = seen["probs"][np.arange(len(y_held)), y_held]
            loss = float(-np.log(np.clip(p, 1e-12, None)).mean())
            s = real_predict(model, scored_b, tc.pooling, seen["bf16"])
            rows.append({"seed": seed, "epoch": len(rows) + 1, "majority": majority, "held_accuracy": acc,
                         "held_loss": loss,
                         "scored_accuracy": float((s.argmax(1) == scored["label"].to_numpy()).mean())})
            print(json.dumps(rows[-1]), flush=True)
            return acc
        return real_fit(model, tc, out_dir, batches, loss_fn, recording, *args, **kwargs)

    cls.predict_batches, cls.fit = spy_predict, spy_fit
    cls.select_then_refit = lambda sample, strategy, train_once, out, score: train_once(
        sample.train, sample.validation, None, "select")  # the selection phase only
    try:
        cls.run_finetune(cfg)
    finally:
        cls.predict_batches, cls.fit, cls.select_then_refit = real_predict, real_fit, real_protocol
    out.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return rows


def replay(rows: list[dict], rule: str) -> dict:
    """The epoch a rule keeps (0: the weights as they came in) and where it stopped, replayed with KeepBest."""
    if rule.startswith("fixed"):  # no choosing: the weights after that many epochs
        return {"epoch": min(int(rule.split()[1]), len(rows)), "stopped": min(int(rule.split()[1]), len(rows))}
    if rule == "oracle":
        best = max(rows, key=lambda r: r["scored_accuracy"])
        return {"epoch": best["epoch"], "stopped": len(rows)}
    if rule == "accuracy":
        keep = KeepBest("v", "max", 3, ties_count=True, floor=rows[0]["majority"])
    else:
        keep = KeepBest("v", "min" if rule == "loss" else "max", 3)
    for r in rows:
        if rule == "accuracy":
            v = r["held_accuracy"]
        elif rule == "loss":
            v = r["held_loss"]
        else:  # accuracy first, loss breaks ties (one row of 20 is 0.05; losses differ by far less than 1e3)
            v = r["held_accuracy"] - 1e-3 * r["held_loss"]
        if keep.update({"v": v}, r["epoch"], lambda: None):
            return {"epoch": keep.step, "stopped": r["epoch"]}
    return {"epoch": keep.step, "stopped": len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    ap.add_argument("--labels", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--init", default=None, help="the encoder (default: the MiniLM package's folder)")
    ap.add_argument("--out", default="runs/selection_rule")
    args = ap.parse_args()
    init, out = args.init or str(minilm_folder()), Path(args.out)
    table = []
    for seed in args.seeds:
        rows = trace(seed, args.labels, args.epochs, init, out)
        for rule in ("accuracy", "loss", "accuracy, then loss", "fixed 5", "fixed 10", f"fixed {args.epochs}",
                     "oracle"):
            got = replay(rows, rule)
            score = rows[got["epoch"] - 1]["scored_accuracy"] if got["epoch"] else float("nan")
            table.append({"seed": seed, "rule": rule, **got, "scored_accuracy": score})
    df = pd.DataFrame(table)
    df.to_csv(out / "selection_rule.csv", index=False)
    summary = df.groupby("rule", sort=False).agg(mean=("scored_accuracy", "mean"),
                                                 median=("scored_accuracy", "median"),
                                                 worst=("scored_accuracy", "min"), epoch=("epoch", "median"))
    print(f"CPU: {cpu_name()}; {init}; N={args.labels}; seeds {args.seeds}")
    print(df.pivot(index="seed", columns="rule", values="scored_accuracy").round(4).to_string())
    print((summary * [100, 100, 100, 1]).round(2).to_string())


if __name__ == "__main__":
    main()
