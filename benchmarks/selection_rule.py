"""What should full fine-tuning choose its stopping step on, inside 100 labels? Accuracy or loss on the held-out share.

    .venv/bin/python benchmarks/selection_rule.py [--tasks rt acl chatterbot wordnet] [--seeds 0 1 2 3 4 5 6 7]
        [--labels 100] [--epochs 15] [--init MiniLM] [--out runs/selection_rule]

`warmstart finetune` (strategy `full`) holds out 20% of the N labels and stops on their accuracy (patience 3
evaluations, once an epoch). At N = 100 that is 20 rows: accuracy moves in steps of 5 points, and on MiniLM seed 0
it chose the model after one epoch (0.75 on the 20, never beaten), which scored 58% on test. HF's Trainer
chooses on the evaluation loss by default (`metric_for_best_model`), which moves with every row's confidence.

Each seed trains once for `--epochs` epochs on the N minus the held-out share (the selection phase exactly as
`warmstart finetune` runs it, data.labels=N, seeded), and after every epoch records the held-out accuracy and
cross-entropy and the accuracy on a scored dev split, never a test split (this chooses a default): for `rt`
Rotten Tomatoes' own validation split (1,066 rows); for the other dev tasks of benchmarks/dev_tasks.py (`acl`,
`chatterbot`, `wordnet`) up to 300 training rows a class held out as setfit_lr.py holds them out, the N labels
drawn from the rest. The rules are then replayed on those traces with the loop's own `KeepBest`:
  - `accuracy`: early stopping's rule (ties count against the patience; evaluations at the majority share do not);
  - `loss`: the lowest held-out cross-entropy, patience 3;
  - `accuracy, then loss`: the highest accuracy, ties broken by the lower loss;
  - `accuracy, later ties`: the highest accuracy, a tie replacing the best (as good, and trained longer) and
    resetting the patience; `..., no stop`: the same over every epoch (the last epoch at the best accuracy);
  - `fixed K`: no choice, the weights after K epochs (HF's and SetFit's default: a fixed budget);
  - `oracle`: the best epoch on the scored split (out of reach; the ceiling).
The refit on all N is not run: it trains for the chosen number of epochs, so a better choice of epoch carries
over to it. Run it alone (2 cores): about 8 minutes a seed on an AMD EPYC (mostly scoring the dev split 15 times).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from dev_tasks import build  # noqa: E402
from few_label import cpu_name  # noqa: E402
from setfit_lr import dev_split  # noqa: E402

from warmstart.engine.loop import KeepBest  # noqa: E402
from warmstart.models.common import minilm_folder  # noqa: E402

SCORED_CAP = 600  # rows of a dev task's scored split (a seeded sample; the rules are compared on the same rows)


def task_table(task: str, out: Path) -> Path:
    """The task's labelled table with its test rows dropped and a dev split, named `test`, scored in their place."""
    build(task, out / "source" / "data")
    return dev_split(task, out / "source", out)


