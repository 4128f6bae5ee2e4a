"""The rival every classifier must beat first: always answering the most frequent class (scikit-learn's
DummyClassifier(strategy="most_frequent")), scored on auto's own folds.

Why: on 60 Rotten Tomatoes labels of which 54 were positive, auto delivered SetFit at "91.7% cross-validated"
and 90.0% on a test split that was 90% positive, and said nothing of either: a model that answers 'pos' to every
text reads as a good one. Accuracy on few labels of a skewed table needs this rival beside it, and the count of
the rarer class the model actually found. One label a text only (micro-F1 of sets has no such trivial rival:
predicting no label scores 0).
"""

from __future__ import annotations

import numpy as np


def oof_majority(y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """(N,) out-of-fold predictions of the majority rival: each held-out row gets the most frequent class of its
    fold's training rows (ties: the lowest class id, as np.bincount's argmax)."""
    pred = np.empty_like(y)
    for f in np.unique(folds):
        pred[folds == f] = np.bincount(y[folds != f]).argmax()
    return pred


def facts(y: np.ndarray, names: list[str], pred: np.ndarray, test_y: np.ndarray) -> dict:
    """What the verdict says of the class balance: the most frequent class and its share of the N (and of the
    test rows), and how many labels of the rarest class the chosen pipeline's out-of-fold predictions found.
    y, pred: (N,) class ids."""
    counts = np.bincount(y, minlength=len(names))
    top, rare = int(counts.argmax()), int(np.argmin(np.where(counts > 0, counts, counts.max() + 1)))
    out = {"class": names[top], "share": round(100 * counts[top] / len(y), 1), "count": int(counts[top]),
           "rare_class": names[rare], "rare_count": int(counts[rare]),
           "rare_found": int(((pred == rare) & (y == rare)).sum())}
    if len(test_y):
        out["test_share"] = round(100 * float((np.asarray(test_y) == top).mean()), 1)
    return out


def sentence(gap: dict, said: dict, n: int, balanced: bool = False) -> str | None:
    """The majority rival's line, where it matters: the table is skewed (the top class holds 60% of the N or
    more) or the chosen pipeline is not clearly better than always answering it. None otherwise. Scored by
    accuracy on a skewed table where the model found under half of the rarer class's labels, it names the remedy
    (`balanced`: the run already weighs the classes alike)."""
    if gap["verdict"] == "better" and said["share"] < 60:
        return None
    remedy = ("" if balanced or said["share"] < 60 or 2 * said["rare_found"] >= said["rare_count"] else
              f" If the {said['rare_class']!r} labels matter to you, run again with --metric balanced_accuracy: "
              "every class then weighs alike in each fit, choice and score.")
    head = (f"Against always answering {said['class']!r} (the most frequent class, {said['count']} of your {n} "
            f"labels): {gap['gap']:+.1f} points (95% interval {gap['low']:+.1f} to {gap['high']:+.1f})")
    found = (f"; out of fold it found {said['rare_found']} of your {said['rare_count']} {said['rare_class']!r} "
             "labels" if said["rare_class"] != said["class"] else "")
    if gap["verdict"] == "better":
        return head + f": better than it{found}." + remedy
    return (head + f": not better than it{found}. Plainly: the model has not shown that it learned more than how "
            "often each class occurs; more labels of the rarer classes are what would tell." + remedy)
