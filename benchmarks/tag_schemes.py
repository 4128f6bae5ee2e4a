"""Entity tag schemes on one real set: WNUT-16's tweets (../shared/data/ner/wnut16, BIO) rewritten in BIOES (Flair,
many OntoNotes exports), BILOU (spaCy) and IOB1 (CoNLL-2003 as released), each fine-tuned with `configs/finetune/ner.yaml` from the public MiniLM
on the same N sentences and seeds, and scored on the same test tweets: seqeval entity F1 (read through BIO,
tasks/tag_schemes.py), token accuracy, and each word's commonest tag as the rival.

    .venv/bin/python benchmarks/tag_schemes.py [--labels 300] [--seeds 0 1] [--arms BIO:as_written BIO:iob1 ...]
        [--out runs/tag_schemes]

A fixed number of epochs, no early stopping, no wall-clock cap, so that the scores do not depend on the machine's
load. Finished cells are reused. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name  # noqa: E402
from multi_label import median_cell  # noqa: E402

from warmstart.models.common import minilm_folder  # noqa: E402
from warmstart.tasks.tag_schemes import from_bio, to_iob1  # noqa: E402
from warmstart.tasks.token_classification import read_conll  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WNUT = ROOT.parent / "shared" / "data" / "ner" / "wnut16"
RECIPE = ROOT / "configs" / "finetune" / "ner.yaml"
SCHEMES = ("BIO", "BIOES", "BILOU", "IOB1")
# the data's scheme : train.entity_tags. BIO as written is the model before 2026-12-06; under the default (iob1)
# every scheme learns the same tags, so BIOES and BILOU should score as BIO does
ARMS = ("BIO:as_written", "BIO:iob1", "BIOES:iob1", "BILOU:iob1")


def write_scheme(scheme: str, out: Path) -> Path:
    """WNUT-16's three splits with their tags in `scheme`. -> the folder"""
    folder = out / scheme
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        path = folder / f"{split}.conll"
        if not path.is_file():
            convert = to_iob1 if scheme == "IOB1" else lambda tags: from_bio(tags, scheme)
            blocks = ["\n".join(f"{w}\t{t}" for w, t in zip(words, convert(tags), strict=True))
                      for words, tags in read_conll(WNUT / f"{split}.conll")]
            path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return folder


def cell(scheme: str, reading: str, seed: int, labels: int, epochs: int, out: Path) -> dict:
    """One fine-tuning run on the data in `scheme`, learning `reading` (train.entity_tags)."""
    from warmstart.config import FinetuneConfig
    from warmstart.config.loader import load_config
    from warmstart.tasks.registry import run_task

    # a cell learnt as written keeps the scheme's own folder (those of 2026-12-06 are reused)
    arm = scheme if reading == "as_written" else f"{scheme}-{reading}"
    folder = out / "runs" / arm / f"n{labels}_seed{seed}"
    done = folder / "metrics.json"
    if done.is_file():
        with done.open(encoding="utf-8") as f:
            return json.load(f)
    cfg = load_config(FinetuneConfig, RECIPE, [
        f"init={minilm_folder()}", f"data.path={write_scheme(scheme, out / 'data')}", f"data.labels={labels}",
        f"train.seed={seed}", "train.patience=0", f"train.max_epochs={epochs}", "train.max_minutes=null",
        "train.save_model=false", f"train.entity_tags={reading}", f"output_dir={folder}"])
    return run_task(cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--arms", nargs="+", default=list(ARMS), metavar="SCHEME:READING",
                    help=f"the data's scheme ({', '.join(SCHEMES)}) : what the model learns (iob1, as_written)")
    ap.add_argument("--out", default="runs/tag_schemes")
    ap.add_argument("--report", default=str(ROOT / "benchmarks" / "results" / "tag_schemes.md"))
    args = ap.parse_args()
    out = Path(args.out)
    rows = []
    for seed in args.seeds:
        for arm in args.arms:
            scheme, reading = arm.split(":")
            if scheme not in SCHEMES or reading not in ("iob1", "as_written"):
                ap.error(f"--arms {arm}: expected SCHEME:READING, SCHEME one of {', '.join(SCHEMES)}")
            m = cell(scheme, reading, seed, args.labels, args.epochs, out)
            rows.append({"arm": f"{scheme}, learnt {reading}", "seed": seed, "entity_f1": m.get("entity_f1"),
                         "token_accuracy": m["token_accuracy"], "commonest_tag": m.get("commonest_tag_entity_f1"),
                         "seconds": m["seconds"]})
            print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    lines = [f"# Entity tag schemes: WNUT-16, {args.labels} labelled tweets, MiniLM, {args.epochs} epochs", "",
             f"CPU: {cpu_name()}. `{' '.join(sys.argv)}`. Medians over seeds (each seed in brackets).", "",
             "| data, learnt as | entity F1 | token accuracy | commonest tag, entity F1 | seconds |", "|---|---|---|---|---|"]
    for arm, part in table.groupby("arm", sort=False):
        cells = [median_cell(part[c], c == "seconds") for c in ("entity_f1", "token_accuracy", "commonest_tag",
                                                                "seconds")]
        lines.append(f"| {arm} | {' | '.join(cells)} |")
    Path(args.report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
