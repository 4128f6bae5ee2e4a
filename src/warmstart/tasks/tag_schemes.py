"""Entity tag schemes of sequence labelling, read as their users write them:
- BIO (IOB2: B- begins an entity, I- continues it; CoNLL-2003's original IOB1, where an I- may begin one too),
- BIOES (IOBES: E- ends an entity, S- is an entity of one word; Flair, many OntoNotes exports),
- BILOU (L- last, U- unit; spaCy's BILUO).

Each maps one to one onto BIO for well-formed tags, so every scheme is decoded and scored through BIO: a model's
tags are repaired there (an I- that continues nothing begins an entity) and written back in the data's own scheme,
and seqeval's entity F1 reads the same entities from the BIO form as its strict IOBES / BILOU modes read from
well-formed tags (tested). Without this a BIOES set was scored by token accuracy alone, which 'O' dominates.
"""

from __future__ import annotations

import numpy as np

SCHEMES = {"BIO": ("B", "I"), "BIOES": ("B", "I", "E", "S"), "BILOU": ("B", "I", "L", "U")}
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
