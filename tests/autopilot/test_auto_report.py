"""autopilot/report.py: the summary, the page and the model card auto writes from its verdict."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("comparisons, expected, not_said", [
    ({}, "leans optimistic", "not picked for being the highest"),  # the best out-of-fold score was refitted
    ({"leader": {"a": "MiniLM, LP-FT", "gap": 3.1}}, "not picked for being the highest", "leans optimistic"),
])
def test_the_pipelines_table_says_how_far_to_trust_the_chosen_figure(comparisons, expected, not_said):
    from warmstart.autopilot.report import selection_note

    note = selection_note({"comparisons": comparisons})
    assert expected in note and not_said not in note and note.endswith("are the sober reading.")


@pytest.mark.parametrize("pooling, snippet, tagged", [("mean", True, False), ("cls_token", True, False),
                                                      ("cls", False, True)])
def test_the_model_card_says_how_to_use_the_folder_as_it_was_fitted(pooling, snippet, tagged):
    """auto's card: the transformers-only lines for a pooled head (tests/tasks/test_card.py runs them), and the
    hub's text-classification tag only where the plain forward is the fitted model."""
    from warmstart.autopilot.report import model_card

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
    from warmstart.autopilot.report import model_card, page, summary, test_figure

    result = {**CARD_RESULT, "chosen": {**CARD_RESULT["chosen"], **chosen, "folder": "m"}, "sentences": [],
              "more_labels": "", "skipped": [], "pipelines": [], "candidates": [], "unlabelled": {},
              "comparisons": {}, "curve": [], "wall_min": 1, "budget_min": 2}
    assert test_figure(result).endswith(said)
    assert said in summary(result) and said in model_card(result)
    assert said.split(";")[0] in page(result)


@pytest.mark.parametrize("share, said", [
    (90.0, "90.0% accuracy (always answering 'pos' would score 89.0%; the model found 3 of the 11 'neg' test rows)"),
    (55.0, "90.0% accuracy (always answering 'pos' would score 89.0%)"),  # balanced: the rare class is not the point
])
def test_the_test_line_sets_the_score_beside_the_majority_and_the_rare_class_found(share, said):
    from warmstart.autopilot.report import test_figure

    result = {**CARD_RESULT, "majority": {"class": "pos", "share": share, "test_share": 89.0, "rare_class": "neg"},
              "chosen": {**CARD_RESULT["chosen"], "test_score": 0.9, "test_size": 100, "test_rare": 11,
                         "test_rare_found": 3}}
    assert test_figure(result) == said


def test_a_balanced_run_sets_accuracy_beside_its_test_figure_and_the_rival_both_ways():
    from warmstart.autopilot.report import test_figure

    result = {**CARD_RESULT, "metric": "balanced accuracy",
              "majority": {"class": "pos", "share": 85.0, "test_share": 85.0, "rare_class": "neg"},
              "chosen": {**CARD_RESULT["chosen"], "test_score": 0.7, "test_accuracy": 0.8, "test_size": 100,
                         "test_rare": 15, "test_rare_found": 9}}
    assert test_figure(result) == ("70.0% balanced accuracy, 80.0% accuracy (always answering 'pos' would score "
                                   "50.0% balanced, 85.0% accuracy; the model found 9 of the 15 'neg' test rows)")
