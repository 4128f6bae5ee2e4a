import numpy as np
import pytest
import torch

from warmstart.models.probe import OFFSETS, choose_c_and_offset, fit_logistic, knn_accuracy, micro_f1


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


@pytest.mark.parametrize("pred, y, expect", [
    ([[1, 0], [0, 1]], [[1, 0], [0, 1]], 1.0),
    ([[0, 0], [0, 0]], [[0, 0], [0, 0]], 0.0),  # neither side has a label: 0 (zero_division=0)
    ([[0, 0], [0, 0]], [[1, 0], [0, 0]], 0.0),  # nothing predicted
    ([[1, 1], [1, 1]], [[0, 0], [0, 0]], 0.0),  # nothing true
    ([[1, 1], [0, 0]], [[1, 0], [0, 1]], 0.5),  # tp 1, predicted 2, actual 2
    ([[1, 0, 1]], [[1, 1, 1]], 0.8),
])
def test_micro_f1_of_sets_of_labels(pred, y, expect):
    from sklearn.metrics import f1_score

    assert micro_f1(np.array(pred), np.array(y)) == pytest.approx(expect)
    assert micro_f1(np.array(pred), np.array(y)) == pytest.approx(
        f1_score(np.array(y), np.array(pred), average="micro", zero_division=0))


@pytest.mark.parametrize("seed, n, labels, rate", [(0, 24, 2, 0.5), (1, 60, 5, 0.1), (2, 7, 3, 0.02), (3, 40, 4, 0.0)])
def test_the_offset_and_c_are_sklearns_first_best_micro_f1(seed, n, labels, rate):
    """choose_c_and_offset scores every offset at once; its choice is the first best of sklearn's f1_score over
    the Cs in order and the offsets nearest 0 first (the rule it replaced, call by call)."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    truth = (rng.random((n, labels)) < rate).astype(int)
    held = {c: rng.normal(-1, 2, (n, labels)).round(1) for c in (0.1, 0.01, 1.0)}  # rounded: ties happen
    choices = [(c, o) for c in sorted(held) for o in sorted(OFFSETS, key=abs)]
    scores = [f1_score(truth, held[c] > o, average="micro", zero_division=0) for c, o in choices]
    best = int(np.argmax(scores))
    assert choose_c_and_offset(truth, held) == pytest.approx((*choices[best], scores[best]))
    assert choose_c_and_offset(truth, {}, fallback=0.3) == (0.3, 0.0, None)


@pytest.mark.parametrize("seed, n, classes", [(0, 30, 2), (1, 50, 3), (2, 9, 4)])
def test_balanced_accuracy_and_class_weights_are_sklearns(seed, n, classes):
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.utils.class_weight import compute_class_weight

    from warmstart.models.probe import balanced_accuracy, class_weights

    rng = np.random.default_rng(seed)
    y = rng.choice(classes, size=n, p=np.linspace(1, 3, classes) / np.linspace(1, 3, classes).sum())
    pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, classes, n))
    assert balanced_accuracy(y, pred) == pytest.approx(balanced_accuracy_score(y, pred))
    present = np.unique(y)
    assert class_weights(y, classes)[present] == pytest.approx(compute_class_weight("balanced", classes=present, y=y))
    assert class_weights(np.array([0, 0, 2]), 4).tolist() == [0.75, 0.0, 1.5, 0.0]  # absent classes weigh nothing


def test_a_balanced_probe_finds_the_rare_class_an_unweighted_one_gives_up_on():
    """54 / 6 labels whose classes overlap: the plain probe's cross-validated accuracy is highest answering the
    common class (almost) always; weighing the classes alike (either way) and choosing C by balanced accuracy finds
    the rare one. Adjusted, the head's biases are the plain fit's minus the classes' log shares."""
    from warmstart.models.probe import balanced_accuracy, fit_logistic, fit_logistic_cv

    rng = np.random.default_rng(0)
    y = np.array([0] * 54 + [1] * 6)
    x = rng.normal(size=(60, 5)) + y[:, None] * 1.2
    test_y = np.array([0] * 500 + [1] * 500)
    test_x = rng.normal(size=(1000, 5)) + test_y[:, None] * 1.2
    found = {}
    for balance in ("none", "weighted", "adjusted"):
        fit = fit_logistic_cv(x, y, 0, balance=balance)
        pred = fit["classes"][(test_x @ fit["weight"].T + fit["bias"]).argmax(1)]
        found[balance] = balanced_accuracy(test_y, pred)
    assert found["weighted"] > found["none"] + 0.1 and found["adjusted"] > found["none"] + 0.1
    assert min(found["weighted"], found["adjusted"]) > 0.7
    plain = fit_logistic(x, y, test_x, test_y, 0, cs=(0.1,))
    adjusted = fit_logistic(x, y, test_x, test_y, 0, cs=(0.1,), balance="adjusted")
    assert np.allclose(adjusted["weight"], plain["weight"])
    assert np.allclose(adjusted["bias"], plain["bias"] - np.log([0.9, 0.1]))
