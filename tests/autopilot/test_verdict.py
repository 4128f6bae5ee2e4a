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


@pytest.mark.parametrize("labels, decisions, metric, expected", [
    (3, 64, "micro-F1", "3 more of your 64 label decisions (your 32 texts, each label yes or no) right"),
    (-5, 64, "micro-F1", "5 fewer of your 64 label decisions (your 32 texts, each label yes or no) right, but more "
                         "of the ones micro-F1 weighs most"),  # micro-F1 ignores the labels rightly left off
    (-2, None, "balanced accuracy", "2 fewer of your 32 labels right, but more of the ones balanced accuracy weighs "
                                    "most"),  # a rare class's label counts for more
])
def test_for_sets_of_labels_the_margin_counts_label_decisions(labels, decisions, metric, expected):
    from warmstart.autopilot.verdict import runner_up_sentence

    gap = {"b": "MiniLM, SetFit (warmstart)", "gap": 2.1, "low": -7.3, "high": 10.4,
           "verdict": "not clearly different", "labels": labels}
    assert expected in runner_up_sentence(gap, 32, decisions, metric)


@pytest.mark.parametrize("comparisons, why, expected", [
    ({}, None, "the best out-of-fold accuracy of the pipelines run"),  # no queued pipeline ran: probes only
    ({}, "SetFit, the strategy no other beat", "the default, SetFit, the strategy no other beat, and the best "
                                               "out-of-fold accuracy of the pipelines run"),
    ({"leader": {"a": "MiniLM, LP-FT"}}, "SetFit, the strategy no other beat",
     "the default, SetFit, the strategy no other beat; no pipeline was clearly better out of fold"),
    ({"default": {"b": "MiniLM, SetFit (warmstart)", "gap": 28.1, "low": 9.0, "high": 47.2, "verdict": "better"}},
     "SetFit", "clearly better out of fold than the default, MiniLM, SetFit (warmstart): +28.1 points, 95% "
               "interval +9.0 to +47.2"),
    ({"default": {"b": "MiniLM, SetFit (warmstart)", "gap": -3.1, "low": -12.0, "high": 6.0,
                  "verdict": "not clearly different"}}, "SetFit",
     "the default, MiniLM, SetFit (warmstart), could not be refitted in the time left; this was next in line"),
])
def test_the_verdict_says_why_the_model_was_chosen(comparisons, why, expected):
    from warmstart.autopilot.verdict import why_chosen

    assert why_chosen(comparisons, "accuracy", why) == expected


@pytest.mark.parametrize("labels, decisions, metric, expected", [
    (1, None, "accuracy", "1 more of your 32 labels right): not clearly better"),
    (-2, 64, "micro-F1", "more of the ones micro-F1 weighs most right): not clearly better"),
    (0, None, "balanced accuracy", "more of the ones balanced accuracy weighs most right): not clearly better"),
])
def test_a_lead_the_default_kept_its_place_against_is_named_with_its_interval(labels, decisions, metric, expected):
    from warmstart.autopilot.verdict import leader_sentence

    g = {"a": "MiniLM, LP-FT", "gap": 3.1, "low": -8.0, "high": 14.3, "labels": labels}
    said = leader_sentence(g, 32, decisions, metric)
    assert said.startswith("MiniLM, LP-FT scored 3.1 points higher out of fold (95% interval -8.0 to +14.3")
    assert expected in said and said.endswith("so the default is kept.")


@pytest.mark.parametrize("texts, said", [(["a", "b", "c"], ""),
                                         (["a", "A ", "b", "c"], " (3 different texts: a text's copies share a fold)")])
def test_the_protocol_line_says_how_many_different_texts_the_labels_hold(texts, said):
    import numpy as np

    from warmstart.autopilot.crossval import Labelled
    from warmstart.data.sample import copies_said

    n = len(texts)
    assert copies_said(Labelled(texts, np.zeros(n, dtype=int), ["x"], np.zeros(n, dtype=int)).groups) == said
