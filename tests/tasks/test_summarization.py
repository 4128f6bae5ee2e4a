import json
import random

import numpy as np
import pytest

from warmstart.config import FinetuneConfig, load_config
from warmstart.errors import WarmstartError
from warmstart.tasks.summarization import (
    _from_record,
    oracle_labels,
    read_documents,
    rouge,
    select,
    sentence_f1,
)


def test_rouge_against_a_hand_computed_value():
    # unigrams: reference {the, cat, sat}, extract {the, cat}: P 1, R 2/3, F 0.8; bigrams: {the cat} of
    # {the cat, cat sat}: P 1, R 1/2, F 2/3; LCS "the cat": as ROUGE-1
    r = rouge(["the cat"], ["the cat sat"])
    assert r == {"rouge1": 80.0, "rouge2": pytest.approx(66.67, abs=0.01), "rougeL": 80.0}
    assert rouge(["a b", "x"], ["a b", "y"])["rouge1"] == 50.0  # mean over documents


def test_oracle_picks_the_sentences_that_make_the_reference():
    sentences = ["the weather was mild", "we propose a parser", "it beats the baseline", "lunch was late"]
    assert oracle_labels(sentences, "we propose a parser that beats the baseline") == [0, 1, 1, 0]
    assert oracle_labels(sentences, "we propose a parser that beats the baseline", max_words=5) == [0, 1, 0, 0]


def test_select_keeps_the_budget_and_document_order():
    sentences = ["one two three", "four five", "six seven eight nine", "ten"]
    assert select(np.array([0.1, 0.9, 0.8, 0.7]), sentences, max_words=5) == [1, 3]
    assert select(np.array([0.1, 0.2, 0.9, 0.3]), sentences, max_words=2) == [2]  # the best always goes in


def test_sentence_f1_hand_computed():
    # selected {0, 1} and {2}; positives {1} and {2, 3}: tp 2, selected 3, positive 3 -> F1 = 4/6
    assert sentence_f1([[0, 1], [2]], [[0, 1, 0], [0, 0, 1, 1]]) == pytest.approx(0.6667, abs=1e-4)


ACLSUM = {"id": "P1", "title": "T",
          "sentences": {"abstract": ["a0", "a1"], "introduction": ["i0"], "conclusion": ["c0", "c1"]},
          "summary": {"challenge": "C.", "approach": "A.", "outcome": "O."},
          "highlights": {"challenge": {"abstract": [1, 0], "introduction": [0], "conclusion": [0, 0]},
                         "approach": {"abstract": [0, 0], "introduction": [1], "conclusion": [0, 0]},
                         "outcome": {"abstract": [0, 0], "introduction": [0], "conclusion": [0, 1]}}}


def test_aclsum_records_flatten_sections_and_join_aspects():
    d = _from_record(ACLSUM, "all", "x")
    assert d.sentences == ["a0", "a1", "i0", "c0", "c1"]
    assert d.sections == ["abstract", "abstract", "introduction", "conclusion", "conclusion"]
    assert d.labels == [1, 0, 1, 0, 1] and d.summary == "C. A. O."
    one = _from_record(ACLSUM, "outcome", "x")
    assert one.labels == [0, 0, 0, 0, 1] and one.summary == "O."
    with pytest.raises(WarmstartError, match="no aspect 'method'"):
        _from_record(ACLSUM, "method", "x")


def test_bad_documents_are_one_line_errors(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"sentences": ["a", "b"], "labels": [1]}\n', encoding="utf-8")
    with pytest.raises(WarmstartError, match="has 2 sentences but 1 labels"):
        read_documents(path)
    path.write_text("not json\n", encoding="utf-8")
    with pytest.raises(WarmstartError, match=r"d.jsonl:1: not a JSON object"):
        read_documents(path)


