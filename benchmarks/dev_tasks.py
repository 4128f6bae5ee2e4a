"""The domain-adaptation dev tasks (issue 21): four text classification tasks of different domains, built from
../shared/data, each with its unlabelled text kept apart from its test rows.

- `rt`: Rotten Tomatoes (critics' snippets, fresh/rotten; its own train/validation/test split). Unlabelled: the
  training snippets' text (TAPT) and, for DAPT, the 1,083 plot summaries of the same source.
- `acl`: ACLSum sentences labelled by the section they come from (abstract / introduction / conclusion; 3
  classes), split by paper as ACLSum splits them (100 train / 100 test papers, test capped at 300 sentences a
  class, seeded). Unlabelled: the training papers' sentences (TAPT) and, for DAPT, the full text of the ACLSum
  *training* papers from `text/acl_papers.txt` (validation and test papers dropped through its `.ids.tsv`). The
  ACL texts are partly non-commercial: read from ../shared only, never copied into the project.
- `chatterbot`: chatterbot conversations labelled by their category, the 7 categories with at least 40
  conversations (tech support capped at 150, seeded), text = the first turn and its reply; a stratified 50/50
  split (seed 0). Unlabelled: the training conversations' text only (TAPT; no larger corpus exists).
- `wordnet`: WordNet 3.0 glosses labelled by the part of speech of the word they define (noun / verb / adjective /
  adverb; 4 classes), known from the file's order (SOURCES.md: 82,115 noun, 13,767 verb, 18,156 adjective, 3,621
  adverb glosses, in that order). Glosses that occur under two parts of speech are dropped, duplicates kept once;
  test: 300 a class (seeded), train: the rest. Unlabelled: the 115,830 training glosses (TAPT; the dictionary
  domain, far from MiniLM's web and question pairs). Added because chatterbot has too little text to adapt to.

Each task is written once to OUT/<task>/{labelled.csv, tapt.txt, dapt.txt} (CSV columns text, label, split).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TASKS = ("rt", "acl", "chatterbot", "wordnet")
WORDNET_ORDER = (("noun", 82115), ("verb", 13767), ("adj", 18156), ("adv", 3621))  # SOURCES.md


def _cap(rows: pd.DataFrame, cap: int) -> pd.DataFrame:
    """At most `cap` rows of each label, a seeded sample."""
    return pd.concat([g.sample(min(cap, len(g)), random_state=0) for _, g in rows.groupby("label")])


def _write(folder: Path, rows: pd.DataFrame, tapt: list[str], dapt: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows[["text", "label", "split"]].to_csv(folder / "labelled.csv", index=False)
    (folder / "tapt.txt").write_text("\n".join(tapt) + "\n", encoding="utf-8")
    if dapt:
        (folder / "dapt.txt").write_text("\n".join(dapt) + "\n", encoding="utf-8")
    return folder


def build_rt(folder: Path) -> Path:
    rows = pd.read_csv(SHARED / "sentiment" / "rotten_tomatoes.csv")
    tapt = rows[rows.split == "train"].text.tolist()
    with open(SHARED / "movies" / "plot_summaries.txt", encoding="utf-8") as f:
        plots = [line.strip() for line in f if line.strip()]
    return _write(folder, rows, tapt, plots)


def build_acl(folder: Path, cap: int = 300) -> Path:
    rows = []
    for split, name in (("train", "train"), ("test", "test")):
        with open(SHARED / "summarization" / "aclsum" / f"{name}.jsonl", encoding="utf-8") as f:
            for line in f:
                paper = json.loads(line)
                for section, sentences in paper["sentences"].items():
                    rows += [{"text": s, "label": section, "split": split} for s in sentences if len(s.split()) >= 4]
    rows = pd.DataFrame(rows)
    rows = pd.concat([rows[rows.split == "train"], _cap(rows[rows.split == "test"], cap)])
    with open(SHARED / "text" / "acl_papers.ids.tsv", encoding="utf-8") as ids, \
            open(SHARED / "text" / "acl_papers.txt", encoding="utf-8") as text:
        dapt = [t.strip() for i, t in zip(ids, text, strict=True) if i.rstrip("\n").split("\t")[1] == "train"]
    return _write(folder, rows, rows[rows.split == "train"].text.tolist(), dapt)


def build_chatterbot(folder: Path, min_size: int = 40, cap: int = 150) -> Path:
    from sklearn.model_selection import train_test_split

    with open(SHARED / "dialogue" / "chatterbot_en.jsonl", encoding="utf-8") as f:
        convs = [json.loads(line) for line in f]
    rows = pd.DataFrame({"text": [" ".join(c["turns"][:2]) for c in convs], "label": [c["category"] for c in convs]})
    rows = rows.drop_duplicates("text")
    counts = rows.label.value_counts()
    rows = rows[rows.label.isin(counts[counts >= min_size].index)]
    rows = _cap(rows, cap)
    train, test = train_test_split(rows, test_size=0.5, stratify=rows.label, random_state=0)
    rows = pd.concat([train.assign(split="train"), test.assign(split="test")])
    return _write(folder, rows, train.text.tolist(), [])


def build_wordnet(folder: Path, test_per_class: int = 300) -> Path:
    with open(SHARED / "text" / "wordnet_glosses.txt", encoding="utf-8") as f:
        glosses = [line.rstrip("\n") for line in f]
    labels = [pos for pos, count in WORDNET_ORDER for _ in range(count)]
    if len(labels) != len(glosses):
        raise SystemExit(f"{SHARED / 'text' / 'wordnet_glosses.txt'}: {len(glosses)} glosses, SOURCES.md says "
                         f"{len(labels)}; update WORDNET_ORDER in benchmarks/dev_tasks.py")
    rows = pd.DataFrame({"text": glosses, "label": labels})
    senses = rows.groupby("text").label.nunique()
    rows = rows[rows.text.map(senses) == 1].drop_duplicates("text")
    test = _cap(rows, test_per_class)
    train = rows.drop(test.index)
    rows = pd.concat([train.assign(split="train"), test.assign(split="test")])
    return _write(folder, rows, train.text.tolist(), [])


def build(task: str, root: Path) -> Path:
    """OUT/<task>/ with labelled.csv, tapt.txt and (rt, acl) dapt.txt; built once."""
    folder = root / task
    if not (folder / "labelled.csv").is_file():
        random.seed(0)
        {"rt": build_rt, "acl": build_acl, "chatterbot": build_chatterbot,
         "wordnet": build_wordnet}[task](folder)
    return folder


if __name__ == "__main__":
    for t in TASKS:
        f = build(t, Path("runs/domain_adaptation/data"))
        rows = pd.read_csv(f / "labelled.csv")
        print(t, rows.groupby(["split", "label"]).size().to_dict(),
              {p.name: sum(1 for _ in open(p, encoding="utf-8")) for p in f.glob("*.txt")})
