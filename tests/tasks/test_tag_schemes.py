"""tasks/tag_schemes.py: BIO, IOB1, BIOES and BILOU tags, decoded and scored through BIO."""

from __future__ import annotations

import random

import pytest

from warmstart.tasks.tag_schemes import decode, entity_scheme, from_bio, inventory, tagging_metrics, to_bio


@pytest.mark.parametrize("tags, scheme", [
    (["O", "B-PER", "I-PER"], "BIO"),
    (["O", "I-PER"], "BIO"),  # IOB1 (CoNLL-2003 as released): read and repaired as BIO
    (["O"], "BIO"),
    (["O", "B-PER", "E-PER", "S-LOC"], "BIOES"),
    (["S-LOC", "O"], "BIOES"),
    (["B-PER", "L-PER", "U-LOC", "O"], "BILOU"),
    (["NN", "VB"], None),  # POS tags: token accuracy
    (["B-PER", "E-PER", "U-LOC"], None),  # two schemes mixed
    (["O", "X-PER"], None),
])
def test_the_scheme_of_a_tag_set(tags, scheme):
    assert entity_scheme(tags) == scheme


def test_each_scheme_gets_every_prefix_of_every_type():
    assert inventory({"O", "S-LOC", "B-PER"}, "BIOES") == {"O", *(f"{p}-{t}" for p in "BIES" for t in ("LOC", "PER"))}
    assert inventory({"O", "B-PER"}, "BIO") == {"O", "B-PER", "I-PER"}


@pytest.mark.parametrize("tags, repaired", [
    (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),
    (["B-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),
    (["O", "I-ORG", "B-ORG", "I-ORG"], ["O", "B-ORG", "B-ORG", "I-ORG"]),
    (["B-X", "I-X", "O"], ["B-X", "I-X", "O"]),
])
def test_bio_is_repaired(tags, repaired):
    assert decode(tags, "BIO") == repaired


@pytest.mark.parametrize("scheme, tags, repaired", [
    ("BIOES", ["B-PER", "E-PER", "S-LOC", "O"], ["B-PER", "E-PER", "S-LOC", "O"]),  # well-formed: as it is
    ("BIOES", ["B-PER", "O"], ["S-PER", "O"]),  # a B- that nothing continues is a one-word entity
    ("BIOES", ["B-PER", "I-PER", "O"], ["B-PER", "E-PER", "O"]),  # an entity ends on E-
    ("BIOES", ["E-PER", "I-LOC", "B-LOC"], ["S-PER", "S-LOC", "S-LOC"]),
    ("BILOU", ["I-ORG", "L-ORG", "U-LOC"], ["B-ORG", "L-ORG", "U-LOC"]),
    ("BILOU", ["B-ORG", "B-ORG", "I-ORG", "I-ORG"], ["U-ORG", "B-ORG", "I-ORG", "L-ORG"]),
])
def test_bioes_and_bilou_are_made_well_formed_in_their_own_scheme(scheme, tags, repaired):
    assert decode(tags, scheme) == repaired
    assert decode(repaired, scheme) == repaired


def test_well_formed_tags_round_trip_through_bio():
    rng = random.Random(0)
    for _ in range(200):
        bio = decode([rng.choice(["O", "B-A", "I-A", "B-B", "I-B"]) for _ in range(rng.randint(1, 12))], "BIO")
        for scheme in ("BIOES", "BILOU"):
            assert to_bio(from_bio(bio, scheme)) == bio


def test_entity_f1_against_a_hand_computed_value():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]
    # entities: gold {PER, LOC, ORG}, predicted {PER, ORG, LOC@wrong place}: tp 2, P = 2/3, R = 2/3
    m = tagging_metrics(gold, pred, "BIO")
    assert m["entity_precision"] == pytest.approx(0.6667, abs=1e-4)
    assert m["entity_recall"] == pytest.approx(0.6667, abs=1e-4)
    assert m["entity_f1"] == pytest.approx(0.6667, abs=1e-4)
    assert m["token_accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert m["entity_f1_by_type"]["PER"] == 1.0 and m["entity_f1_by_type"]["LOC"] == 0.0
    assert "entity_f1" not in tagging_metrics([["NN", "VB"]], [["NN", "NN"]], None)


@pytest.mark.parametrize("scheme, name", [("BIOES", "IOBES"), ("BILOU", "BILOU")])
def test_entity_f1_of_any_scheme_equals_seqeval_strict_on_its_own_tags(scheme, name):
    """The BIO reading scores the same entities as seqeval's strict mode for the scheme, on well-formed tags."""
    import seqeval.scheme
    from seqeval.metrics import f1_score

    rng = random.Random(1)
    gold, pred = [], []
    for _ in range(300):
        n = rng.randint(1, 10)
        for part in (gold, pred):
            part.append(decode([rng.choice(["O", "O", "B-A", "I-A", "B-B", "I-B"]) for _ in range(n)], scheme))
    got = tagging_metrics(gold, pred, scheme)
    strict = f1_score(gold, pred, mode="strict", scheme=getattr(seqeval.scheme, name))
    assert 0.1 < got["entity_f1"] < 0.9 and got["entity_f1"] == pytest.approx(strict, abs=1e-4)
