"""tasks/card.py: a fine-tuned classifier's card, whose transformers-only lines reproduce warmstart's predictions."""

from __future__ import annotations

import pytest
from card_snippet import run_card_snippet


def _classifier(pretrained, family: str):
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    torch.manual_seed(0)
    if family == "bert":
        model = AutoModelForSequenceClassification.from_pretrained(pretrained, num_labels=3)
    else:
        base = AutoConfig.from_pretrained(pretrained)
        config = AutoConfig.for_model("roberta", vocab_size=base.vocab_size, hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, intermediate_size=64, max_position_embeddings=40,
                                      pad_token_id=base.pad_token_id, num_labels=3)
        model = AutoModelForSequenceClassification.from_config(config)
    with torch.no_grad():  # a head far from uniform, so that reading other features shows
        for p in model.classifier.parameters():
            p.mul_(100)
    return model.eval()


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("pooling", ["mean", "cls_token"])
def test_the_cards_transformers_lines_reproduce_warmstarts_probabilities(pretrained, tmp_path, family, pooling):
    """A head fitted on pooled features is not what `AutoModelForSequenceClassification.forward` computes: the
    card's plain-transformers lines must give warmstart's own probabilities (`classification.logits_of`), for a
    one-linear head (BERT) and a head that reads position 0 (RoBERTa), mean and [CLS]-state pooling alike."""
    import torch
    from transformers import AutoTokenizer

    from warmstart.tasks.card import finetune_card
    from warmstart.tasks.classification import logits_of

    model = _classifier(pretrained, family)
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(pretrained).save_pretrained(tmp_path)
    texts = ["a good film with a long and winding plot", "dull", "the cast is fine"]
    card = finetune_card({"strategy": "setfit", "test_size": 0}, ["a", "b", "c"], "tiny", pooling, max_length=12)
    got = run_card_snippet(card, tmp_path, texts)

    batch = dict(AutoTokenizer.from_pretrained(tmp_path)(texts, padding=True, truncation=True, max_length=12,
                                                         return_tensors="pt"))
    with torch.no_grad():
        want = logits_of(model, batch, pooling).softmax(-1)
        plain = model(**batch).logits.softmax(-1)
    assert got.shape == (3, 3) and torch.allclose(got, want, atol=1e-6)
    # what the card warns of: the plain forward pools otherwise (BERT's pooler), except where a RoBERTa head's own
    # reading of position 0 is the [CLS] state
    assert torch.allclose(plain, want, atol=1e-6) == (family == "roberta" and pooling == "cls_token")
    assert "may predict something else" in card
    assert ("mean-pooled" if pooling == "mean" else "the [CLS] state") in card


def test_a_pair_classifiers_card_tokenises_both_texts(pretrained, tmp_path):
    """`data.text_pair_column`: warmstart encodes (text, pair) together; the card's lines must too."""
    import torch
    from transformers import AutoTokenizer

    from warmstart.tasks.card import finetune_card
    from warmstart.tasks.classification import logits_of

    model = _classifier(pretrained, "bert")
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(pretrained).save_pretrained(tmp_path)
    texts, pairs = ["a good film", "dull"], ["the cast is fine", "a long and winding plot"]
    card = finetune_card({"strategy": "full", "test_size": 0}, ["a", "b", "c"], "tiny", "mean", 12, pairs=True)
    got = run_card_snippet(card, tmp_path, texts, pairs)
    batch = dict(AutoTokenizer.from_pretrained(tmp_path)(texts, pairs, padding=True, truncation=True, max_length=12,
                                                         return_tensors="pt"))
    with torch.no_grad():
        want = logits_of(model, batch, "mean").softmax(-1)
    assert torch.allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("metrics, says", [
    ({"strategy": "full", "test_size": 40, "accuracy": 0.8125, "macro_f1": 0.8, "protocol": "100 labels"},
     ["accuracy 81.2%", "macro-F1 80.0%", "40 rows", "100 labels", "# Text classifier (full, warmstart)"]),
    ({"strategy": "lp_ft", "test_size": 0}, ["No test rows: nothing was scored"]),
    ({"strategy": "setfit", "test_size": 40, "accuracy": 0.9, "macro_f1": 0.47, "majority_accuracy": 0.9},
     ["accuracy 90.0% (always answering the training labels' most frequent class: 90.0%), macro-F1 47.0%"]),
    ({"strategy": "setfit", "test_size": 40, "accuracy": 0.85, "macro_f1": 0.7, "balanced_accuracy": 0.78},
     ["macro-F1 70.0%, balanced accuracy (the mean of the classes' recalls) 78.0%."]),
])
def test_the_finetune_card_states_the_protocol_and_the_test_figures(metrics, says):
    from warmstart.tasks.card import finetune_card

    card = finetune_card(metrics, ["neg", "pos"], "runs/bert", "cls", 64)
    assert all(s in card for s in says), card
    assert "```python" not in card and "the same predictions" in card and "`runs/bert` (2 classes: neg, pos)" in card


@pytest.mark.parametrize("card, metrics, behind", [
    ("token", {"test_sentences": 5, "entity_f1": 0.30, "token_accuracy": 0.9, "commonest_tag_entity_f1": 0.35}, True),
    ("token", {"test_sentences": 5, "entity_f1": 0.40, "token_accuracy": 0.9, "commonest_tag_entity_f1": 0.35}, False),
    ("reply", {"test_contexts": 9, "candidates": 5, "recall_at_1": 0.2, "mrr": 0.4, "tfidf_recall_at_1": 0.3,
               "tfidf_mrr": 0.5}, True),
    ("reply", {"test_contexts": 9, "candidates": 5, "recall_at_1": 0.6, "mrr": 0.7, "tfidf_recall_at_1": 0.3,
               "tfidf_mrr": 0.5}, False),
    ("extract", {"test_documents": 4, "rouge1": 39.1, "rouge2": 14.8, "rougeL": 25.4, "lead_rouge1": 42.3}, True),
    ("extract", {"test_documents": 4, "rouge1": 45.0, "rouge2": 14.8, "rougeL": 25.4, "lead_rouge1": 42.3}, False),
])
def test_a_card_says_plainly_when_the_model_does_not_beat_its_classic_rival(card, metrics, behind):
    from warmstart.tasks.card import extract_card, reply_card, token_card

    text = {"token": lambda: token_card(metrics, ["B-PER", "I-PER", "O"], "init", 64),
            "reply": lambda: reply_card(metrics, "init", 64, 2),
            "extract": lambda: extract_card(metrics, "init", 128, 60)}[card]()
    said = "has not beaten" in text
    assert said is behind
