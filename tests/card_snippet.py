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


def run_token_card_snippet(card: str, folder, sentences: list[list[str]]) -> list[list[str]]:
    """Execute a token classifier's card code on `folder` and `sentences` (word lists). -> tags per word"""
    code = card.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"THIS_FOLDER"', repr(str(folder)))
    code = code.replace('[["John", "lives", "in", "Paris"], ["Hello", "world"]]', repr(sentences))
    scope: dict = {}
    exec(compile(code, "model_card", "exec"), scope)  # noqa: S102 - the card's own snippet, on a test folder
    return scope["tags"]


def run_reply_card_snippet(card: str, folder, context, candidates: list[str]):
    """Execute a response selector's card code on one context (a string or turns) and its candidates. -> scores"""
    code = card.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"THIS_FOLDER"', repr(str(folder)))
    code = code.replace('["Hi", "How are you?"]', repr(context))
    code = code.replace('["Fine, thanks.", "The capital is Paris."]', repr(candidates))
    if isinstance(context, str):  # a context given as one string is used as it is
        code = code.replace('.join(context)', '.join([context])')
    scope: dict = {}
    exec(compile(code, "model_card", "exec"), scope)  # noqa: S102 - the card's own snippet, on a test folder
    return scope["scores"]


def run_extract_card_snippet(card: str, folder, sentences: list[str]) -> tuple[list[float], list[int]]:
    """Execute a summariser's card code on one document's sentences. -> (scores, chosen indices in order)"""
    code = card.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"THIS_FOLDER"', repr(str(folder)))
    code = code.replace('["The first sentence.", "The second one.", "A third."]', repr(sentences))
    scope: dict = {}
    exec(compile(code, "model_card", "exec"), scope)  # noqa: S102 - the card's own snippet, on a test folder
    return scope["scores"].tolist(), sorted(scope["chosen"])
