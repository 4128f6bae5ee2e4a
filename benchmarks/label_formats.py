"""The label formats a multi-label user brings, on one real set: the kinds of entity each WNUT-16 tweet mentions
(benchmarks/multi_label.py builds it), written as lists of names, as 0/1 vectors (what SetFit's and HF
Trainer's multi-label examples take), as one 0/1 column per label (Jigsaw, SemEval) and as an HF dataset with a
`Sequence(ClassLabel)` column. Each format goes through `warmstart finetune configs/finetune/multilabel.yaml`
with the public MiniLM, the linear probe (seconds a run), N labels, the same seeds; the same tweets with the same
labels must give the same scores, whatever the format.

    .venv/bin/python benchmarks/label_formats.py [--labels 200] [--seeds 0 1 2] [--out runs/label_formats]

Finished cells are reused. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name  # noqa: E402
from multi_label import RECIPE, entity_types_table, median_cell  # noqa: E402

from warmstart.models.common import minilm_folder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("lists", "vectors", "columns", "class_label")


def write_formats(lists: Path, out: Path) -> dict[str, list[str]]:
    """The table at `lists` (a `labels` list column) in each format. -> {format: config keys that read it}"""
    rows = pd.read_json(lists, lines=True)
    names = sorted({n for s in rows["labels"] for n in s})
    hot = [[int(n in s) for n in names] for s in rows["labels"]]
    keys = {"lists": [f"data.path={lists}"]}
    path = out / "vectors.jsonl"
    if not path.is_file():
        rows.assign(labels=hot).to_json(path, orient="records", lines=True, force_ascii=False)
    keys["vectors"] = [f"data.path={path}"]
    path = out / "columns.csv"
    if not path.is_file():
        columns = pd.DataFrame(hot, columns=[f"is_{n}" for n in names])
        pd.concat([rows.drop(columns="labels"), columns], axis=1).to_csv(path, index=False)
    keys["columns"] = [f"data.path={path}", f"data.label_columns=[{', '.join(f'is_{n}' for n in names)}]"]
    path = out / "hf"
    if not path.is_dir():
        import datasets

        feats = datasets.Features({"text": datasets.Value("string"),
                                   "labels": datasets.Sequence(datasets.ClassLabel(names=names))})
        datasets.DatasetDict({s: datasets.Dataset.from_dict(
            {"text": list(part["text"]), "labels": [[names.index(n) for n in ls] for ls in part["labels"]]},
            features=feats) for s, part in rows.groupby("split")}).save_to_disk(str(path))
    keys["class_label"] = [f"data.path={path}"]
    return keys


def cell(fmt: str, keys: list[str], seed: int, labels: int, out: Path) -> dict:
    from warmstart.config import FinetuneConfig
    from warmstart.config.loader import load_config
    from warmstart.tasks.registry import run_task

    folder = out / fmt / f"n{labels}_seed{seed}"
    done = folder / "metrics.json"
    if done.is_file():
        with done.open(encoding="utf-8") as f:
            return json.load(f)
    cfg = load_config(FinetuneConfig, RECIPE, [f"init={minilm_folder()}", f"data.labels={labels}", f"train.seed={seed}",
                                               "train.strategy=linear_probe", "train.save_model=false",
                                               "train.max_minutes=null", f"output_dir={folder}", *keys])
    return run_task(cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    ap.add_argument("--out", default="runs/label_formats")
    ap.add_argument("--report", default=str(ROOT / "benchmarks" / "results" / "label_formats.md"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keys = write_formats(entity_types_table(out / "data"), out)
    rows = []
    for seed in args.seeds:
        for fmt in args.formats:
            m = cell(fmt, keys[fmt], seed, args.labels, out)
            rows.append({"format": fmt, "seed": seed, "labels_of_the_model": m["label_count"],
                         **{k: m[k] for k in ("micro_f1", "macro_f1", "exact_match", "tfidf_micro_f1")}})
            print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    lines = [f"# Multi-label label formats: WNUT-16's entity kinds, {args.labels} labels, MiniLM, linear probe", "",
             f"CPU: {cpu_name()}. `{' '.join(sys.argv)}`. Medians over seeds (each seed in brackets).", "",
             "| format | labels of the model | micro-F1 | macro-F1 | exact match | TF-IDF micro-F1 |",
             "|---|---|---|---|---|---|"]
    for fmt, part in table.groupby("format", sort=False):
        cells = [median_cell(part[col]) for col in ("micro_f1", "macro_f1", "exact_match", "tfidf_micro_f1")]
        lines.append(f"| {fmt} | {', '.join(map(str, sorted(set(part['labels_of_the_model']))))} | "
                     f"{' | '.join(cells)} |")
    Path(args.report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
