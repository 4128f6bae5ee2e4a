"""Transferability scores: how well a frozen encoder's features suit a labelled task, in seconds, before any
fine-tuning. Higher is better for every score.

  logme    LogME (You et al., 2021): the maximum log evidence, per example and averaged over classes, of a
           Bayesian linear regression from the features to each class's one-hot target; the hyper-parameters
           (prior precision alpha, noise precision beta) come from MacKay's fixed-point iteration, done in the
           features' singular basis so each step costs O(rank).
  hscore   H-score (Bao et al., 2019): tr(cov(f)^-1 cov(E[f | y])), the share of feature variance that the
           class explains, summed over directions; cov(f) is the Ledoit-Wolf shrunk estimate and the class
           covariance scaled by the same shrinkage (the regularised H-score of Ibrahim et al., 2022): with fewer examples than dimensions the plain inverse makes every
           candidate score the maximum, classes - 1.

Written here (not imported) because neither has a maintained package; both are a few lines of linear algebra
and are tested against the papers' formulas written out directly.
"""

from __future__ import annotations

import math

import numpy as np


def _svd(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """-> (U (N, r), eigenvalues of F^T F (r,)) keeping the non-zero singular values."""
    u, s, _ = np.linalg.svd(features, full_matrices=False)
    keep = s > 1e-10 * max(1.0, float(s.max(initial=0.0)))
    return u[:, keep], s[keep] ** 2


def _terms(z2: np.ndarray, outside: float, sigma: np.ndarray, alpha: float, beta: float) -> tuple[float, float, float]:
    """-> (gamma, ||m||^2, ||y - F m||^2) at (alpha, beta); z2 = (U^T y)^2, outside = |y|^2 off the span of F."""
    t = alpha / beta
    gamma = float((sigma / (sigma + t)).sum())
    m2 = float((sigma * z2 / (sigma + t) ** 2).sum())
    res2 = float((t ** 2 * z2 / (sigma + t) ** 2).sum() + outside)
    return gamma, m2, res2


def _evidence(n: int, d: int, z2: np.ndarray, outside: float, sigma: np.ndarray, alpha: float, beta: float) -> float:
    _, m2, res2 = _terms(z2, outside, sigma, alpha, beta)
    log_det = float(np.log(alpha + beta * sigma).sum()) + (d - len(sigma)) * math.log(alpha)
    return (d / 2 * math.log(alpha) + n / 2 * math.log(beta) - beta / 2 * res2 - alpha / 2 * m2
            - log_det / 2 - n / 2 * math.log(2 * math.pi))


def _fixed_point(n: int, z2: np.ndarray, outside: float, sigma: np.ndarray, iterations: int = 100) -> tuple[float, float]:
    alpha, beta = 1.0, 1.0
    for _ in range(iterations):
        gamma, m2, res2 = _terms(z2, outside, sigma, alpha, beta)
        new_alpha, new_beta = gamma / max(m2, 1e-12), (n - gamma) / max(res2, 1e-12)
        done = abs(new_alpha / new_beta - alpha / beta) <= 1e-6 * (alpha / beta)
        alpha, beta = new_alpha, new_beta
        if done:
            break
    return alpha, beta


def _projections(u: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """-> ((U^T y)^2, |y|^2 off the span of F)"""
    z2 = (u.T @ y) ** 2
    return z2, float(y @ y - z2.sum())


def log_evidence(features: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """ln p(y | F, alpha, beta) of y = F w + noise, w ~ N(0, I/alpha), noise ~ N(0, I/beta) (Bishop, eq. 3.86),
    through the SVD of F. features: (N, D); y: (N,)."""
    u, sigma = _svd(features.astype(np.float64))
    return _evidence(*features.shape, *_projections(u, y), sigma, alpha, beta)


def maximise_evidence(features: np.ndarray, y: np.ndarray, iterations: int = 100) -> tuple[float, float]:
    """MacKay's fixed point: alpha = gamma / ||m||^2, beta = (N - gamma) / ||y - F m||^2. -> (alpha, beta)"""
    u, sigma = _svd(features.astype(np.float64))
    return _fixed_point(len(y), *_projections(u, y), sigma, iterations)


def _targets(labels: np.ndarray) -> list[np.ndarray]:
    """The 0/1 target of each class: integer labels (N,) one class each, or (N, L) 0/1 sets of labels, each label
    that occurs."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return [labels[:, j].astype(np.float64) for j in range(labels.shape[1]) if labels[:, j].any()]
    return [(labels == k).astype(np.float64) for k in np.unique(labels)]


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME of features (N, D) for integer labels (N,), or (N, L) 0/1 sets of labels: mean over classes (labels)
    of max log evidence / N. One SVD serves every class (each class costs O(N rank) after it)."""
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    u, sigma = _svd(f)
    scores = []
    for target in _targets(labels):
        z2, outside = _projections(u, target)
        alpha, beta = _fixed_point(n, z2, outside, sigma)
        scores.append(_evidence(n, d, z2, outside, sigma, alpha, beta) / n)
    return float(np.mean(scores))


def hscore(features: np.ndarray, labels: np.ndarray) -> float:
    """H-score of features (N, D) for integer labels (N,); for (N, L) 0/1 sets of labels, the mean of each
    label's (has it / has it not) H-score."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return float(np.mean([hscore(features, t.astype(int)) for t in _targets(labels) if not t.all()] or [0.0]))
    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(0)
    cov_f = f.T @ f / len(f)
    between = np.zeros_like(f)
    for k in np.unique(labels):
        rows = labels == k
        between[rows] = f[rows].mean(0)
    cov_g = between.T @ between / len(f)
    if f.shape[1] > 1:
        from sklearn.covariance import LedoitWolf

        lw = LedoitWolf(assume_centered=True).fit(f)
        cov_f, cov_g = lw.covariance_, (1 - lw.shrinkage_) * cov_g  # Ibrahim et al.: shrink both terms
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-10, hermitian=True) @ cov_g))
