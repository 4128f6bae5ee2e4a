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


# ---------------------------------------------------------------- repeated texts: copies on one side of a split
@pytest.mark.parametrize("texts, want", [
    (["a film", "b film", "c"], None),  # all different: callers split exactly as before
    (["A  film", "a film ", "b"], [0, 0, 1]),  # case and runs of whitespace folded
    (["x", "y", "x", "x"], [0, 1, 0, 0]),
    ([("q", "a"), ("q", "b"), ("Q", "a")], [0, 1, 0]),  # pairs: both sides must match
    ([("a b", "c"), ("a", "b c")], None),  # the pair's boundary counts
])
def test_text_groups_join_the_copies_of_a_text(texts, want):
    from warmstart.data.sample import text_groups

    got = text_groups(texts)
    assert (got is None) if want is None else got.tolist() == want


def _copies(n_texts: int, seed: int, sets: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(y, groups) of n_texts texts, each repeated 1-4 times, with random labels (sets: (N, 3) 0/1)"""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_texts), rng.integers(1, 5, n_texts))
    base = (rng.random((n_texts, 3)) < 0.4).astype(int) if sets else rng.integers(0, 2, n_texts)
    return base[groups], groups


@pytest.mark.parametrize("k, seed, sets", [(5, 0, False), (3, 1, False), (2, 2, False), (5, 3, True), (3, 4, True)])
def test_kfold_keeps_each_texts_copies_in_one_fold(k, seed, sets):
    from warmstart.data.sample import kfold

    y, groups = _copies(30, seed, sets)
    splits = kfold(y, k, seed, groups)
    assert len(splits) == k
    held = np.concatenate([h for _, h in splits])
    assert sorted(held.tolist()) == list(range(len(y)))  # every item held out once
    for kept, out in splits:
        assert not set(groups[kept]) & set(groups[out])
        assert sorted(np.concatenate([kept, out]).tolist()) == list(range(len(y)))
        if not sets:
            assert set(y[out]) == {0, 1}  # stratified over the groups: every fold holds both classes
    assert all((a == c).all() and (b == d).all() for (a, b), (c, d) in zip(splits, kfold(y, k, seed, groups),
                                                                             strict=True))


def test_kfold_without_groups_is_scikit_learns_own():
    """No repeated text: the folds every result so far was measured on."""
    from sklearn.model_selection import KFold, StratifiedKFold

    from warmstart.data.sample import kfold

    y = np.random.default_rng(0).integers(0, 3, 40)
    for (a, b), (c, d) in zip(kfold(y, 5, 7), StratifiedKFold(5, shuffle=True, random_state=7).split(y, y), strict=True):
        assert (a == c).all() and (b == d).all()
    sets = np.random.default_rng(1).integers(0, 2, (40, 3))
    for (a, b), (c, d) in zip(kfold(sets, 4, 7), KFold(4, shuffle=True, random_state=7).split(sets), strict=True):
        assert (a == c).all() and (b == d).all()


def test_most_folds_counts_a_texts_copies_once():
    from warmstart.data.sample import most_folds

    y = np.array([0, 0, 0, 1, 1, 1])
    assert most_folds(y, 5) == 3
    assert most_folds(y, 5, np.array([0, 0, 1, 2, 3, 4])) == 2  # class 0: two different texts
    assert most_folds(y, 5, np.array([0, 0, 0, 1, 2, 3])) == 1  # class 0: one text, three times
    assert most_folds(np.ones((6, 2)), 5, np.array([0, 0, 0, 1, 1, 2])) == 3


def test_iterative_folds_keep_each_texts_copies_in_one_fold():
    from warmstart.data.sample import iterative_folds

    y, groups = _copies(40, 5, sets=True)
    folds = iterative_folds(y, 4, 0, groups)
    assert set(folds) == set(range(4))
    assert all(len(set(folds[groups == g])) == 1 for g in set(groups))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holdout_of_classes_keeps_each_texts_copies_on_one_side(seed):
    from warmstart.data.sample import holdout

    y, groups = _copies(40, seed)
    kept, out = holdout(len(y), 0.2, seed, y, groups)
    assert not set(groups[kept]) & set(groups[out])
    assert sorted(np.concatenate([kept, out]).tolist()) == list(range(len(y)))
    assert set(y[out]) == {0, 1}  # still stratified
    assert 0.1 < len(set(groups[out])) / 40 < 0.3  # about a fifth of the texts
