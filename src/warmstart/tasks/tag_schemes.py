"""Entity tag schemes of sequence labelling, read as their users write them:
- BIO (IOB2: B- begins an entity, I- continues it) and IOB1 (CoNLL-2003 as released: I- begins an entity too,
  B- only where it follows one of its type),
- BIOES (IOBES: E- ends an entity, S- is an entity of one word; Flair, many OntoNotes exports),
- BILOU (L- last, U- unit; spaCy's BILUO).

Each maps one to one onto BIO for well-formed tags, so every scheme is decoded and scored through BIO: a model's
tags are repaired there (an I- that continues nothing begins an entity) and written back in the data's own scheme,
and seqeval's entity F1 reads the same entities from the BIO form as its strict IOBES / BILOU modes read from
well-formed tags (tested). Without this a BIOES set was scored by token accuracy alone, which 'O' dominates.

A model learns the IOB1 reading of any scheme (`learnt_tags`): inside an entity every word is I-X, and B-X only
marks where two X entities touch, so a type is nearly one tag rather than two to four, each with more examples.
On WNUT-16 (MiniLM, fixed epochs, benchmarks/tag_schemes.py) this gave entity F1 21.2 / 32.6 / 48.7 against BIO's
10.4 / 27.5 / 43.9 at 100 / 300 / 1,000 tweets, higher on every seed. Predictions are decoded as above, so the user
gets their own scheme back; `train.entity_tags=as_written` learns the data's tags themselves.
"""

from __future__ import annotations

import numpy as np

# IOB1 has BIO's prefixes: a tag set alone reads as BIO (first here); `written_scheme` tells them apart by order
SCHEMES = {"BIO": ("B", "I"), "IOB1": ("B", "I"), "BIOES": ("B", "I", "E", "S"), "BILOU": ("B", "I", "L", "U")}
TO_BIO = {"E": "I", "S": "B", "L": "I", "U": "B"}
LAST = {"BIOES": ("E", "S"), "BILOU": ("L", "U")}  # a scheme's (last word of an entity, entity of one word)


def entity_scheme(tags) -> str | None:
    """The scheme of a tag set (`O` and PREFIX-TYPE tags), or None when the tags are not entity tags (POS tags,
    or prefixes of two schemes mixed). A set of `O` alone reads as BIO."""
    prefixes = set()
    for t in tags:
        if t == "O":
            continue
        if len(t) < 3 or t[1] != "-":
            return None
        prefixes.add(t[0])
    return next((name for name, allowed in SCHEMES.items() if prefixes <= set(allowed)), None)


def written_scheme(sentences: list[list[str]]) -> str | None:
    """`entity_scheme` of the sentences' tags, with IOB1 (CoNLL-2003 as released) told from BIO by their order:
    IOB1 begins an entity with I- and writes B- only where one follows another of its type, so a B- after O or
    another type is BIO's. Predictions are written back in the scheme found."""
    scheme = entity_scheme({t for tags in sentences for t in tags})
    if scheme != "BIO":
        return scheme
    opens_with_i = False
    for tags in sentences:
        for i, t in enumerate(tags):
            other = i == 0 or tags[i - 1][2:] != t[2:]  # first, or after O or another type
            if t.startswith("B-") and other:
                return "BIO"
            opens_with_i = opens_with_i or (t.startswith("I-") and other)
    return "IOB1" if opens_with_i else "BIO"


def inventory(tags: set[str], scheme: str) -> set[str]:
    """Every tag of the scheme for every entity type `tags` name: a type seen only as B- still gets I- (and E-/S-)."""
    return tags | {f"{p}-{t[2:]}" for t in tags if t != "O" for p in SCHEMES[scheme]}


def to_bio(tags: list[str]) -> list[str]:
    """BIOES / BILOU -> BIO (BIO unchanged)."""
    return [TO_BIO.get(t[0], t[0]) + t[1:] if t != "O" else t for t in tags]


def repair_bio(tags: list[str]) -> list[str]:
    """An I-X that does not continue an X entity (after O, another type, or at the start) begins one: B-X."""
    out = []
    for i, t in enumerate(tags):
        if t.startswith("I-") and (i == 0 or out[-1] == "O" or out[-1][2:] != t[2:]):
            t = "B-" + t[2:]
        out.append(t)
    return out


def from_bio(tags: list[str], scheme: str) -> list[str]:
    """Well-formed BIO -> the scheme: an entity's last word E- / L-, an entity of one word S- / U-."""
    if scheme == "BIO":
        return list(tags)
    if scheme == "IOB1":
        return to_iob1(tags)
    last, unit = LAST[scheme]
    out = []
    for i, t in enumerate(tags):
        ends = i + 1 == len(tags) or tags[i + 1] != "I-" + t[2:]
        if t.startswith("B-") and ends:
            t = f"{unit}-{t[2:]}"
        elif t.startswith("I-") and ends:
            t = f"{last}-{t[2:]}"
        out.append(t)
    return out


def to_iob1(tags: list[str]) -> list[str]:
    """Well-formed BIO -> IOB1 (CoNLL-2003 as released): an entity begins with I- unless it follows one of its
    type, where B- marks the boundary."""
    out = []
    for i, t in enumerate(tags):
        if t.startswith("B-") and not (i and tags[i - 1] != "O" and tags[i - 1][2:] == t[2:]):
            t = "I-" + t[2:]
        out.append(t)
    return out


def learnt_tags(tags: list[str], scheme: str | None, reading: str = "iob1") -> list[str]:
    """One sentence's tags as a model learns them: the IOB1 reading of entity tags in any scheme (a stray I- read
    as beginning an entity, as `decode` reads predictions), or the tags as written (and any non-entity tags)."""
    if scheme is None or reading == "as_written":
        return list(tags)
    return to_iob1(repair_bio(to_bio(tags)))


def learnt_inventory(tags: set[str], scheme: str | None, reading: str = "iob1") -> set[str]:
    """The classes a model has for a tag set: every prefix of its reading for every type (`inventory`), so a type
    absent from a small training sample is still a class; the tags themselves when they are not entity tags."""
    if scheme is None:
        return set(tags)
    if reading == "as_written":
        return inventory(set(tags), scheme)
    return inventory(set(to_bio(sorted(tags))), "BIO")


def decode(tags: list[str], scheme: str) -> list[str]:
    """A model's tags for one sentence, made well-formed in `scheme`: read as BIO, repaired, written back."""
    return from_bio(repair_bio(to_bio(tags)), scheme)


def tagging_metrics(gold: list[list[str]], pred: list[list[str]], scheme: str | None) -> dict:
    """Entity precision/recall/F1 (seqeval, micro over entities, read from the BIO form of any scheme) for entity
    tags, and token accuracy (on the tags as they are) always."""
    flat_gold = [t for s in gold for t in s]
    flat_pred = [t for s in pred for t in s]
    out = {"token_accuracy": round(float(np.mean([g == p for g, p in zip(flat_gold, flat_pred, strict=True)])), 4)}
    if scheme:
        from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

        gold, pred = [to_bio(s) for s in gold], [to_bio(s) for s in pred]
        out.update(entity_f1=round(float(f1_score(gold, pred, zero_division=0)), 4),
                   entity_precision=round(float(precision_score(gold, pred, zero_division=0)), 4),
                   entity_recall=round(float(recall_score(gold, pred, zero_division=0)), 4))
        report = classification_report(gold, pred, output_dict=True, zero_division=0)
        out["entity_f1_by_type"] = {k: round(float(v["f1-score"]), 4) for k, v in report.items()
                                    if not k.endswith("avg")}
    return out
