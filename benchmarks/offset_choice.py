"""What choosing the multi-label probe's C and decision offset costs (models/probe.choose_c_and_offset).

The multi-label probe and its TF-IDF rival pick one C and one offset on the logit scale together by micro-F1 over
every C x 33 offsets. Before, each pair was one call of scikit-learn's f1_score (about 4 ms of input checks a call,
whatever the size); now one numpy pass scores every offset of a C. This times both rules side by side on the
same held-out logits, and the two whole fits that use them (fit_one_vs_rest on MiniLM features, tfidf_sets on the
texts) on WNUT-16's entity-kinds table (benchmarks/multi_label.py), alternated, medians, and checks that both
rules choose the same C and offset.

    .venv/bin/python benchmarks/offset_choice.py [--labels 200] [--repeats 3] [--out benchmarks/results/offset_choice.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name  # noqa: E402
from multi_label import entity_types_table  # noqa: E402

from warmstart.models import probe  # noqa: E402
from warmstart.models.common import minilm_folder  # noqa: E402
from warmstart.select.rank import sentence_features  # noqa: E402
from warmstart.tasks.multi_label import tfidf_sets  # noqa: E402


def sklearn_rule(truth: np.ndarray, held: dict[float, np.ndarray], fallback: float = probe.FALLBACK_C):
    """The rule as it was: one f1_score call per (C, offset), the first best in order."""
    choices = [(c, o) for c in sorted(held) for o in sorted(probe.OFFSETS, key=abs)]
    scores = {(c, o): float(f1_score(truth, held[c] > o, average="micro", zero_division=0)) for c, o in choices}
    if not scores:
        return fallback, 0.0, None
    c, offset = max(choices, key=lambda co: scores[co])
    return c, float(offset), scores[(c, offset)]


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/offset_choice.md")
    args = ap.parse_args()
    rows = []
    rng = np.random.default_rng(0)
    for n, kinds in ((24, 2), (200, 10), (1000, 10)):  # auto's test table; WNUT's kinds at 200 and 1,000 labels
        truth = (rng.random((n, kinds)) < 0.1).astype(int)
        held = {c: rng.normal(-2, 2, (n, kinds)) for c in probe.PROBE_CS}
        t_old, old = timed(lambda t=truth, h=held: sklearn_rule(t, h), args.repeats)
        t_new, new = timed(lambda t=truth, h=held: probe.choose_c_and_offset(t, h), args.repeats)
        rows.append((f"the choice alone, {n} x {kinds}, 8 Cs", t_old, t_new, old[:2] == new[:2]))

    table = pd.read_json(entity_types_table(Path("runs/offset_choice")), lines=True)
    train = table[table["split"] == "train"].sample(args.labels, random_state=0)
    test = table[table["split"] == "test"]
    kinds = sorted({k for labels in table["labels"] for k in labels})
    y = np.array([[int(k in labels) for k in kinds] for labels in train["labels"]])
    x = sentence_features(minilm_folder(), train["text"].tolist(), 128, False)
    fits = {"fit_one_vs_rest (MiniLM features, 5-fold)": lambda: probe.fit_one_vs_rest(x, y, None, None, 0),
            "tfidf_sets (5-fold, 6 Cs)": lambda: tfidf_sets(train["text"].tolist(), y, test["text"].tolist(), 0)}
    for name, fit in fits.items():
        old_t, new_t, same = [], [], True
        for _ in range(args.repeats):  # alternated: before, now, before, now...
            current = probe.choose_c_and_offset
            probe.choose_c_and_offset = sklearn_rule
            try:
                t, before = timed(fit, 1)
            finally:
                probe.choose_c_and_offset = current
            old_t.append(t)
            t, now = timed(fit, 1)
            new_t.append(t)
            same &= _choice(before) == _choice(now)
        rows.append((f"{name}, {args.labels} tweets x {len(kinds)} kinds", statistics.median(old_t),
                     statistics.median(new_t), same))

    lines = [f"# Choosing the multi-label probe's C and offset: f1_score a call vs one numpy pass "
             f"({time.strftime('%Y-%m-%d')})", "",
             f"CPU: {cpu_name()}, 2 cores, alone. `.venv/bin/python benchmarks/offset_choice.py --labels "
             f"{args.labels} --repeats {args.repeats}`; medians of {args.repeats}, the whole fits alternated.", "",
             "| what | before s (f1_score a call) | now s | before / now | same C and offset |", "|---|---|---|---|---|"]
    for name, old, new, same in rows:
        lines.append(f"| {name} | {old:.3f} | {new:.4f} | {old / new:.1f} | {'yes' if same else '**no**'} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def _choice(fitted) -> tuple:
    """fit_one_vs_rest -> (C, offset); tfidf_sets -> (C, offset)"""
    return (fitted["C"], fitted["offset"]) if isinstance(fitted, dict) else tuple(fitted[1:])


if __name__ == "__main__":
    main()
