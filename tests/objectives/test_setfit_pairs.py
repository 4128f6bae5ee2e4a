"""SetFit's pairs and loss (objectives/setfit.py): counts, classes and targets, seeds, the loss's values."""

import numpy as np
import pytest
import torch

from warmstart.objectives.setfit import contrastive_pairs, cosine_similarity_loss


@pytest.mark.parametrize("labels, iterations", [
    ([0, 1] * 4, 20),        # 8 per class... 4 per class, binary
    ([0, 0, 0, 1, 2, 2], 3),  # unbalanced, three classes
    ([1, 0], 1),             # one of each: the only positives are self-pairs
])
def test_pairs_count_targets_and_rows(labels, iterations):
    y = np.array(labels)
    pairs = contrastive_pairs(y, iterations, seed=0)
    n = len(y)
    assert pairs.shape == (2 * iterations * n, 3)  # setfit's num_iterations * N positives and as many negatives
    assert ((pairs[:, :2] >= 0) & (pairs[:, :2] < n)).all()  # only the labelled rows
    assert (pairs[:, 2] == (y[pairs[:, 0]] == y[pairs[:, 1]])).all()  # target 1 iff same class
    assert (pairs[0::2, 2] == 1).all() and (pairs[1::2, 2] == 0).all()  # interleaved, as setfit yields them


def test_pairs_follow_the_seed_and_cover_the_unique_pairs():
    y = np.array([0, 1] * 5)
    a, b = contrastive_pairs(y, 20, 0), contrastive_pairs(y, 20, 1)
    assert (a == contrastive_pairs(y, 20, 0)).all() and not (a == b).all()
    unique = {tuple(sorted(p[:2])) for p in a}
    assert len(unique) == 55  # all 10*11/2 pairs with replacement appear when 20 iterations cycle through them


def test_one_class_gives_positives_only():
    pairs = contrastive_pairs(np.zeros(3, dtype=int), 2, 0)
    assert len(pairs) == 6 and (pairs[:, 2] == 1).all()


@pytest.mark.parametrize("u, v, target, want", [
    ([[1.0, 0.0]], [[2.0, 0.0]], [1.0], 0.0),   # same direction, same class: nothing to learn
    ([[1.0, 0.0]], [[0.0, 3.0]], [0.0], 0.0),   # orthogonal, other class: cos 0 is the target
    ([[1.0, 0.0]], [[-1.0, 0.0]], [0.0], 1.0),  # opposite: (−1 − 0)² = 1
    ([[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], [0.0, 1.0], 1.0),  # mean of 1 and 1
])
def test_cosine_similarity_loss(u, v, target, want):
    loss = cosine_similarity_loss(torch.tensor(u), torch.tensor(v), torch.tensor(target))
    assert loss.item() == pytest.approx(want)
