"""autopilot/intervals.py: the scores, intervals and paired gaps that auto's choices and verdict read."""

import numpy as np
import pytest

from warmstart.autopilot.intervals import interval, paired_gap, wilson
from warmstart.models.probe import micro_f1


@pytest.mark.parametrize("a,b,verdict", [
    ([1] * 40, [0] * 20 + [1] * 20, "better"),    # a right everywhere, b on half
    ([0] * 20 + [1] * 20, [1] * 40, "worse"),
    ([1, 0] * 20, [0, 1] * 20, "not clearly different"),
    ([1, 0] * 20, [1, 0] * 20, "the same"),       # no difference anywhere: no interval to read
])
def test_paired_gaps_say_what_the_interval_carries(a, b, verdict):
    y = np.ones(40, dtype=int)
    g = paired_gap(np.array(a), np.array(b), y)
    assert g["verdict"] == verdict and g["low"] <= g["gap"] <= g["high"]


def test_the_wilson_interval_stays_inside_0_and_1():
    low, high = wilson(10, 10)
    assert 0.6 < low < 1.0 and high == pytest.approx(1.0)
    low, high = wilson(0, 5)
    assert low == pytest.approx(0.0) and 0 < high < 0.6


@pytest.mark.parametrize("wrong_a, wrong_b, verdict", [
    (0, 30, "better"),  # a right everywhere, b misses every label of 30 texts
    (30, 0, "worse"),
    (2, 3, "not clearly different"),
    (5, None, "the same"),  # the same predictions: no interval to read
])
def test_paired_gaps_of_micro_f1_come_from_a_paired_bootstrap(wrong_a, wrong_b, verdict):
    y = np.tile([[1, 0], [0, 1], [1, 1]], (20, 1))  # 60 texts, 80 labels
    a = y.copy()
    a[:wrong_a] = 0  # the first texts' labels missed
    b = a.copy() if wrong_b is None else y.copy()
    if wrong_b:
        b[-wrong_b:] = 0  # the last ones'
    g = paired_gap(a, b, y)
    assert g["verdict"] == verdict and g["low"] <= g["gap"] <= g["high"]
    assert g["gap"] == pytest.approx(100 * (micro_f1(a, y) - micro_f1(b, y)), abs=0.06)


def test_a_micro_f1_interval_holds_its_figure_and_stays_inside_0_and_1():
    y = np.tile([[1, 0], [0, 1], [1, 1]], (10, 1))
    pred = y.copy()
    pred[:6] = 0
    low, high = interval(pred, y)
    assert 0 <= low < micro_f1(pred, y) < high <= 1
    assert interval(y, y) == (1.0, 1.0)


def test_balanced_scores_gaps_and_intervals_weigh_every_class_alike():
    """108 / 12 labels: a pipeline that answers the common class to everything scores 90% accuracy but 50%
    balanced accuracy; one that finds 10 of the 12 rare labels at the cost of 14 common ones is worse in accuracy
    and better balanced, and the paired gap is the balanced accuracies' difference."""
    from sklearn.metrics import balanced_accuracy_score

    from warmstart.autopilot.intervals import example_weights, score

    y = np.array([0] * 108 + [1] * 12)
    majority = np.zeros(120, dtype=int)
    finder = y.copy()
    finder[:14], finder[-2:] = 1, 0
    assert score(majority, y) == pytest.approx(0.9) and score(majority, y, balanced=True) == pytest.approx(0.5)
    assert score(finder, y, balanced=True) == pytest.approx(balanced_accuracy_score(y, finder))
    assert example_weights(y).mean() == pytest.approx(1.0) and example_weights(y)[-1] == pytest.approx(5.0)
    plain, balanced = paired_gap(finder, majority, y), paired_gap(finder, majority, y, balanced=True)
    assert plain["gap"] < 0 and balanced["verdict"] == "better"
    assert balanced["gap"] == pytest.approx(100 * (score(finder, y, True) - 0.5), abs=0.05)
    low, high = interval(finder, y, balanced=True)
    assert low < score(finder, y, True) < high
    # equal classes: the effective count is N, so the balanced interval is the plain one
    even = np.array([0, 1] * 20)
    guess = np.array([0, 1] * 15 + [1, 0] * 5)
    assert interval(guess, even, balanced=True) == pytest.approx(interval(guess, even))
