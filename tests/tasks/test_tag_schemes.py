"""tasks/tag_schemes.py: BIO, IOB1, BIOES and BILOU tags, decoded and scored through BIO."""

from __future__ import annotations

import random

import pytest

from warmstart.tasks.tag_schemes import (
    decode,
    entity_scheme,
    from_bio,
    inventory,
    learnt_inventory,
    learnt_tags,
    tagging_metrics,
    to_bio,
    to_iob1,
    written_scheme,
)


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


@pytest.mark.parametrize("scheme, tags, learnt", [
    ("BIO", ["B-PER", "I-PER", "O", "B-LOC"], ["I-PER", "I-PER", "O", "I-LOC"]),
    ("BIO", ["B-PER", "B-PER", "I-PER", "B-LOC"], ["I-PER", "B-PER", "I-PER", "I-LOC"]),  # B- where two PER touch
    ("BIO", ["O", "I-ORG", "I-ORG"], ["O", "I-ORG", "I-ORG"]),  # a stray I- begins an entity, as decode reads it
    ("BIOES", ["S-PER", "S-PER", "B-LOC", "E-LOC"], ["I-PER", "B-PER", "I-LOC", "I-LOC"]),
    ("BILOU", ["U-LOC", "O", "B-ORG", "I-ORG", "L-ORG"], ["I-LOC", "O", "I-ORG", "I-ORG", "I-ORG"]),
    (None, ["NN", "B-VB"], ["NN", "B-VB"]),  # not entity tags: as written
])
def test_a_model_learns_the_iob1_reading_of_any_scheme(scheme, tags, learnt):
    assert learnt_tags(tags, scheme) == learnt
    assert learnt_tags(tags, scheme, "as_written") == tags


def test_the_iob1_reading_decodes_back_to_the_data_exactly():
    """Lossless: a model that predicts the learnt tags perfectly gives the user's well-formed tags back."""
    rng = random.Random(2)
    for _ in range(300):
        bio = decode([rng.choice(["O", "B-A", "I-A", "B-B", "I-B"]) for _ in range(rng.randint(1, 12))], "BIO")
        assert to_iob1(bio) == to_iob1(to_iob1(bio))  # IOB1 stays IOB1
        for scheme in ("BIO", "IOB1", "BIOES", "BILOU"):
            written = from_bio(bio, scheme)
            assert decode(learnt_tags(written, scheme), scheme) == written


def test_the_classes_of_each_reading():
    tags = {"O", "S-LOC", "B-PER", "E-PER"}
    assert learnt_inventory(tags, "BIOES") == {"O", "B-LOC", "I-LOC", "B-PER", "I-PER"}
    assert learnt_inventory(tags, "BIOES", "as_written") == inventory(tags, "BIOES")
    assert learnt_inventory({"NN", "VB"}, None) == {"NN", "VB"}


@pytest.mark.parametrize("sentences, scheme", [
    ([["I-PER", "I-PER", "O", "I-LOC"], ["I-ORG", "B-ORG"]], "IOB1"),  # CoNLL-2003 as released
    ([["B-PER", "I-PER", "O", "B-LOC"]], "BIO"),
    ([["I-PER", "O"], ["B-LOC"]], "BIO"),  # a B- that begins after nothing of its type: BIO (with a stray I-)
    ([["O", "O"]], "BIO"),
    ([["I-PER", "I-PER"], ["B-PER", "I-LOC"]], "BIO"),
    ([["S-PER", "B-LOC", "E-LOC"]], "BIOES"),
    ([["NN", "VB"]], None),
])
def test_iob1_is_told_from_bio_by_the_order_of_its_tags(sentences, scheme):
    assert written_scheme(sentences) == scheme


def test_iob1_data_is_written_back_in_iob1():
    assert decode(["O", "B-PER", "I-PER", "B-PER", "I-LOC"], "IOB1") == ["O", "I-PER", "I-PER", "B-PER", "I-LOC"]
    assert tagging_metrics([["I-PER", "B-PER", "O"]], [["I-PER", "B-PER", "O"]], "IOB1")["entity_f1"] == 1.0
    assert tagging_metrics([["I-PER", "B-PER", "O"]], [["I-PER", "I-PER", "O"]], "IOB1")["entity_f1"] == 0.0
