"""Which learning rate should a task recipe fine-tune at? Judged on the dataset's validation split, never its
test split.

    .venv/bin/python benchmarks/recipe_lr.py [--task ner|summarization|dialogue] [--bodies minilm small]
        [--lrs 5e-4 1e-4 5e-5] [--seeds 3] [--labels 500] [--split validation|test] [--set KEY=VALUE ...]
        [--out runs/recipe_lr/<task>]

The NER recipe (configs/finetune/ner.yaml) fine-tuned at lr 5e-4 (head 1e-3), a rate chosen for the small encoders warmstart pretrains from
scratch; Hugging Face's token-classification example uses 5e-5 for pretrained BERT-size bodies, and MiniLM at 500
labels reaches entity F1 0.30 under the recipe (benchmarks/results/rank_validation.md). Here only `train.lr`
changes between cells (the head's rate stays), under the honest protocol: N labels drawn from the train file
(`--labels 0`: all of them), 20% of them held out to stop, a checked refit on all N; the scored split is the
validation file (copied in as the run's test file), so the choice reads no test row. `--task summarization`:
ACLSum's 100 training papers (configs/finetune/summarization.yaml), scored by ROUGE-1. `--task dialogue`:
chatterbot's conversations (configs/finetune/dialogue.yaml) split once as the recipe splits them at seed 0 (80/10/10 by
opening turn), the 80% written out as the train file and the 10% validation as the scored file; scored by MRR.
`--split test` is the one confirmation after choosing: the real test split is scored instead (its own output folder,
runs/recipe_lr/<task>_test). Bodies: `minilm` (the shipped all-MiniLM-L6-v2) and `small` (the
small-budget benchmark's 2-layer warmstart MLM, runs/small_budget/warmstart_mlm). Finished cells are reused.
Run it alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name  # noqa: E402

from warmstart.models.common import minilm_folder  # noqa: E402
from warmstart.tasks.finetune import split_examples  # noqa: E402
from warmstart.tasks.registry import load_task_config, run_task  # noqa: E402
from warmstart.tasks.response_selection import read_conversations  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
# task: (recipe, data folder, file suffix, the metric that chooses)
TASKS = {"ner": ("ner.yaml", DATA / "ner" / "wnut16", ".conll", "entity_f1"),
         "summarization": ("summarization.yaml", DATA / "summarization" / "aclsum", ".jsonl", "rouge1"),
         "dialogue": ("dialogue.yaml", DATA / "dialogue" / "chatterbot_en.jsonl", ".jsonl", "mrr")}
BODIES = {"minilm": minilm_folder, "small": lambda: ROOT / "runs" / "small_budget" / "warmstart_mlm"}


def dev_folder(task: str, out: Path, split: str = "validation") -> Path:
    """The train file as it is, the validation file (or, for `--split test`, the test file) as the scored 'test'
    split; the other held-out split is not copied. A single-file source (dialogue) is split as its recipe splits
    it at seed 0 and written out, one JSON conversation a line."""
    _, source, suffix, _ = TASKS[task]
    folder = out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        parts = split_examples(read_conversations(source), 0, 0.1, 0.1, group=lambda c: c[0].strip().lower())
        for name, convs in (("train", parts["train"]), ("test", parts[split])):
            (folder / f"{name}{suffix}").write_text("".join(json.dumps({"turns": c}) + "\n" for c in convs),
                                                    encoding="utf-8")
        return folder
    shutil.copyfile(source / f"train{suffix}", folder / f"train{suffix}")
    shutil.copyfile(source / f"{split}{suffix}", folder / f"test{suffix}")
    return folder


def cell(task: str, out: Path, data: Path, init: Path, lr: str, seed: int, labels: int,
         extra: list[str] | None = None) -> dict:
    done = out / "metrics.json"
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    _, cfg = load_task_config(ROOT / "configs" / "finetune" / TASKS[task][0], [
        f"output_dir={out}", f"init={init}", f"data.path={data}", f"train.lr={lr}", f"train.seed={seed}",
        *([f"data.labels={labels}"] if labels else []), *(extra or [])])
    return run_task(cfg)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="ner", choices=sorted(TASKS))
    p.add_argument("--bodies", nargs="+", default=["minilm", "small"], choices=sorted(BODIES))
    p.add_argument("--lrs", nargs="+", default=["5e-4", "1e-4", "5e-5"])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--labels", type=int, default=500)
    p.add_argument("--split", default="validation", choices=["validation", "test"],
                   help="the scored split: validation to choose; test once, to confirm a choice")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="further recipe overrides for every cell, e.g. train.eval_every=28 (give --out too)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    args.out = args.out or ROOT / "runs" / "recipe_lr" / (args.task + ("_test" if args.split == "test" else ""))
    metric = TASKS[args.task][3]
    data = dev_folder(args.task, args.out, args.split)
    rows, t0 = [], time.perf_counter()
    for body in args.bodies:
        init = BODIES[body]()
        for seed in range(args.seeds):  # seed-major: a cut-short run still has every rate at the first seeds
            for lr in args.lrs:
                m = cell(args.task, args.out / body / f"lr{lr}" / f"seed{seed}", data, init, lr, seed, args.labels,
                         args.set)
                rows.append({"body": body, "lr": lr, "seed": seed, "f1": m[metric], "steps": m.get("steps"),
                             "seconds": m.get("seconds")})
                print(f"{body} lr {lr} seed {seed}: {args.split} {metric} {m[metric]:.4f} "
                      f"({m.get('seconds')} s)", flush=True)
    lines = [f"`.venv/bin/python benchmarks/recipe_lr.py --task {args.task} --bodies {' '.join(args.bodies)} --lrs {' '.join(args.lrs)} "
             f"--seeds {args.seeds} --labels {args.labels} --split {args.split}"
             f"{' --set ' + ' '.join(args.set) if args.set else ''}` on {cpu_name()}, "
             f"{(time.perf_counter() - t0) / 60:.0f} min (reused cells count 0)", "",
             f"| body | lr | {args.split} {metric} (mean ± std) | per seed | seconds a run |", "|---|---|---|---|---|"]
    for body in args.bodies:
        for lr in args.lrs:
            f1 = [r["f1"] for r in rows if r["body"] == body and r["lr"] == lr]
            secs = [r["seconds"] for r in rows if r["body"] == body and r["lr"] == lr and r["seconds"] is not None]
            spread = statistics.stdev(f1) if len(f1) > 1 else 0.0
            lines.append(f"| {body} | {lr} | {statistics.mean(f1):.3f} ± {spread:.3f} | "
                         f"{' / '.join(f'{x:.3f}' for x in f1)} | {statistics.mean(secs) if secs else 0:.0f} |")
    text = "\n".join(lines)
    print(text)
    (args.out / "table.md").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
