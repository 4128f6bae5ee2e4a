import json
import random

import numpy as np
import pytest
import torch

from warmstart.config import FinetuneConfig, load_config
from warmstart.errors import WarmstartError
from warmstart.tasks.response_selection import (
    Example,
    conversations_from_novel,
    examples_of,
    labelled_sample,
    nsp_head_start,
    ranking_metrics,
    read_conversations,
    sample_negatives,
)


def test_recall_and_mrr_against_hand_computed_values():
    # true reply first: ranks 1, 2, and 2 (a tie counts against the true reply)
    scores = [np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 0.0]), np.array([1.0, 1.0, 0.0])]
    m = ranking_metrics(scores)
    assert m["recall_at_1"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["recall_at_2"] == 1.0
    assert m["mrr"] == pytest.approx((1 + 0.5 + 0.5) / 3, abs=1e-4)
    assert ranking_metrics([np.zeros(10)] * 4)["recall_at_1"] == 0.0  # a constant scorer earns nothing


def test_novel_dialogue_is_quoted_paragraphs_in_a_row():
    text = 'Narration.\n"Hello," said she.\n"Good day."\n"Indeed."\nMore narration.\n"Alone."\n'
    assert conversations_from_novel(text) == [['"Hello," said she.', '"Good day."', '"Indeed."']]


def test_examples_keep_the_last_turns_as_context():
    exs = examples_of([["a", "b", "c", "d"]], context_turns=2)
    assert [(e.context, e.reply) for e in exs] == [(["a"], "b"), (["a", "b"], "c"), (["b", "c"], "d")]


def test_negatives_are_never_replies_to_the_same_opening():
    pool = [Example(["what is ai?"], f"ai answer {i}", "what is ai?") for i in range(3)]
    pool += [Example([f"q{i}"], f"other {i}", f"q{i}") for i in range(20)]
    negs = sample_negatives(pool[:3], pool, 5, np.random.default_rng(0))
    assert all(len(n) == 5 and not any(r.startswith("ai answer") for r in n) for n in negs)
    with pytest.raises(WarmstartError, match="distinct replies to sample"):
        sample_negatives(pool[:3], pool[:5], 5, np.random.default_rng(0))


def test_the_held_out_share_never_shares_an_opening_with_the_kept_labels(tmp_path):
    # 30 openings asked 1-4 times each, 3 turns a conversation: 2 examples each
    rng = random.Random(0)
    lines = [json.dumps({"turns": [f"question {q}?", f"answer {q}.{k}", f"more {q}.{k}"]})
             for q in range(30) for k in range(rng.randint(1, 4))]
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for seed in range(3):
        cfg = load_config(FinetuneConfig, None, [
            "task=response_selection", f"data.path={path}", "data.candidates=3", "data.context_turns=1",
            f"train.seed={seed}"])
        sample = labelled_sample(cfg)
        train, held = {e.key for e in sample.train}, {e.key for e in sample.validation}
        assert held and train and not train & held
        assert len(sample.train) + len(sample.validation) == len(sample.labelled)
        assert 0.15 <= len(sample.validation) / len(sample.labelled) <= 0.35


def test_bad_conversation_files(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"turns": "hello"}\n', encoding="utf-8")
    with pytest.raises(WarmstartError, match="'turns' must be a list"):
        read_conversations(path)
    path.write_text('{"turns": ["only one"]}\n', encoding="utf-8")
    with pytest.raises(WarmstartError, match="no conversation of two or more turns"):
        read_conversations(path)


def test_score_head_starts_as_the_pretrained_nsp_head(pretrained):
    """score(context, reply) = IsNext logit - NotNext logit of the pretraining NSP head."""
    from transformers import AutoModelForSequenceClassification, BertForNextSentencePrediction

    from warmstart.data.text import load_tokenizer

    tok = load_tokenizer(str(pretrained))
    cross = AutoModelForSequenceClassification.from_pretrained(pretrained, num_labels=1).eval()
    assert nsp_head_start(cross, str(pretrained))
    nsp = BertForNextSentencePrediction.from_pretrained(pretrained).eval()
    batch = tok(["the film was good", "a dull plot"], ["great acting", "the end"], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = nsp(**batch).logits
        assert torch.allclose(cross(**batch).logits[:, 0], logits[:, 0] - logits[:, 1], atol=1e-5)


def write_dialogue(path, n: int = 90) -> None:
    """Questions about a topic answered by a reply that names the topic: learnable from the words alone."""
    rng = random.Random(0)
    topics = ["film", "music", "story", "actor", "scene", "plot", "cast", "ending", "director"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            t = topics[i % len(topics)]
            turns = [f"tell me about the {t} number {i}", f"the {t} was {rng.choice(['good', 'bad'])} {t}"]
            f.write(json.dumps({"category": "x", "turns": turns}) + "\n")


def test_train_rank_and_predict_reproduces(pretrained, tmp_path, monkeypatch):
    from warmstart.prediction import run_predict
    from warmstart.tasks.registry import run_task

    data = tmp_path / "chat.jsonl"
    write_dialogue(data)
    cfg = load_config(FinetuneConfig, None, [
        "task=response_selection", f"init={pretrained}", f"output_dir={tmp_path / 'run'}", f"data.path={data}",
        "data.candidates=5", "train.negatives=3", "train.lr=0.005", "train.batch_size=8", "train.max_epochs=3",
        "train.max_length=32", "train.precision=fp32", "train.patience=3"])  # the held-out share checks the refit
    metrics = run_task(cfg)
    assert metrics["score_head_from_nsp"] and metrics["candidates"] == 5 and metrics["test_contexts"] == 9
    assert 0 <= metrics["recall_at_1"] <= metrics["recall_at_2"] <= 1 and metrics["mrr"] >= metrics["recall_at_1"]
    assert 0 <= metrics["refit_check"] <= 1  # the refit checked on the held-out share (tasks/protocol.py)
    run = tmp_path / "run"
    saved = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    out = run_predict(str(run), str(run / "test_candidates.jsonl"), str(tmp_path / "p.jsonl"))
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["scores"] for r in again] == [r["scores"] for r in saved]
    assert [r["best"] for r in again] == [r["best"] for r in saved]
    from predict_resume import stopped_then_resumed  # killed mid-file, resumed: the same choices

    resumed = stopped_then_resumed(run, run / "test_candidates.jsonl", tmp_path / "r.jsonl", monkeypatch, size=4)
    assert [json.loads(line)["best"] for line in resumed.splitlines()] == [r["best"] for r in saved]
    # a study's TF-IDF rival scores the very test candidates the run wrote, from the N labels only
    from warmstart.studies.baselines import run_baseline
    from warmstart.tasks.response_selection import evaluation_candidates, labelled_sample

    _, test_cands = evaluation_candidates(labelled_sample(cfg), 5, 0)
    assert test_cands == [r["candidates"] for r in saved]
    tfidf = run_baseline(cfg)
    assert tfidf["baseline"] == "tfidf_cosine" and tfidf["candidates"] == 5
    assert 0 <= tfidf["recall_at_1"] <= tfidf["mrr"] <= 1 and tfidf["train_labels"] == metrics["train_labels"]
    assert (metrics["tfidf_recall_at_1"], metrics["tfidf_mrr"]) == (tfidf["recall_at_1"], tfidf["mrr"])  # beside
    # predict's bar counts the file's rows (contexts), not the candidate pairs scored
    from warmstart.config import load_config as load_saved
    from warmstart.tasks.registry import PredictRequest, get

    ticks: list[tuple[int, int]] = []

    def progress(total: int):
        return lambda n: ticks.append((total, n))

    task = get("response_selection")
    task.resolve("predict")(run, load_saved(FinetuneConfig, run / "warmstart_config.yaml"),
                            PredictRequest(run / "test_candidates.jsonl", batch_size=7, progress=progress))
    assert {t for t, _ in ticks} == {len(saved)} and sum(n for _, n in ticks) == len(saved)
    # the card's transformers-only lines give predict's scores
    from card_snippet import run_reply_card_snippet

    card = (run / "README.md").read_text(encoding="utf-8")
    assert "recall@1 of 5" in card and "cross-encoder" in card
    assert f"TF-IDF cosine of context and reply, no model: recall@1 {100 * tfidf['recall_at_1']:.1f}%" in card
    for row in again[:3]:
        scores = run_reply_card_snippet(card, run, row["context"], row["candidates"]).numpy()
        assert abs(scores - row["scores"]).max() < 1e-4
    # the input's own columns stay beside (one named like a prediction column as input_<name>)
    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps({"id": i, "best": "mine", **json.loads(line)}) + "\n" for i, line in
                            enumerate((run / "test_candidates.jsonl").read_text().splitlines()[:2])), encoding="utf-8")
    rows = [json.loads(line) for line in run_predict(str(run), str(mine), str(tmp_path / "m.jsonl"))
            .read_text().splitlines()]
    assert list(rows[1]) == ["id", "input_best", "context", "candidates", "scores", "best"] and rows[1]["id"] == 1
    assert [r["scores"] for r in rows] == [r["scores"] for r in saved[:2]]
