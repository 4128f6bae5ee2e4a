"""Choosing how much of MiniLM to keep inside the labels (issue 21): does the keep-share curve survive an honest choice?

    .venv/bin/python benchmarks/keep_choice.py [--out runs/domain_adaptation] [--shares 0 0.25 0.5 0.75]

Reads what `benchmarks/domain_adaptation.py --objectives tsdae --keep-init K --name results_tsdae_keepK` (K = 0
for the whole step, name `results_tsdae`) left in `--out`: the adapted folders and the linear probe's test
accuracy per task and seed at 16 labels per class. For each task and seed, `warmstart rank` scores MiniLM as
shipped and every share on that seed's 16-per-class labels only (the cross-validated probe, kNN, LogME); the
encoder each score puts first is the one a user would keep, and its probe's test accuracy minus the shipped
MiniLM's is the gain of that choice (a tie goes to the encoder rank's table lists first, as a user reading it
would). Beside: the oracle (the best share per seed, chosen on test). Seconds on 2 cores (features of 48-96
labelled rows per encoder). Fixed to that command's settings (16 per class, seeds 0-2, 10 minutes, one pass);
run domain_adaptation.py first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

import warmstart
from warmstart.models.common import minilm_folder
from warmstart.studies.demo import DATA

TASKS = ("wordnet", "rt", "acl")
SCORES = ("probe", "knn", "logme")


def encoder_name(share: float) -> str:
    """The row name domain_adaptation.py gives TSDAE-adapted MiniLM with `share` of MiniLM mixed back."""
    return "MiniLM + tsdae (10 min, 1 epoch" + (f", keep {share:g} of MiniLM" if share else "") + ")"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/domain_adaptation")
    ap.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75])
    args = ap.parse_args()
    root = Path(args.out)
    tests = pd.concat([pd.read_csv(root / (f"results_tsdae_keep{s:g}.csv" if s else "results_tsdae.csv"))
                       for s in args.shares]).drop_duplicates(["task", "init", "seed"])
    rows = []
    for task in TASKS:
        labelled = root / "data" / task / "labelled.csv"
        n = 16 * pd.read_csv(labelled).label.nunique()
        folders = {"MiniLM": str(minilm_folder()), **{encoder_name(s): str(
            root / "adapted" / task / ("tsdae-10m-1e" + (f"-keep{s:g}" if s else ""))) for s in args.shares}}
        names = {folder: name for name, folder in folders.items()}
        for seed in range(3):
            table = warmstart.rank(str(DATA / "finetune.yaml"), list(folders.values()), scores=list(SCORES),
                                   output=root / "keep_choice" / f"{task}-seed{seed}.csv",
                                   overrides=[f"data.path={labelled}", "data.balanced=true", f"data.labels={n}",
                                              f"train.seed={seed}"]).table
            for r in table.itertuples():
                name = names[r.candidate]
                test = tests[(tests.task == task) & (tests.init == f"{name}, linear_probe") & (tests.seed == seed)]
                rows.append({"task": task, "seed": seed, "encoder": name, "test": float(test.accuracy.iloc[0]),
                             **{s: getattr(r, s) for s in SCORES}})
    df = pd.DataFrame(rows)
    df.to_csv(root / "keep_choice.csv", index=False)
    for score in (*SCORES, "oracle"):
        gains = {}
        for (task, _seed), g in df.groupby(["task", "seed"], sort=False):
            chosen = g.loc[g["test" if score == "oracle" else score].idxmax()]
            gains.setdefault(task, []).append(100 * (chosen.test - g[g.encoder == "MiniLM"].test.iloc[0]))
        per_task = {t: sum(v) / len(v) for t, v in gains.items()}
        print(f"{score:6s} " + " | ".join(f"{t} {' / '.join(f'{x:+.1f}' for x in gains[t])}: {per_task[t]:+.1f}"
                                          for t in TASKS) + f" | mean {sum(per_task.values()) / len(per_task):+.1f}")


if __name__ == "__main__":
    main()
