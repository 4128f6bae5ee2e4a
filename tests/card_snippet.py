"""Run the python block of a model card (tasks/card.py) as a user would paste it."""

from __future__ import annotations


def run_card_snippet(card: str, folder, texts: list[str], pairs: list[str] | None = None):
    """Execute the card's code on `folder` and `texts` (and `pairs`, for a pair classifier's card). -> probs (B, C),
    a tensor"""
    code = card.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"THIS_FOLDER"', repr(str(folder))).replace('["first text", "second text"]', repr(texts))
    if pairs is not None:
        assert "pairs = [" in code
        code = code.replace('["its pair", "the second\'s pair"]', repr(pairs))
    scope: dict = {}
    exec(compile(code, "model_card", "exec"), scope)  # noqa: S102 - the card's own snippet, on a test folder
    return scope["probs"]
