"""Does `warmstart auto` find the best pipeline on a multi-label table?

    .venv/bin/python benchmarks/auto_multi_label.py [--labels 200] [--seeds 0 1 2] [--budget 20m]
        [--out runs/auto_multi_label] [--reference "MiniLM full=runs/ml_pw_final" ...]

The table: the kinds of entity each WNUT-16 tweet mentions (benchmarks/multi_label.py builds it; 62% of tweets
mention none), WNUT's own splits. For each seed, `warmstart auto --labels N --label-column labels` with the
installed MiniLM as its one candidate and no unlabelled text; its final model is scored on the test split, which
auto reads only after every decision. Beside it, on the same N tweets (auto and `data.labels=N train.seed=S` draw
the same ones) and the same test split, benchmarks/multi_label.py's fixed pipelines: MiniLM with each strategy,
the setfit library on MiniLM, and TF-IDF + LR per label; the best of them chosen in hindsight on test is the
mark. `--reference ARM=DIR` reads an arm's finished cells from an earlier multi_label.py run's folder instead of
fitting them (they do not depend on auto). Finished auto runs are reused. Run it alone: the budget is wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name  # noqa: E402
from multi_label import cell, entity_types_table  # noqa: E402

import warmstart  # noqa: E402

ARMS = ("MiniLM full", "MiniLM setfit", "MiniLM lp_ft", "MiniLM linear_probe", "setfit library")


def reference(seed: int, labels: int, data: Path, out: Path, dirs: dict[str, Path]) -> dict[str, float]:
    """The fixed pipelines' test micro-F1 on the seed's N. -> {arm: micro-F1}, TF-IDF's beside them"""
    got = {}
    for arm in ARMS:
        m = cell(arm, seed, labels, data, dirs.get(arm, out / "reference"))
        got[arm] = m["micro_f1"]
        if arm == ARMS[0]:  # the rival as each cell of that arm's folder computed it (full's: the current rival)
            got["TF-IDF + LR per label"] = m["tfidf_micro_f1"]
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", default="20m")
    ap.add_argument("--out", default="runs/auto_multi_label")
    ap.add_argument("--reference", nargs="*", default=[], help="ARM=DIR: an arm's cells from an earlier "
                                                               "benchmarks/multi_label.py --out DIR")
    args = ap.parse_args()
    out = Path(args.out)
    dirs = {a.split("=", 1)[0]: Path(a.split("=", 1)[1]) for a in args.reference}
    data = entity_types_table(out / "data")
    rows, t0 = [], time.perf_counter()
    for seed in args.seeds:
        run = out / f"n{args.labels}_seed{seed}"
        start = time.perf_counter()
        v = warmstart.auto(data, budget=args.budget, output_dir=run, labels=args.labels, seed=seed,
                           label_column="labels").verdict
        ref = reference(seed, args.labels, data, out, dirs)
        best = max((a for a in ref if a != "setfit library"), key=ref.get)
        gaps = v["comparisons"]
        rows.append({"seed": seed, "auto_pipeline": v["chosen"]["name"], "auto_cv": v["chosen"]["score"],
                     "auto_test": round(100 * v["chosen"]["test_score"], 1), "best_hindsight": best,
                     "best_test": round(100 * ref[best], 1),
                     **{f"ref {k}": round(100 * x, 1) for k, x in ref.items()},
                     "auto_vs_tfidf": f"{gaps['tfidf']['gap']:+.1f} ({gaps['tfidf']['verdict']})",
                     "auto_vs_setfit": (f"{gaps['setfit']['gap']:+.1f} ({gaps['setfit']['verdict']}, {gaps['setfit']['b']})"
                                        if gaps.get("setfit") else "not run"),
                     "not_run": "; ".join(s["name"] for s in v["skipped"]) or "-",
                     "auto_wall_min": v["wall_min"], "this_call_min": round((time.perf_counter() - start) / 60, 1)})
        pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
        print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    refs = [c for c in table.columns if c.startswith("ref ")]
    lines = [f"`{' '.join(sys.argv)}` on {cpu_name()}; {(time.perf_counter() - t0) / 60:.0f} min in all. Test "
             "micro-F1 (%), each seed:", "",
             "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns),
             *("| " + " | ".join(map(str, r)) + " |" for r in table.values.tolist()), "",
             f"Medians: auto {statistics.median(table.auto_test):.1f}; "
             + "; ".join(f"{c[4:]} {statistics.median(table[c]):.1f}" for c in refs)]
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text, encoding="utf-8")
    print("\n" + text)


if __name__ == "__main__":
    main()