def write_documents(path, n: int, seed: int) -> None:
    """Each document hides two 'key' sentences (about a method and a result) among filler; the summary says them."""
    rng = random.Random(seed)
    filler = ["the weather was mild today", "many people like coffee", "the room was quiet", "trains were late"]
    with open(path, "w", encoding="utf-8") as f:
        for d in range(n):
            method, result = f"we propose method {d} for parsing", f"method {d} improves accuracy greatly"
            sents = rng.sample(filler, 3) + [method, result]
            rng.shuffle(sents)
            f.write(json.dumps({"id": f"doc{d}", "sentences": sents, "summary": f"{method} . {result}"}) + "\n")


def test_train_summarise_and_predict_reproduces(pretrained, tmp_path, monkeypatch):
    from warmstart.prediction import run_predict
    from warmstart.tasks.registry import run_task

    data = tmp_path / "docs"
    data.mkdir()
    for split, n, seed in (("train", 30, 0), ("validation", 6, 1), ("test", 8, 2)):
        write_documents(data / f"{split}.jsonl", n, seed)
    cfg = load_config(FinetuneConfig, None, [
        "task=summarization", f"init={pretrained}", f"output_dir={tmp_path / 'run'}", f"data.path={data}",
        "train.lr=0.005", "train.batch_size=16", "train.max_epochs=4", "train.max_length=32", "train.precision=fp32",
        "train.patience=3"])  # early stopping: the held-out share checks the refit
    metrics = run_task(cfg)
    assert metrics["max_words"] == 12  # the median training reference, in words
    # a study's Lead: the run's own, on the same documents
    from warmstart.studies.baselines import run_baseline

    lead = run_baseline(cfg)
    assert lead["baseline"] == "lead" and lead["max_words"] == 12 and lead["train_labels"] == metrics["train_labels"]
    assert (lead["rouge1"], lead["rougeL"]) == (metrics["lead_rouge1"], metrics["lead_rougeL"])
    assert metrics["test_documents"] == 8 and 0 < metrics["rouge1"] <= 100
    assert metrics["oracle_rouge1"] >= metrics["lead_rouge1"]
    assert 0 <= metrics["refit_check"] <= 100  # the refit checked on the held-out share (tasks/protocol.py)
    run = tmp_path / "run"
    saved = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert all(sum(len(s.split()) for s in r["summary"].split(" . ")) for r in saved)
    out = run_predict(str(run), str(data / "test.jsonl"), str(tmp_path / "p.jsonl"))
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["selected"] for r in again] == [r["selected"] for r in saved]
    assert [r["scores"] for r in again] == [r["scores"] for r in saved]
    from predict_resume import stopped_then_resumed  # killed mid-file, resumed: the same extracts

    resumed = stopped_then_resumed(run, data / "test.jsonl", tmp_path / "r.jsonl", monkeypatch, size=3)
    assert [json.loads(line)["selected"] for line in resumed.splitlines()] == [r["selected"] for r in saved]
    # the same documents as text, one sentence a line and a blank line between them: the same extracts
    docs = [json.loads(line) for line in (data / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    (tmp_path / "docs.txt").write_text("\n\n".join("\n".join(d["sentences"]) for d in docs) + "\n", encoding="utf-8")
    as_text = [json.loads(line) for line in run_predict(str(run), str(tmp_path / "docs.txt"), str(tmp_path / "t.jsonl"))
               .read_text().splitlines()]
    assert [r["selected"] for r in as_text] == [r["selected"] for r in saved] and as_text[1]["id"] == "doc1"
    # the card's transformers-only lines score and choose as predict does
    from card_snippet import run_extract_card_snippet

    card = (run / "README.md").read_text(encoding="utf-8")
    assert "within 12 words" in card and "8, never used" in card
    docs = [json.loads(line) for line in (data / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    for doc, row in zip(docs[:3], again[:3], strict=True):
        scores, chosen = run_extract_card_snippet(card, run, doc["sentences"])
        assert max(abs(a - b) for a, b in zip(scores, row["scores"], strict=True)) < 1e-4
        assert chosen == row["selected"]