def trace(task: str, seed: int, labels: int, epochs: int, init: str, out: Path) -> list[dict]:
    """Train the selection phase of one seed; -> one row per epoch: held-out accuracy / loss, scored accuracy."""
    from transformers import AutoTokenizer

    from warmstart.config import FinetuneConfig
    from warmstart.config.loader import load_config
    from warmstart.tasks import classification as cls

    path = out / task / f"trace-seed{seed}.jsonl"
    if path.is_file():
        with path.open() as f:
            return [json.loads(line) for line in f]
    data = task_table(task, out)
    cfg = load_config(FinetuneConfig, None, [f"init={init}", f"data.path={data}", f"data.labels={labels}",
                                              f"train.seed={seed}", f"train.max_epochs={epochs}", "train.patience=1000",
                                              f"output_dir={out / task / f'run-seed{seed}'}"])
    cls.resolve_pooling(cfg)
    tokenizer = AutoTokenizer.from_pretrained(init)
    splits, _ = cls.load_splits(cfg.data, seed)
    sample = cls.sample_splits(splits, cfg)
    y_held = sample.validation["label"].to_numpy()
    majority = float(np.bincount(y_held).max() / len(y_held))  # the run's floor (finetune.majority_share)
    scored = splits["test"]  # the dev split task_table carved (rt: its validation split), not a test split
    if task != "rt" and len(scored) > SCORED_CAP:  # scoring 15 times is most of the cost; rt's traces keep all 1,066
        scored = scored.sample(SCORED_CAP, random_state=0).reset_index(drop=True)
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
            rows.append({"task": task, "seed": seed, "epoch": len(rows) + 1, "majority": majority, "held_accuracy": acc,
                         "held_loss": loss,
                         "scored_accuracy": float((s.argmax(1) == scored["label"].to_numpy()).mean())})
            print(json.dumps(rows[-1]), flush=True)
            return acc
        return real_fit(model, tc, out_dir, batches, loss_fn, recording, *args, **kwargs)

    cls.predict_batches, cls.fit = spy_predict, spy_fit
    cls.select_then_refit = lambda sample, strategy, train_once, *_, **__: train_once(
        sample.train, sample.validation, None, "select")  # the selection phase only
    try:
        cls.run_finetune(cfg)
    finally:
        cls.predict_batches, cls.fit, cls.select_then_refit = real_predict, real_fit, real_protocol
    path.parent.mkdir(parents=True, exist_ok=True)
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
    elif rule.startswith("accuracy, later ties"):  # a tie is as good and trained longer: it becomes the best
        keep = KeepBest("v", "max", 0 if rule.endswith("no stop") else 3, ties_count=True,
                        floor=rows[0]["majority"] + 1e-3)
    else:
        keep = KeepBest("v", "min" if rule == "loss" else "max", 3)
    for r in rows:
        if rule == "accuracy":
            v = r["held_accuracy"]
        elif rule.startswith("accuracy, later ties"):  # (1e-6 an epoch: below one row of 20, 0.05)
            v = r["held_accuracy"] + 1e-6 * r["epoch"]
        elif rule == "loss":
            v = r["held_loss"]
        else:  # accuracy first, loss breaks ties (one row of 20 is 0.05; losses differ by far less than 1e3)
            v = r["held_accuracy"] - 1e-3 * r["held_loss"]
        if keep.update({"v": v}, r["epoch"], lambda: None):
            return {"epoch": keep.step, "stopped": r["epoch"]}
    return {"epoch": keep.step, "stopped": len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["rt"], choices=["rt", "acl", "chatterbot", "wordnet"])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    ap.add_argument("--labels", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--init", default=None, help="the encoder (default: the MiniLM package's folder)")
    ap.add_argument("--out", default="runs/selection_rule")
    args = ap.parse_args()
    init, out = args.init or str(minilm_folder()), Path(args.out)
    table = []
    for task, seed in ((t, s) for t in args.tasks for s in args.seeds):
        rows = trace(task, seed, args.labels, args.epochs, init, out)
        for rule in ("accuracy", "loss", "accuracy, then loss", "accuracy, later ties", "accuracy, later ties, no stop",
                     "fixed 5", "fixed 10", f"fixed {args.epochs}", "oracle"):
            got = replay(rows, rule)
            score = rows[got["epoch"] - 1]["scored_accuracy"] if got["epoch"] else float("nan")
            table.append({"task": task, "seed": seed, "rule": rule, **got, "scored_accuracy": score})
    df = pd.DataFrame(table)
    df.to_csv(out / "selection_rule.csv", index=False)
    print(f"CPU: {cpu_name()}; {init}; N={args.labels}; tasks {args.tasks}; seeds {args.seeds}")
    for task, part in df.groupby("task", sort=False):
        print(f"\n{task}")
        print(part.pivot(index="seed", columns="rule", values="scored_accuracy")[list(part.rule.unique())]
              .round(4).to_string())
    summary = df.groupby(["task", "rule"], sort=False).agg(mean=("scored_accuracy", "mean"),
                                                 median=("scored_accuracy", "median"),
                                                 worst=("scored_accuracy", "min"), epoch=("epoch", "median"))
    print()
    print((summary * [100, 100, 100, 1]).round(2).to_string())
    # each task's loss against the oracle, averaged over tasks: the figure a default is chosen on
    oracle = df[df.rule == "oracle"].set_index(["task", "seed"]).scored_accuracy
    df["regret"] = df.set_index(["task", "seed"]).index.map(oracle) - df.scored_accuracy
    per_task = df.groupby(["rule", "task"], sort=False).regret.mean().groupby("rule", sort=False).mean()
    print("\npoints below the oracle: each task's mean over seeds, averaged over tasks / the worst single run:")
    print((pd.DataFrame({"mean": per_task, "worst": df.groupby("rule", sort=False).regret.max()}) * 100)
          .round(2).to_string())


if __name__ == "__main__":
    main()
