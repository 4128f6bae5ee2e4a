"""autopilot/verdict.py: what auto says of its choice, in plain words."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("gap, expected", [
    ({"b": "MiniLM + SimCSE, LP-FT", "gap": 3.1, "low": -8.0, "high": 14.3, "verdict": "not clearly different",
      "labels": 1}, ["3.1 points behind", "1 more of your 32 labels right", "not clearly different"]),
    ({"b": "MiniLM, linear probe", "gap": 0.0, "low": -6.4, "high": 6.4, "verdict": "not clearly different",
      "labels": 0}, ["as many of your labels right, different ones", "either may do better"]),
    ({"b": "MiniLM, linear probe", "gap": 25.0, "low": 9.4, "high": 40.6, "verdict": "better", "labels": 8},
     ["8 more of your 32 labels right", "the choice is clear"]),
    ({"b": "MiniLM, linear probe", "gap": 0.0, "low": 0.0, "high": 0.0, "verdict": "the same", "labels": 0},
     ["same labels: a tie"]),
])
def test_the_verdict_says_how_far_the_runner_up_is(gap, expected):
    """A near-tie is called one (at 16 labels per class one label of 32 decided a choice that test reversed)."""
    from warmstart.autopilot.verdict import runner_up_sentence

    said = runner_up_sentence(gap, 32)
    assert said.startswith(f"The runner-up, {gap['b']}") and all(e in said for e in expected)
    assert ("either may do better" in said) == (gap["verdict"] == "not clearly different")


def _run_card_snippet(card: str, folder, texts: list[str]):
    """Execute the python block of a model card on `folder` and `texts`, as a user would paste it. -> probs (B, C)"""
    code = card.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"THIS_FOLDER"', repr(str(folder))).replace('["first text", "second text"]', repr(texts))
    scope: dict = {}
    exec(compile(code, "model_card", "exec"), scope)  # noqa: S102 - the card's own snippet, on a test folder
    return scope["probs"]


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("pooling", ["mean", "cls_token"])
def test_the_model_cards_transformers_snippet_reproduces_warmstarts_probabilities(pretrained, tmp_path, family,
                                                                                   pooling):
    """A head fitted on pooled features is not what `AutoModelForSequenceClassification.forward` computes: the
    card's plain-transformers lines must give warmstart's own probabilities (`classification.logits_of`), for a
    one-linear head (BERT) and a head that reads position 0 (RoBERTa), mean and [CLS]-state pooling alike."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from warmstart.autopilot.verdict import model_card
    from warmstart.tasks.classification import logits_of

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
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(pretrained).save_pretrained(tmp_path)
    texts = ["a good film with a long and winding plot", "dull", "the cast is fine"]
    card = model_card(_CARD_RESULT, pooling, max_length=12)
    got = _run_card_snippet(card, tmp_path, texts)

    batch = dict(AutoTokenizer.from_pretrained(tmp_path)(texts, padding=True, truncation=True, max_length=12,
                                                         return_tensors="pt"))
    with torch.no_grad():
        want = logits_of(model.eval(), batch, pooling).softmax(-1)
        plain = model(**batch).logits.softmax(-1)
    assert got.shape == (3, 3) and torch.allclose(got, want, atol=1e-6)
    # what the card warns of: the plain forward pools otherwise (BERT's pooler), except where a RoBERTa head's own
    # reading of position 0 is the [CLS] state
    assert torch.allclose(plain, want, atol=1e-6) == (family == "roberta" and pooling == "cls_token")
    assert "may predict something else" in card
    assert ("mean-pooled" if pooling == "mean" else "the [CLS] state") in card


def test_a_model_card_with_the_standard_head_says_transformers_predicts_the_same():
    from warmstart.autopilot.verdict import model_card

    card = model_card(_CARD_RESULT, "cls", max_length=12)
    assert "```python" not in card and "the same predictions" in card and "pipeline(" in card


_CARD_RESULT = {"labels": 20, "classes": ["neg", "pos"], "protocol": "20 labels, 2-fold cross-validation",
                "chosen": {"name": "tiny, SetFit (warmstart)", "encoder_folder": "tiny", "accuracy": 80.0,
                           "low": 60.0, "high": 90.0}}
