import math

import numpy as np
import pytest
import torch

from warmstart.select.transferability import hscore, log_evidence, logme, maximise_evidence


def direct_log_evidence(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """The paper's definition written out: y ~ N(0, I/beta + F F^T / alpha)."""
    n = len(y)
    cov = torch.eye(n, dtype=torch.float64) / beta + torch.as_tensor(f @ f.T) / alpha
    return float(torch.distributions.MultivariateNormal(torch.zeros(n, dtype=torch.float64), cov)
                 .log_prob(torch.as_tensor(y)))


@pytest.mark.parametrize("n, d", [(40, 5), (12, 30)])  # more examples than features, and fewer
def test_log_evidence_equals_the_gaussian_marginal(n, d):
    rng = np.random.default_rng(0)
    f, y = rng.normal(size=(n, d)), rng.normal(size=n)
    for alpha, beta in ((1.0, 1.0), (0.3, 5.0), (20.0, 0.1)):
        assert log_evidence(f, y, alpha, beta) == pytest.approx(direct_log_evidence(f, y, alpha, beta), rel=1e-9)


def test_the_fixed_point_maximises_the_evidence():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(60, 8))
    y = f @ rng.normal(size=8) + 0.5 * rng.normal(size=60)
    alpha, beta = maximise_evidence(f, y)
    best = log_evidence(f, y, alpha, beta)
    for a, b in ((alpha * 1.3, beta), (alpha / 1.3, beta), (alpha, beta * 1.3), (alpha, beta / 1.3)):
        assert log_evidence(f, y, a, b) < best


def test_logme_prefers_features_that_carry_the_labels():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, size=300)
    informative = np.eye(3)[labels] + 0.3 * rng.normal(size=(300, 3))
    noise = rng.normal(size=(300, 3))
    assert logme(np.hstack([informative, noise]), labels) > logme(np.hstack([noise, rng.normal(size=(300, 3))]), labels)


def test_hscore_hand_values():
    labels = np.array([0, 0, 1, 1])
    assert hscore(np.array([[0.0], [0.0], [2.0], [2.0]]), labels) == pytest.approx(1.0)  # all variance is class
    # total variance 1.25, between-class variance 1: H = 0.8
    assert hscore(np.array([[0.0], [1.0], [2.0], [3.0]]), labels) == pytest.approx(0.8)
    # at most (classes - 1); shrinkage keeps it below the maximum when examples are fewer than dimensions
    two = np.array([[0.0, 0.0], [0.0, 1.0], [2.0, 2.0], [2.0, 3.0]])
    assert 0.8 <= hscore(two, labels) <= 1.0
    rng = np.random.default_rng(3)
    few = rng.normal(size=(20, 64))  # noise, 20 examples in 64 dimensions: the plain inverse would give 1.0
    assert hscore(few, np.arange(20) % 2) < 0.5
    assert not math.isnan(hscore(np.zeros((4, 2)), labels))


def test_sets_of_labels_score_label_by_label():
    """(N, L) 0/1 sets: LogME and H-score are the means over the labels that occur, each read as has it / has it
    not; one label a row reads the same either way."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, size=200)
    f = np.eye(3)[labels] + 0.3 * rng.normal(size=(200, 3))
    onehot = np.eye(3)[labels]
    assert logme(f, onehot) == pytest.approx(logme(f, labels), rel=1e-9)
    sets = np.concatenate([onehot, np.zeros((200, 1))], 1)  # a label nobody has is left out
    assert logme(f, sets) == pytest.approx(logme(f, labels), rel=1e-9)
    per_label = np.mean([hscore(f, onehot[:, j].astype(int)) for j in range(3)])
    assert hscore(f, sets) == pytest.approx(per_label, rel=1e-9)
    assert logme(f, sets) > logme(rng.normal(size=(200, 3)), sets)
