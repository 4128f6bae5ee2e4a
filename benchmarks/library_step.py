"""Does auto's estimate of the setfit library's SetFit match what the library really spends? (autopilot/cost.py)

    .venv/bin/python benchmarks/library_step.py [--tasks rt wordnet chatterbot] [--per-class 16] [--seeds 3]
        [--steps 0] [--repeats 1] [--out runs/library_step]

auto decides whether the rival runs from `cost.library_step_seconds` (one step of the library's training, timed
on the user's labels) x the steps of a fold x `cost.RELATIVE["setfit_library"]`. Here, per task, on `--per-class`
labels of seed 0 (auto's draw, `crossval.load_labelled`): the step timed in one forward pass of 32 texts padded to
the expected longest of 32 (how auto timed it before: before_s) and as `cost.library_step_seconds` times it now
(now_s: sentence-transformers' way, a pair batch's two columns of 16 encoded apart, each padded to its own
expected longest), both with the library's attention, dropout, clipping and fused AdamW, for `--seeds` timing
seeds; then the truth: the library's own fit on those labels (`studies/baselines.setfit_predict`'s settings,
`--steps` caps it; 0 = the whole fit), each training step timed by a callback, and the whole fit + predicting the
labels timed as a fold is. `--repeats`: that many fits, each followed by its `--seeds` timings (medians reported:
on a shared 2-core VM the speed drifts over minutes). Ratios: the library's mean step over each estimate, and the
fit over steps x estimate (what RELATIVE must cover). Run alone: it times wall clock.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from auto import markdown  # noqa: E402
from dev_tasks import build  # noqa: E402
from few_label import cpu_name  # noqa: E402

from warmstart.autopilot import cost  # noqa: E402
from warmstart.autopilot.crossval import load_labelled  # noqa: E402
from warmstart.config.strategies import SetFitConfig  # noqa: E402
from warmstart.models.common import minilm_folder  # noqa: E402


def library_fit(texts: list[str], y: np.ndarray, steps: int, seed: int = 0) -> tuple[list[float], float, int]:
    """The setfit library's fit on (texts, y), as auto's rival runs it, then its predictions for the same texts.
    -> (seconds of each training step, seconds of the whole fit and prediction, steps run)"""
    from transformers import TrainerCallback

    from warmstart.models.sentence import import_setfit
    from warmstart.studies.baselines import setfit_predict

    times: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.t0)

    setfit = import_setfit()
    library = setfit.Trainer

    class Clocked(library):  # the library's Trainer with the clock on it (setfit_predict reads setfit.Trainer)
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.add_callback(StepClock())

    setfit.Trainer = Clocked
    try:
        t0 = time.perf_counter()
        setfit_predict(texts, y, texts, seed, SetFitConfig(max_steps=steps or None))
        wall = time.perf_counter() - t0
    finally:
        setfit.Trainer = library
    if not times:
        raise SystemExit("the library's Trainer ran no timed step: setfit_predict no longer reads setfit.Trainer")
    return times, wall, len(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["rt", "wordnet", "chatterbot"])
    ap.add_argument("--per-class", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=0, help="cap on the library's training steps; 0: the whole fit")
    ap.add_argument("--repeats", type=int, default=1, help="library fits, each followed by --seeds timings")
    ap.add_argument("--out", default="runs/library_step")
    args = ap.parse_args()
    root, folder = Path(args.out), str(minilm_folder())
    rows, t0 = [], time.perf_counter()
    for task in args.tasks:
        data = load_labelled(str(build(task, root / "data") / "labelled.csv"), "text", "label", None,
                             args.per_class, 0, 2)
        before, now, true, walls = [], [], [], []
        for r in range(args.repeats):  # the library's fit and the estimates alternated: this CPU's speed drifts
            steps, wall, n = library_fit(data.texts, data.y, args.steps)
            true.append(float(np.mean(steps[1:])))  # the first step pays the warm-up
            walls.append(wall)
            before += [cost.step_seconds(folder, data.texts, 256, False, r * args.seeds + s, library=True)
                       for s in range(args.seeds)]
            now += [cost.library_step_seconds(folder, data.texts, r * args.seeds + s) for s in range(args.seeds)]
        true_step, est_before, est_now, wall = map(lambda v: float(np.median(v)), (true, before, now, walls))
        rows.append({"task": task, "labels": len(data.texts), "library_steps": n, "true_step_s": round(true_step, 3),
                     "before_s": round(est_before, 3), "now_s": round(est_now, 3),
                     "now_min_s": round(min(now), 3), "now_max_s": round(max(now), 3),
                     "true/before": round(true_step / est_before, 2), "true/now": round(true_step / est_now, 2),
                     "fit_s": round(wall, 1), "fit/(steps x now)": round(wall / (n * est_now), 2)})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    root.mkdir(parents=True, exist_ok=True)
    table.to_csv(root / "results.csv", index=False)
    text = (f"The setfit library's step (fp32, MiniLM at max_seq_length 256): auto's estimate before and now (median "
            f"of {args.seeds * args.repeats} timing seeds) against the library's own fit (median of {args.repeats}) on "
            f"{args.per_class} labels per class "
            f"({'the whole fit' if not args.steps else f'at most {args.steps} steps'}; fit_s includes loading, the "
            f"head and predicting the labels); {cpu_name()}, {torch.get_num_threads()} threads, "
            f"{(time.perf_counter() - t0) / 60:.0f} min\n\n" + markdown(table) + "\n")
    (root / "table.md").write_text(text, encoding="utf-8")
    print("\n" + text)


if __name__ == "__main__":
    main()
