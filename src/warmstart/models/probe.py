"""Evaluation on frozen features: a logistic-regression probe and weighted kNN accuracy.

Shared by fine-tuning (the `linear_probe` / `lp_ft` strategies fit their head here), image-encoder
evaluation, and later checkpoint ranking, so a "linear probe" means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

PROBE_CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """scikit-learn's accuracy_score without its input checks (about 1 ms a call, and the probe's cross-validation
    scores every fold x C: a tenth of a small auto run's time profiled)."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The mean over the classes present in y_true of each one's recall: scikit-learn's balanced_accuracy_score
    (adjusted=False), without its input checks. A model that answers one class to everything scores 1 / C."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def class_weights(y: np.ndarray, classes: int | None = None) -> np.ndarray:
    """(classes,) N / (C * n_c) for each class c among the C present in y (N,), 0 for one absent: scikit-learn's
    class_weight="balanced", under which every class weighs N / C in all."""
    counts = np.bincount(np.asarray(y), minlength=classes or 0)
    return np.where(counts > 0, len(y) / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)


def log_prior(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(K,) the log share of each of `classes` among y (N,): what logit adjustment subtracts."""
    return np.log(np.bincount(np.asarray(y))[classes] / len(y))


def decide(clf: LogisticRegression, x: np.ndarray, shift: np.ndarray | None) -> np.ndarray:
    """clf's predictions, or (`shift` (K,)) the argmax of its class scores minus shift (logit adjustment)."""
    if shift is None:
        return clf.predict(x)
    s = clf.decision_function(x)
    s = np.stack([np.zeros_like(s), s], axis=1) if s.ndim == 1 else s  # binary: class 1's logit over class 0's
    return clf.classes_[(s - shift).argmax(1)]


def fit_logistic(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, seed: int,
                 cs: tuple[float, ...] = PROBE_CS, score: Callable[[np.ndarray, np.ndarray], float] | None = None,
                 balance: str = "none") -> dict:
    """L2 logistic regression on standardised features (std floored), C picked on validation by `score(y_true, y_pred)`
    (default accuracy). `balance` (config CLASS_BALANCES: a skewed table whose classes should weigh alike; C then
    picked by balanced accuracy): "adjusted", post-hoc logit adjustment (Menon et al., 2021): the fit as usual,
    each class's log share among y_train subtracted from its score, the Bayes rule for balanced accuracy;
    "weighted", scikit-learn's class_weight="balanced". Why adjusted is auto's: on MiniLM features of skewed Rotten Tomatoes labels (5 seeds,
    benchmarks/results/class_balance.md) it scored 2 to 7 points of test balanced accuracy above weighting.

    Returns {"val_accuracy", "val_score", "C", "weight" (K, D), "bias" (K,), "classes"} with the
    standardisation (and the adjustment) folded into the weights (so `x @ weight.T + bias` scores raw features)
    and one row per class even for K = 2. The Cs are fitted in increasing order, each starting from the previous
    solution (warm start: the same optima, a fraction of the iterations)."""
    score = score or (accuracy if balance == "none" else balanced_accuracy)
    mu, sd = _standardisation(x_train)
    xt, xv = (x_train - mu) / sd, (x_val - mu) / sd
    clf = LogisticRegression(max_iter=2000, random_state=seed, warm_start=True, class_weight=_weighing(balance))
    shift = log_prior(y_train, np.unique(y_train)) if balance == "adjusted" else None
    best = None
    for c in sorted(cs):
        clf.set_params(C=c).fit(xt, y_train)
        pred = decide(clf, xv, shift)
        val = score(y_val, pred)
        if best is None or val > best[0]:
            best = (val, c, clf.coef_.copy(), clf.intercept_.copy(), accuracy(y_val, pred))
    val, c, coef, intercept, acc = best
    w, b = _raw_weights(coef, intercept, mu, sd)
    return {"val_accuracy": float(acc), "val_score": float(val), "C": c, "weight": w,
            "bias": b - shift if shift is not None else b, "classes": clf.classes_}


def _weighing(balance: str) -> str | None:
    """scikit-learn's class_weight: "balanced" weighs each example by N / (C * its class's count)."""
    return "balanced" if balance == "weighted" else None


def _standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per feature. A feature almost constant on a small training set (a border pixel, a rarely
    active unit) would be blown up by its tiny std wherever it is non-zero at test time: the std is floored at
    a tenth of the mean std (with 10 images per class, raw-pixel accuracy on Fashion-MNIST 66.9% -> 69.1%;
    dense features are untouched, their stds are all far above the floor)."""
    sd = x.std(0)
    return x.mean(0), np.maximum(sd, 0.1 * sd.mean()) + 1e-12


def _raw_weights(coef: np.ndarray, intercept: np.ndarray, mu: np.ndarray, sd: np.ndarray):
    """The standardisation folded into the weights, one row per class even for K = 2."""
    w, b = coef / sd, intercept - (coef / sd) @ mu
    if w.shape[0] == 1:  # binary: sklearn keeps one row; a classifier head has one per class
        w, b = np.concatenate([-w / 2, w / 2]), np.array([-b[0] / 2, b[0] / 2])
    return w, b


FALLBACK_C = 0.1  # when no fold can hold out an example of every class (a class with one example)


def fit_logistic_cv(x: np.ndarray, y: np.ndarray, seed: int, cs: tuple[float, ...] = PROBE_CS,
                    folds: int = 5, groups: np.ndarray | None = None, balance: str = "none") -> dict:
    """The same probe with C chosen inside the labels it is fitted on: stratified k-fold cross-validation
    (k = min(`folds`, the smallest class's count)), the C of best mean held-out accuracy, then one fit on all of
    them. What a run with N labels and no separate validation set may do (nothing outside the N chooses C).
    `groups` (data/sample.text_groups): the copies of a text stay in one fold (k counted in groups). `balance`:
    as fit_logistic's (C by the folds' mean balanced accuracy; each fold adjusted by its own training shares).
    -> fit_logistic's keys, `val_accuracy` being the cross-validated accuracy (None when no fold was possible)."""
    from warmstart.data.sample import kfold, most_folds

    y = np.asarray(y)
    k = most_folds(y, folds, groups)
    scores, measure = {c: [] for c in cs}, accuracy if balance == "none" else balanced_accuracy
    if k >= 2:
        for train_idx, val_idx in kfold(y, k, seed, groups):
            mu, sd = _standardisation(x[train_idx])
            clf = LogisticRegression(max_iter=2000, random_state=seed, warm_start=True, class_weight=_weighing(balance))
            shift = log_prior(y[train_idx], np.unique(y[train_idx])) if balance == "adjusted" else None
            for c in sorted(cs):
                clf.set_params(C=c).fit((x[train_idx] - mu) / sd, y[train_idx])
                scores[c].append(measure(y[val_idx], decide(clf, (x[val_idx] - mu) / sd, shift)))
        c = max(sorted(cs), key=lambda c: float(np.mean(scores[c])))  # ties: the smallest C, the simplest model
        cv = float(np.mean(scores[c]))
    else:
        c, cv = FALLBACK_C, None
    mu, sd = _standardisation(x)
    clf = LogisticRegression(max_iter=2000, random_state=seed, C=c, class_weight=_weighing(balance)).fit((x - mu) / sd, y)
    w, b = _raw_weights(clf.coef_, clf.intercept_, mu, sd)
    if balance == "adjusted":
        b = b - log_prior(y, clf.classes_)
    return {"val_accuracy": cv, "val_score": cv, "C": c, "weight": w, "bias": b, "classes": clf.classes_,
            "folds": k if k >= 2 else 0}


OFFSETS = np.linspace(-6.0, 2.0, 33)  # decision offsets on the logit scale: sigmoid(-6) = 0.0025 .. sigmoid(2) = 0.88


def fit_one_vs_rest(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None, y_val: np.ndarray | None,
                    seed: int, cs: tuple[float, ...] = PROBE_CS, folds: int = 5, groups: np.ndarray | None = None
                    ) -> dict:
    """The multi-label probe: one L2 logistic regression per label on standardised features (scikit-learn's
    OneVsRestClassifier, written out so that the weights land in a linear head, one row per label, and a label
    the N never or always show gets a constant score instead of an error). One C and one decision offset for all
    labels are chosen together by micro-F1: on validation, or, `x_val` None, on the out-of-fold scores of k-fold
    cross-validation inside the labels (k = min(`folds`, N)). The offset is folded into the biases, so the head's
    sigmoid at 0.5 is the decision (predict and HF's pipeline alike), its outputs being scores more than calibrated
    probabilities. Why: a label on a few percent of texts rarely reaches 0.5 after a regularised fit (WNUT-16's
    entity kinds, MiniLM, 200 labels, 3 seeds: test micro-F1 30.1 / 18.9 / 22.9 at 0.5, 29.0 / 27.9 / 32.4 with
    the offset; it did not help SetFit's head there: benchmarks/results/multi_label.md).
    y_*: (N, L) 0/1; `groups`: as fit_logistic_cv's. -> {"val_accuracy": the chosen micro-F1 (None without a
    fold), "C", "offset", "weight" (L, D), "bias" (L,)}"""
    from warmstart.data.sample import kfold, most_folds

    y_train = np.asarray(y_train)

    def fitted(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
        mu, sd = _standardisation(x)
        coef, bias = np.zeros((y.shape[1], x.shape[1])), np.zeros(y.shape[1])
        for j in range(y.shape[1]):
            if y[:, j].min() == y[:, j].max():  # never (or always) seen: sigmoid(-/+8), predicted never (always)
                bias[j] = 8.0 if y[0, j] else -8.0
                continue
            clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit((x - mu) / sd, y[:, j])
            coef[j], bias[j] = clf.coef_[0], clf.intercept_[0]
        return coef / sd, bias - (coef / sd) @ mu  # the standardisation folded into the weights

    def logits(w_b, x: np.ndarray) -> np.ndarray:
        return x @ w_b[0].T + w_b[1]

    held: dict[float, np.ndarray] = {}  # C -> held-out logits of `truth`'s rows
    if x_val is not None:
        truth = np.asarray(y_val)
        held = {c: logits(fitted(x_train, y_train, c), x_val) for c in cs}
    else:
        truth, k = y_train, most_folds(y_train, folds, groups)
        for tr, va in (kfold(y_train, k, seed, groups) if k >= 2 else ()):
            for c in cs:
                held.setdefault(c, np.zeros(y_train.shape))[va] = logits(fitted(x_train[tr], y_train[tr], c),
                                                                         x_train[va])
    c, offset, score = choose_c_and_offset(truth, held)
    weight, bias = fitted(x_train, y_train, c)
    return {"val_accuracy": score, "val_score": score, "C": c, "offset": offset, "weight": weight,
            "bias": bias - offset}


def choose_c_and_offset(truth: np.ndarray, held: dict[float, np.ndarray], fallback: float = FALLBACK_C
                        ) -> tuple[float, float, float | None]:
    """One C and one decision offset for every label, by the micro-F1 of the held-out logits (N, L) that each C
    gave against `truth` (N, L) 0/1; ties to the smallest C, then the offset nearest 0. The multi-label probe's
    rule, and its TF-IDF rival's (the same protocol for both). -> (C, offset, that micro-F1; without any held-out
    logits: `fallback`, 0, None)"""
    offsets = np.array(sorted(OFFSETS, key=abs))
    truth = np.asarray(truth).astype(bool)
    best: tuple[float, float, float] | None = None
    for c in sorted(held):
        # every offset at once: scikit-learn's f1_score validates its input on each call (1.5 ms here), and 8 Cs x
        # 33 offsets a fit made it most of auto's time on a 24-label table (benchmarks/results/offset_choice.md)
        decided = held[c][None] > offsets[:, None, None]  # (offsets, N, L)
        f1 = f1_of_counts(np.stack([(decided & truth).sum((1, 2)), decided.sum((1, 2)),
                                    np.full(len(offsets), truth.sum())], axis=1))
        i = int(np.argmax(f1))  # the first of equals: the offset nearest 0
        if best is None or f1[i] > best[2]:
            best = (c, float(offsets[i]), float(f1[i]))
    return best if best is not None else (fallback, 0.0, None)


def set_counts(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each text's true positives, predicted and actual positives, of (N, L) 0/1 predictions. -> (N, 3) ints;
    summed over any rows (all, a fold, a bootstrap resample) they give those rows' micro-F1 (f1_of_counts)."""
    p, t = np.asarray(pred).astype(bool), np.asarray(y).astype(bool)
    return np.stack([(p & t).sum(1), p.sum(1), t.sum(1)], axis=1)


def f1_of_counts(counts: np.ndarray) -> np.ndarray:
    """(..., 3) summed true / predicted / actual positives -> micro-F1 (...): 2 TP / (predicted + actual), 0 when
    neither side has a label (scikit-learn's zero_division=0). Equal fractions give equal floats (one division of
    integers), so ties between choices stay ties."""
    tp, pp, ap = counts[..., 0], counts[..., 1], counts[..., 2]
    return np.where(pp + ap > 0, 2 * tp / np.maximum(pp + ap, 1), 0.0)


def micro_f1(pred: np.ndarray, y: np.ndarray) -> float:
    """(N, L) 0/1 each: every (text, label) decision counted once; 0 when neither side has a label. The one
    micro-F1 of sets of labels (fine-tuning's early stopping and report, rank, auto), scikit-learn's value."""
    return float(f1_of_counts(set_counts(pred, y).sum(0)))


@torch.no_grad()
def knn_predict(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                k: int = 20, temperature: float = 0.07, chunk: int = 1024, balanced: bool = False) -> torch.Tensor:
    """Weighted kNN on cosine similarity (Wu et al., 2018; the self-supervised standard): each of the k
    nearest training points votes for its class with weight exp(similarity / temperature) (`balanced`: times its
    class's weight, N / (C * n_c), so that a rare class's few neighbours are not outvoted by a common one's many).
    train_features: (N, D); test_features: (M, D); labels int64. -> (M,) predicted labels"""
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1)
    classes = int(train_labels.max()) + 1
    weight = torch.as_tensor(class_weights(train_labels.cpu().numpy(), classes) if balanced else np.ones(classes),
                             dtype=torch.float32)
    k = min(k, len(train))
    out = []
    for s in range(0, len(test), chunk):
        sim = test[s:s + chunk] @ train.T  # (m, N)
        top, idx = sim.topk(k, dim=1)
        votes = torch.zeros(len(top), classes).scatter_add_(1, train_labels[idx], torch.exp(top / temperature))
        out.append((votes * weight).argmax(1))
    return torch.cat(out)


@torch.no_grad()
def knn_predict_sets(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                     k: int = 20, temperature: float = 0.07) -> torch.Tensor:
    """knn_predict for sets of labels: a label is predicted when the neighbours that have it hold at least half of
    the k neighbours' weight. A label on a few percent of the texts rarely does (`rank` orders sets of labels by
    the probe for that reason, see select/rank.py). train_labels: (N, L) 0/1. -> (M, L) 0/1"""
    train = F.normalize(train_features.float(), dim=1)
    sim = F.normalize(test_features.float(), dim=1) @ train.T  # (M, N)
    top, idx = sim.topk(min(k, len(train)), dim=1)
    weight = torch.exp(top / temperature)  # (M, k)
    share = (weight.unsqueeze(-1) * train_labels.float()[idx]).sum(1) / weight.sum(1, keepdim=True)  # (M, L)
    return (share >= 0.5).long()


def knn_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                 test_labels: torch.Tensor, k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> float:
    """Accuracy of `knn_predict` on the test features."""
    pred = knn_predict(train_features, train_labels, test_features, k, temperature, chunk)
    return float((pred == test_labels).float().mean())
