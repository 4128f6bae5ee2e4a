"""autopilot/majority.py: the most-frequent-class rival, out of fold, and what the verdict says of it."""

import numpy as np
import pytest

from warmstart.autopilot.intervals import paired_gap
from warmstart.autopilot.majority import facts, oof_majority, sentence


def test_each_held_out_row_gets_its_training_folds_most_frequent_class():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    folds = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    # fold 0 held out: trained on rows 1,3,5,7 -> classes 0,1,1,2 -> 1; fold 1 held out: rows 0,2,4,6 -> 0,0,1,1 -> 0
    assert oof_majority(y, folds).tolist() == [1, 0, 1, 0, 1, 0, 1, 0]


def test_facts_name_the_top_class_its_shares_and_the_rare_class_found():
    y = np.array([1] * 9 + [0] * 3)
    pred = np.array([1] * 9 + [0, 1, 1])
    said = facts(y, ["neg", "pos"], pred, np.array([1, 1, 1, 0]))
    assert said == {"class": "pos", "share": 75.0, "count": 9, "rare_class": "neg", "rare_count": 3,
                    "rare_found": 1, "test_share": 75.0}
    assert "test_share" not in facts(y, ["neg", "pos"], pred, np.zeros(0, dtype=int))


@pytest.mark.parametrize("n, learned, share, said", [
    (20, False, 90, ": not better than it; out of fold it found 0 of your 2 'neg' labels. Plainly"),  # answers 'pos'
    (100, True, 90, ": better than it; out of fold it found 10 of your 10 'neg' labels."),  # skewed: said when better
    (20, True, 50, None),  # balanced and clearly better: nothing to say
])
def test_the_majority_line_is_said_where_it_matters(n, learned, share, said):
    y = np.array([1] * (n * share // 100) + [0] * (n - n * share // 100))
    floor = np.ones(n, dtype=int)
    pred = y.copy() if learned else floor.copy()
    got = sentence(paired_gap(pred, floor, y), facts(y, ["neg", "pos"], pred, np.zeros(0, dtype=int)), n)
    if said is None:
        assert got is None
    else:
        assert said in got and f"Against always answering 'pos' (the most frequent class, {n * share // 100} of " \
                               f"your {n} labels)" in got


@pytest.mark.parametrize("found, balanced, remedy", [
    (0, False, True),   # accuracy on a skewed table, the rare class missed: the remedy is named
    (2, False, False),  # half of it found: the metric is not the problem
    (0, True, False),   # the run already weighs the classes alike
])
def test_a_skewed_table_scored_by_accuracy_is_told_of_balanced_accuracy(found, balanced, remedy):
    y = np.array([1] * 36 + [0] * 4)
    floor = np.ones(40, dtype=int)
    pred = floor.copy()
    pred[36:36 + found] = 0
    said = facts(y, ["neg", "pos"], pred, np.zeros(0, dtype=int))
    got = sentence(paired_gap(pred, floor, y, balanced), said, 40, balanced)
    assert ("run again with --metric balanced_accuracy" in got) == remedy
    assert got.startswith("Against always answering 'pos'")
