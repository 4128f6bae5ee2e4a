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


@pytest.mark.parametrize("labels, expected", [
    (3, "3 more of your 64 label decisions (your 32 texts, each label yes or no) right"),
    (-5, "5 fewer of your 64 label decisions (your 32 texts, each label yes or no) right, but more of the ones "
         "micro-F1 counts"),  # micro-F1 ignores the labels rightly left off
])
def test_for_sets_of_labels_the_margin_counts_label_decisions(labels, expected):
    from warmstart.autopilot.verdict import runner_up_sentence

    gap = {"b": "MiniLM, SetFit (warmstart)", "gap": 2.1, "low": -7.3, "high": 10.4,
           "verdict": "not clearly different", "labels": labels}
    assert expected in runner_up_sentence(gap, 32, 64)


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


@pytest.mark.parametrize("labels, decisions, expected", [
    (1, None, "1 more of your 32 labels right): not clearly better"),
    (-2, 64, "more of the decisions micro-F1 counts right): not clearly better"),
])
def test_a_lead_the_default_kept_its_place_against_is_named_with_its_interval(labels, decisions, expected):
    from warmstart.autopilot.verdict import leader_sentence

    g = {"a": "MiniLM, LP-FT", "gap": 3.1, "low": -8.0, "high": 14.3, "labels": labels}
    said = leader_sentence(g, 32, decisions)
    assert said.startswith("MiniLM, LP-FT scored 3.1 points higher out of fold (95% interval -8.0 to +14.3")
    assert expected in said and said.endswith("so the default is kept.")


@pytest.mark.parametrize("comparisons, expected, not_said", [
    ({}, "leans optimistic", "not picked for being the highest"),  # the best out-of-fold score was refitted
    ({"leader": {"a": "MiniLM, LP-FT", "gap": 3.1}}, "not picked for being the highest", "leans optimistic"),
])
def test_the_pipelines_table_says_how_far_to_trust_the_chosen_figure(comparisons, expected, not_said):
    from warmstart.autopilot.verdict import selection_note

    note = selection_note({"comparisons": comparisons})
    assert expected in note and not_said not in note and note.endswith("are the sober reading.")


@pytest.mark.parametrize("pooling, snippet, tagged", [("mean", True, False), ("cls_token", True, False),
                                                      ("cls", False, True)])
def test_the_model_card_says_how_to_use_the_folder_as_it_was_fitted(pooling, snippet, tagged):
    """auto's card: the transformers-only lines for a pooled head (tests/tasks/test_card.py runs them), and the
    hub's text-classification tag only where the plain forward is the fitted model."""
    from warmstart.autopilot.verdict import model_card

    card = model_card(CARD_RESULT, pooling, max_length=12)
    assert ("```python" in card) == snippet and ("pipeline_tag: text-classification" in card) == tagged
    assert "max_length=12" in card if snippet else "the same predictions" in card
    assert "SentenceTransformer(THIS_FOLDER)" in card and "80.0%" in card


CARD_RESULT = {"labels": 20, "classes": ["neg", "pos"], "protocol": "20 labels, 2-fold cross-validation",
               "chosen": {"name": "tiny, SetFit (warmstart)", "encoder_folder": "tiny", "score": 80.0,
                          "low": 60.0, "high": 90.0}}


@pytest.mark.parametrize("chosen, said", [
    ({"test_score": 0.8, "test_size": 50}, "80.0% accuracy"),
    ({"test_score": 0.8, "test_size": 50, "test_repeats": 10, "test_unseen_score": 0.75},
     "80.0% accuracy; 10 of the 50 test rows repeat one of your labelled texts, which the model was fitted on: "
     "75.0% accuracy on the other 40"),
    ({"test_score": 1.0, "test_size": 4, "test_repeats": 4, "test_unseen_score": None}, "none is new"),
])
def test_test_rows_that_repeat_a_labelled_text_are_scored_apart(chosen, said):
    """A test row that repeats a text the model was fitted on measures memory: the summary, the page and the
    card say how many there are and the score without them."""
    from warmstart.autopilot.verdict import model_card, page, summary, test_figure

    result = {**CARD_RESULT, "chosen": {**CARD_RESULT["chosen"], **chosen, "folder": "m"}, "sentences": [],
              "more_labels": "", "skipped": [], "pipelines": [], "candidates": [], "unlabelled": {},
              "comparisons": {}, "curve": [], "wall_min": 1, "budget_min": 2}
    assert test_figure(result).endswith(said)
    assert said in summary(result) and said in model_card(result)
    assert said.split(";")[0] in page(result)


@pytest.mark.parametrize("texts, said", [(["a", "b", "c"], ""),
                                         (["a", "A ", "b", "c"], " (3 different texts: a text's copies share a fold)")])
def test_the_protocol_line_says_how_many_different_texts_the_labels_hold(texts, said):
    import numpy as np

    from warmstart.autopilot.crossval import Labelled
    from warmstart.data.sample import copies_said

    n = len(texts)
    assert copies_said(Labelled(texts, np.zeros(n, dtype=int), ["x"], np.zeros(n, dtype=int)).groups) == said


@pytest.mark.parametrize("share, said", [
    (90.0, "90.0% accuracy (always answering 'pos' would score 89.0%; the model found 3 of the 11 'neg' test rows)"),
    (55.0, "90.0% accuracy (always answering 'pos' would score 89.0%)"),  # balanced: the rare class is not the point
])
def test_the_test_line_sets_the_score_beside_the_majority_and_the_rare_class_found(share, said):
    from warmstart.autopilot.verdict import test_figure

    result = {**CARD_RESULT, "majority": {"class": "pos", "share": share, "test_share": 89.0, "rare_class": "neg"},
              "chosen": {**CARD_RESULT["chosen"], "test_score": 0.9, "test_size": 100, "test_rare": 11,
                         "test_rare_found": 3}}
    assert test_figure(result) == said
