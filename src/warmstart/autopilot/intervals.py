"""What auto's out-of-fold predictions say: each pipeline's score on the N labels, its 95% interval, and the paired
gap between two pipelines on the same predictions, which every choice and every sentence of the verdict reads.

One label a text: accuracy, a Wilson interval, a paired t interval on the per-example differences; or, `balanced`,
balanced accuracy (the mean of the classes' recalls, scikit-learn's balanced_accuracy_score), which is a weighted
mean over the examples (`example_weights`), so the same paired t interval reads it, and its Wilson interval is
taken at the effective number of examples. A set of labels a text: micro-F1 (not a mean over examples), intervals
and paired gaps from a bootstrap over the texts.
"""

from __future__ import annotations

import numpy as np

from warmstart.models.probe import (
    accuracy,
    balanced_accuracy,
    class_weights,
    f1_of_counts,
    micro_f1,
    set_counts,
)

BOOTSTRAP = 2000  # resamples for a micro-F1 interval: its 2.5% and 97.5% points move by about 0.2 points


def score(pred: np.ndarray, y: np.ndarray, balanced: bool = False) -> float:
    """Accuracy (y: (N,) class ids; `balanced`: balanced accuracy), or micro-F1 (y: (N, L) 0/1)."""
    if np.ndim(y) == 2:
        return micro_f1(pred, y)
    return balanced_accuracy(y, pred) if balanced else accuracy(pred, y)


def example_weights(y: np.ndarray) -> np.ndarray:
    """(N,) weights N / (C * n_c) of each example's class c (C: the classes present): their mean over the right
    answers is balanced accuracy, and every class weighs N / C in all (scikit-learn's class_weight="balanced")."""
    return class_weights(y)[np.asarray(y)]


def right(pred: np.ndarray, y: np.ndarray) -> int:
    """How many of the labels (texts, or for sets of labels (text, label) decisions) the predictions got right."""
    return int((np.asarray(pred) == np.asarray(y)).sum())


def _bootstrap(counts: np.ndarray, seed: int = 0) -> np.ndarray:
    """The micro-F1 of BOOTSTRAP resamples of the rows of `counts` (N, 3), drawn with replacement, seeded: the
    same draws for every pipeline, so a paired gap resamples both sides alike. -> (BOOTSTRAP,)"""
    rows = np.random.default_rng([seed, 23]).integers(0, len(counts), size=(BOOTSTRAP, len(counts)))
    return f1_of_counts(counts[rows].sum(1))


def interval(pred: np.ndarray, y: np.ndarray, balanced: bool = False) -> tuple[float, float]:
    """The 95% interval of the predictions' score: Wilson's for an accuracy; for a balanced accuracy, Wilson's at
    the effective count C^2 / sum(1 / n_c) (its variance, sum over classes of p_c(1 - p_c) / n_c / C^2, is
    p(1 - p) / that count when the recalls are equal; N itself when the classes are); the bootstrap's percentiles
    for a micro-F1 (rows resampled with replacement)."""
    if np.ndim(y) != 2:
        if not balanced:
            return wilson(right(pred, y), len(y))
        counts = np.bincount(y)
        counts = counts[counts > 0]
        n = len(counts) ** 2 / float(np.sum(1.0 / counts))
        return wilson(balanced_accuracy(y, pred) * n, n)
    f1 = _bootstrap(set_counts(pred, y))
    return float(np.percentile(f1, 2.5)), float(np.percentile(f1, 97.5))


def wilson(correct: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval of an accuracy of `correct` out of `n` (stays inside 0..1, sound at small n)."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre - half) / (1 + z * z / n)), float((centre + half) / (1 + z * z / n))


def paired_gap(a: np.ndarray, b: np.ndarray, y: np.ndarray, balanced: bool = False) -> dict:
    """Pipeline a minus pipeline b on the same N out-of-fold predictions, in points of the score: for an accuracy,
    the mean of the per-example differences (1, 0 or -1; `balanced`: each times its example_weights, whose mean
    is the gap in balanced accuracy) and its 95% t interval; for a micro-F1 (y: (N, L)), the
    difference and the 2.5 / 97.5 percentiles of its paired bootstrap (both pipelines scored on the same resampled
    rows). `verdict`: better / worse / not clearly different (the interval straddles 0) / the same (right and
    wrong on the same labels: no interval to read)."""
    from scipy import stats

    a, b, y = np.asarray(a), np.asarray(b), np.asarray(y)
    if y.ndim == 2:
        d = (_bootstrap(set_counts(a, y)) - _bootstrap(set_counts(b, y))) * 100
        mean = (micro_f1(a, y) - micro_f1(b, y)) * 100
        low, high = float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))
        same = bool((a == b).all())
    else:
        diff = (a == y).astype(float) - (b == y).astype(float)
        if balanced:
            diff *= example_weights(y)
        mean = float(diff.mean()) * 100
        half = float(stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))) * 100 \
            if len(diff) > 1 else np.inf
        low, high = mean - half, mean + half
        same = not diff.any()
    word = ("the same" if same else "better" if low > 0 else "worse" if high < 0 else "not clearly different")
    return {"gap": round(mean, 1), "low": round(low, 1), "high": round(high, 1), "verdict": word}
