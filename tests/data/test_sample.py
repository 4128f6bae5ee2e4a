"""data/sample.py's balanced draw: N spread evenly over the classes (SetFit's 'N per class')."""

import numpy as np
import pytest

from warmstart.data.sample import draw, draw_balanced
from warmstart.errors import WarmstartError


@pytest.mark.parametrize("n, want", [(16, [8, 8]), (7, [4, 3]), (None, [70, 30])])
def test_balanced_draw_spreads_the_labels_evenly(n, want):
    y = np.array([0] * 70 + [1] * 30)
    rows = draw_balanced(y, n, seed=3)
    assert np.bincount(y[rows]).tolist() == want
    assert len(set(rows.tolist())) == len(rows) and (np.diff(rows) > 0).all()
    assert (rows == draw_balanced(y, n, seed=3)).all()


def test_balanced_draw_varies_with_the_seed_and_refuses_too_few():
    y = np.array([0, 1] * 50)
    assert not (draw_balanced(y, 10, 0) == draw_balanced(y, 10, 1)).all()
    with pytest.raises(WarmstartError, match="fewer than the 2 classes"):
        draw_balanced(y, 1, 0)


@pytest.mark.parametrize("drawn, n, warned", [
    (lambda y, n: draw(len(y), n, 0, y), 150, "data.labels: 150 asked for, but only 100 can be drawn; all 100 are used"),
    (lambda y, n: draw(len(y), n, 0, y), 100, None),
    (lambda y, n: draw(len(y), n, 0, y), None, None),
    (lambda y, n: draw_balanced(y, n, 0), 200, "data.labels: 200 asked for, but only 100 can be drawn; all 100 are used"),
    # 40 a class asked, the second class has 30: 70 in all
    (lambda y, n: draw_balanced(y, n, 0), 80, "80 asked for, but only 70 can be drawn (a class has fewer than its even share)"),
    (lambda y, n: draw_balanced(y, n, 0), 60, None),
])
def test_a_sample_smaller_than_asked_says_so(capsys, drawn, n, warned):
    """metrics.json counts the labels used; a user who asked for more than there are is told before the run."""
    y = np.array([0] * 70 + [1] * 30)
    rows = drawn(y, n)
    err = capsys.readouterr().err
    assert (warned in err) if warned else err == ""
    assert len(rows) == min(n or 100, 70 if n == 80 else 100)


@pytest.mark.parametrize("n, k, rates, seed", [
    (50, 5, [0.06, 0.1, 0.2, 0.3, 0.5, 0.02], 0),  # WNUT-like: labels on 2 to 50 percent of the texts
    (37, 3, [0.5, 0.1], 1),  # N not a multiple of k
    (20, 2, [0.0, 0.3], 2),  # a label no text has
    (40, 4, [0.9, 0.9, 0.05], 3),  # labels on nearly every text
])
def test_iterative_folds_spread_every_label_and_the_items_evenly(n, k, rates, seed):
    """Iterative stratification: each label's items split over the folds as evenly as its count allows (plain
    k-fold put 0 to 5 of a 13-text label in a fold of 10 on the first case), the folds N/k items each."""
    from warmstart.data.sample import iterative_folds

    y = (np.random.default_rng(seed).random((n, len(rates))) < np.array(rates)).astype(int)
    folds = iterative_folds(y, k, seed)
    assert folds.shape == (n,) and set(folds) == set(range(k))
    sizes = np.bincount(folds, minlength=k)
    assert sizes.max() - sizes.min() <= 1
    for j in range(y.shape[1]):
        spread = np.bincount(folds[y[:, j] == 1], minlength=k)
        assert spread.max() - spread.min() <= 1, (j, spread)
    assert (iterative_folds(y, k, seed) == folds).all()  # seeded
