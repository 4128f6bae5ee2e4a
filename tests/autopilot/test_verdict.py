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
