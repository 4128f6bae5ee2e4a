import numpy as np
import torch

from warmstart.models.probe import fit_logistic, knn_accuracy


def test_knn_accuracy_on_separable_clusters():
    gen = torch.Generator().manual_seed(0)
    centres = torch.eye(4) * 10
    labels = torch.arange(4).repeat(25)
    train = centres[labels] + torch.randn(100, 4, generator=gen)
    test_labels = torch.arange(4).repeat(5)
    test = centres[test_labels] + torch.randn(20, 4, generator=gen)
    assert knn_accuracy(train, labels, test, test_labels, k=5) == 1.0
    assert knn_accuracy(train, labels, test, (test_labels + 1) % 4, k=5) == 0.0


def test_knn_votes_by_similarity():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.05]])
    # two class-1 neighbours far away lose to one class-0 neighbour right on top at a low temperature
    assert knn_accuracy(train, labels, query, torch.tensor([0]), k=3, temperature=0.05) == 1.0


def test_fit_logistic_folds_the_standardisation_into_the_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * [1, 10, 100, 1, 1] + 3
    y = (x[:, 0] + x[:, 1] / 10 > 3.5).astype(int)
    fit = fit_logistic(x[:150], y[:150], x[150:], y[150:], seed=0)
    assert fit["weight"].shape == (2, 5) and fit["val_accuracy"] > 0.9
    pred = (x[150:] @ fit["weight"].T + fit["bias"]).argmax(1)
    assert (pred == y[150:]).mean() == fit["val_accuracy"]


def test_a_feature_nearly_constant_in_training_cannot_swamp_test_predictions():
    """A border pixel that is 0 in all training images but one still gets a (tiny) weight; divided by its
    tiny std it would outvote every real feature wherever a test image lights it up. With the std floored,
    the predictions still follow the informative feature."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    informative = y + rng.normal(0, 0.3, 100)
    rare = np.zeros(100)
    rare[0] = 1e-3  # active once, in a class-0 image
    x = np.stack([informative, rare], 1)
    fit = fit_logistic(x, y, x, y, seed=0, cs=(1.0,))
    test = np.stack([np.array([0.0, 1.0]), np.ones(2)], 1)  # one image of each class, the rare pixel lit
    pred = fit["classes"][(test @ fit["weight"].T + fit["bias"]).argmax(1)]
    assert list(pred) == [0, 1]
