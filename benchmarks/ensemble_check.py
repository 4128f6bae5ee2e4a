"""Would averaging SetFit on the shipped MiniLM with a pipeline on the adapted one beat SetFit (issue 21)?

    .venv/bin/python benchmarks/ensemble_check.py [--out runs/domain_adaptation]

Reads the test predictions (`predictions.csv`, class probabilities) that `benchmarks/domain_adaptation.py
--objectives tsdae --keep-init K` left for each task, strategy and seed at 16 labels per class, and scores the
average of two pipelines' probabilities, equal weights fixed before looking (no weight is tuned, so no test figure
chooses anything). Beside them: SetFit through the library on the shipped MiniLM (its metrics.json), the rival
the issue names. Seconds; nothing is trained.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

TASKS = ("wordnet", "rt", "acl")
TSDAE = "MiniLM__tsdae_10_min_1_epoch"


def keep(share: str) -> str:
    return f"{TSDAE}_keep_{share}_of_MiniLM"


# row -> the pipelines whose test probabilities are averaged
ROWS = {
    "SetFit on shipped MiniLM (warmstart)": ["MiniLM_setfit"],
    "+ probe on shipped MiniLM": ["MiniLM_setfit", "MiniLM_linear_probe"],
    "+ probe on adapted (whole step)": ["MiniLM_setfit", f"{TSDAE}_linear_probe"],
    "+ probe on adapted (keep 0.25)": ["MiniLM_setfit", f"{keep('0.25')}_linear_probe"],
    "+ probe on adapted (keep 0.5)": ["MiniLM_setfit", f"{keep('0.5')}_linear_probe"],
    "+ SetFit on adapted (keep 0.5)": ["MiniLM_setfit", f"{keep('0.5')}_setfit"],
    "SetFit + probe, both on adapted (keep 0.5)": [f"{keep('0.5')}_setfit", f"{keep('0.5')}_linear_probe"],
}


def probabilities(cell: Path) -> tuple[np.ndarray, np.ndarray]:
    """-> (gold class indices (N,), probabilities (N, C)) in the order of the file's prob_* columns."""
    frame = pd.read_csv(cell / "predictions.csv")
    columns = [c for c in frame.columns if c.startswith("prob_")]
    classes = [c[len("prob_"):] for c in columns]
    return np.array([classes.index(str(v)) for v in frame["label"]]), frame[columns].to_numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/domain_adaptation")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    cells = Path(args.out) / "cells"
    table: dict[str, dict[str, float]] = {}
    for task in TASKS:
        library = [json.loads((cells / task / f"SetFit_on_MiniLM_library-16pc-seed{s}" / "metrics.json").read_text())
                   ["accuracy"] for s in range(args.seeds)]
        table.setdefault("SetFit on shipped MiniLM (setfit library)", {})[task] = 100 * float(np.mean(library))
        for row, names in ROWS.items():
            scores = []
            for seed in range(args.seeds):
                parts = [probabilities(cells / task / f"{name}-16pc-seed{seed}") for name in names]
                gold = parts[0][0]
                scores.append(100 * float((np.mean([p for _, p in parts], axis=0).argmax(1) == gold).mean()))
            table.setdefault(row, {})[task] = float(np.mean(scores))
    frame = pd.DataFrame(table).T[list(TASKS)]
    frame["mean"] = frame.mean(axis=1)
    lines = ["| pipeline (16 per class, mean of 3 seeds) | " + " | ".join(frame.columns) + " |",
             "|---" * (len(frame.columns) + 1) + "|"]
    lines += [f"| {row} | " + " | ".join(f"{v:.1f}" for v in values) + " |" for row, values in frame.iterrows()]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
