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
