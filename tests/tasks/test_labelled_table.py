"""tasks/labelled_table.py: test rows that repeat a labelled text are counted and scored apart."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from warmstart.tasks.labelled_table import unseen_scores


@pytest.mark.parametrize("test_texts, pairs, want", [
    (["new a", "new b", "new c", "new d"], False, {}),
    (["Seen  ONE", "new b", "new c", "seen two"], False,
     {"test_repeats": 2, "accuracy_unseen": 0.5}),  # rows 1-2: one right of two
    (["seen one", "seen two", "SEEN ONE", "seen two"], False, {"test_repeats": 4, "accuracy_unseen": None}),
    (["seen one", "new b", "new c", "new d"], True, {}),  # a pair repeats only when both sides do
])
def test_repeated_test_rows_are_counted_and_the_rest_scored_alone(test_texts, pairs, want, capsys):
    labelled = pd.DataFrame({"text": ["seen one", "seen two", "seen three"], "label": [0, 1, 0]})
    test = pd.DataFrame({"text": test_texts, "label": [0, 1, 0, 1]})
    if pairs:
        labelled["text_pair"], test["text_pair"] = ["x", "y", "z"], ["other", "y", "z", "w"]
    got = unseen_scores(labelled, test, accuracy_score, test["label"].to_numpy(), np.array([0, 1, 1, 1]),
                        "accuracy")
    assert got == want
    err = capsys.readouterr().err
    assert (f"{want['test_repeats']} of the 4 test rows repeat a text" in err) if want else err == ""


def test_quiet_leaves_the_note_to_the_caller(capsys):
    labelled = pd.DataFrame({"text": ["a"], "label": [0]})
    got = unseen_scores(labelled, labelled, accuracy_score, np.array([0]), np.array([0]), "accuracy", quiet=True)
    assert got == {"test_repeats": 1, "accuracy_unseen": None} and capsys.readouterr().err == ""
